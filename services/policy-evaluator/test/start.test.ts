import { test } from 'node:test';
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
import { assertAddressConfig, assertStartServesAndStops, firstMethodStatus } from '@hostgate/testkit/service';
import { configSchema, DEFAULT_ADDRESS, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});
const load = (env: Record<string, string>) =>
  loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env);

test('default address is 127.0.0.1:50053, overridden by HOSTGATE_POLICY_EVALUATOR_ADDRESS', () => {
  assertAddressConfig({
    defaultAddress: DEFAULT_ADDRESS,
    expected: '127.0.0.1:50053',
    envVar: 'HOSTGATE_POLICY_EVALUATOR_ADDRESS',
    load,
  });
});

test('start serves health SERVING and its API; stop frees the port', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  await assertStartServesAndStops(t, {
    start: () =>
      start(load({ HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0' }), {
        logger,
        bus,
        db: embedded.db('policy_evaluator'),
      }),
    checkHealth,
    serviceName: SERVICE_NAMES.policyEvaluator,
    // The API is registered and implemented: an empty PublishGoldenSet is refused as malformed, not "unknown service".
    probe: async (address) => {
      const def = loadHostgateProtos().PolicyEvaluatorService.service;
      assert.equal(await firstMethodStatus(address, def), grpc.status.INVALID_ARGUMENT);
    },
  });
});
