import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '@hostgate/bus';
import { loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import { checkHealth, createLogger, loadServiceConfig } from '@hostgate/service-runtime';
import { assertAddressConfig, assertStartServesAndStops, firstMethodStatus } from '@hostgate/testkit/service';
import { configSchema, DEFAULT_ADDRESS, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});
const load = (env: Record<string, string>) =>
  loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env);

test('default address is 127.0.0.1:50052, overridden by HOSTGATE_EVENTLOG_REPLAYER_ADDRESS', () => {
  assertAddressConfig({
    defaultAddress: DEFAULT_ADDRESS,
    expected: '127.0.0.1:50052',
    envVar: 'HOSTGATE_EVENTLOG_REPLAYER_ADDRESS',
    load,
  });
});

test('start serves health SERVING and its API; stop frees the port', async (t) => {
  const bus = new InProcessBus();
  t.after(() => bus.close());
  await assertStartServesAndStops(t, {
    start: () => start(load({ HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: '127.0.0.1:0' }), { logger, bus }),
    checkHealth,
    serviceName: SERVICE_NAMES.eventlogReplayer,
    // The API is registered and implemented: an empty Replay request is answered (with refusals), not "unknown service".
    probe: async (address) => {
      const def = loadHostgateProtos().EventlogReplayerService.service;
      assert.equal(await firstMethodStatus(address, def), grpc.status.OK);
    },
  });
});
