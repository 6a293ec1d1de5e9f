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
import { isPortFree } from '@hostgate/testkit/ports';
import { configSchema, DEFAULT_ADDRESS, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

test('default address is 127.0.0.1:50053, overridden by HOSTGATE_POLICY_EVALUATOR_ADDRESS', () => {
  assert.equal(DEFAULT_ADDRESS, '127.0.0.1:50053');
  assert.equal(loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, {}).address, DEFAULT_ADDRESS);
  const env = { HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0' };
  assert.equal(loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env).address, '127.0.0.1:0');
});

test('start serves health SERVING and its API; stop frees the port', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0' },
  );
  const svc = await start(config, { logger, bus, db: embedded.db('policy_evaluator') });
  let stopped = false;
  t.after(() => (stopped ? undefined : svc.stop()));
  assert.equal((await checkHealth(svc.address)).status, 'SERVING');
  assert.equal(
    (await checkHealth(svc.address, { service: SERVICE_NAMES.policyEvaluator })).status,
    'SERVING',
  );
  // The API is registered and implemented: an empty PublishGoldenSet is refused as malformed, not "unknown service".
  const protos = loadHostgateProtos();
  const def = protos.PolicyEvaluatorService.service;
  const [method, spec] = Object.entries(def)[0] ?? [];
  assert.ok(method !== undefined && spec !== undefined);
  const client = new grpc.Client(svc.address, grpc.credentials.createInsecure());
  const code = await new Promise<number>((resolve) => {
    const onDone = (err: grpc.ServiceError | null) => resolve(err?.code ?? grpc.status.OK);
    if (spec.responseStream) {
      const call = client.makeServerStreamRequest(
        spec.path,
        spec.requestSerialize,
        spec.responseDeserialize,
        {},
      );
      call.on('error', (e: grpc.ServiceError) => onDone(e));
      call.on('end', () => onDone(null));
      call.on('data', () => {});
    } else client.makeUnaryRequest(spec.path, spec.requestSerialize, spec.responseDeserialize, {}, onDone);
  });
  client.close();
  assert.equal(code, grpc.status.INVALID_ARGUMENT);
  const port = Number(svc.address.split(':')[1]);
  await svc.stop();
  stopped = true;
  assert.equal(await isPortFree(port), true);
});
