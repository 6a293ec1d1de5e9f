import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '@hostgate/bus';
import { loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import {
  checkHealth,
  createLogger,
  loadServiceConfig,
  openEmbeddedPostgres,
} from '@hostgate/service-runtime';
import { firstMethodStatus, serviceStartTests } from '@hostgate/testkit/service';
import { configSchema, DEFAULT_ADDRESS, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

serviceStartTests({
  defaultAddress: DEFAULT_ADDRESS,
  expected: '127.0.0.1:50053',
  envVar: 'HOSTGATE_POLICY_EVALUATOR_ADDRESS',
  load: (env) => loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env),
  start: async (t, config) => {
    const embedded = await openEmbeddedPostgres(undefined);
    t.after(() => embedded.close());
    const bus = new InProcessBus();
    t.after(() => bus.close());
    return start(config, { logger, bus, db: embedded.db('policy_evaluator') });
  },
  checkHealth,
  serviceName: SERVICE_NAMES.policyEvaluator,
  // The API is registered and implemented: an empty PublishGoldenSet is refused as malformed, not "unknown service".
  probe: async (_t, address) => {
    const def = loadHostgateProtos().PolicyEvaluatorService.service;
    assert.equal(await firstMethodStatus(address, def), grpc.status.INVALID_ARGUMENT);
  },
});
