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
import { serviceStartTests } from '@hostgate/testkit/service';
import { configSchema, DEFAULT_ADDRESS, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

serviceStartTests({
  defaultAddress: DEFAULT_ADDRESS,
  expected: '127.0.0.1:50054',
  envVar: 'HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS',
  load: (env) => loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env),
  start: async (t, config) => {
    const embedded = await openEmbeddedPostgres(undefined);
    t.after(() => embedded.close());
    const bus = new InProcessBus();
    t.after(() => bus.close());
    return start(config, { logger, bus, db: embedded.db('health_cert_issuer') });
  },
  checkHealth,
  serviceName: SERVICE_NAMES.healthCertIssuer,
  // The API is registered and answers: an unknown host is unhealthy, not an error.
  probe: async (_t, address) => {
    const protos = loadHostgateProtos();
    const client = new protos.HealthCertIssuerService(address, grpc.credentials.createInsecure());
    const res = await new Promise<CheckHostResponse__Output>((resolve, reject) =>
      client.CheckHost({ hostId: 'nobody' }, (err, r) => (err || r === undefined ? reject(err) : resolve(r))),
    );
    client.close();
    assert.equal(res.status?.health, 'HOST_HEALTH_UNHEALTHY');
  },
});
