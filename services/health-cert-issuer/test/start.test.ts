import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '@hostgate/bus';
import { type CheckHostResponse__Output, loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
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

test('default address is 127.0.0.1:50054, overridden by HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS', () => {
  assert.equal(DEFAULT_ADDRESS, '127.0.0.1:50054');
  assert.equal(loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, {}).address, DEFAULT_ADDRESS);
  const env = { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0' };
  assert.equal(loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env).address, '127.0.0.1:0');
});

test('start serves health SERVING and its API; stop frees the port', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0' },
  );
  const svc = await start(config, { logger, bus, db: embedded.db('health_cert_issuer') });
  let stopped = false;
  t.after(() => (stopped ? undefined : svc.stop()));
  assert.equal((await checkHealth(svc.address)).status, 'SERVING');
  assert.equal(
    (await checkHealth(svc.address, { service: SERVICE_NAMES.healthCertIssuer })).status,
    'SERVING',
  );
  // The API is registered and answers: an unknown host is unhealthy, not an error.
  const protos = loadHostgateProtos();
  const client = new protos.HealthCertIssuerService(svc.address, grpc.credentials.createInsecure());
  const res = await new Promise<CheckHostResponse__Output>((resolve, reject) =>
    client.CheckHost({ hostId: 'nobody' }, (err, r) => (err || r === undefined ? reject(err) : resolve(r))),
  );
  client.close();
  assert.equal(res.status?.health, 'HOST_HEALTH_UNHEALTHY');
  const port = Number(svc.address.split(':')[1]);
  await svc.stop();
  stopped = true;
  assert.equal(await isPortFree(port), true);
});
