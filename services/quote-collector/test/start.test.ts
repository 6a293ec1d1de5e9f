import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '@hostgate/bus';
import { type EnrollResponse__Output, loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import {
  checkHealth,
  createLogger,
  loadServiceConfig,
  openEmbeddedPostgres,
} from '@hostgate/service-runtime';
import { serviceStartTests } from '@hostgate/testkit/service';
import { configSchema, DEFAULT_ADDRESS, loadEkRoots, SERVICE_NAME, start } from '../src/index.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});
const load = (env: Record<string, string>) =>
  loadServiceConfig({ name: SERVICE_NAME, config: configSchema }, env);

serviceStartTests({
  defaultAddress: DEFAULT_ADDRESS,
  expected: '127.0.0.1:50051',
  envVar: 'HOSTGATE_QUOTE_COLLECTOR_ADDRESS',
  load,
  start: async (t, config) => {
    const embedded = await openEmbeddedPostgres(undefined);
    t.after(() => embedded.close());
    const bus = new InProcessBus();
    t.after(() => bus.close());
    return start(config, { logger, bus, db: embedded.db('quote_collector') });
  },
  checkHealth,
  serviceName: SERVICE_NAMES.quoteCollector,
  // The API is registered and answers: an empty enrollment is refused with reasons, not an error.
  probe: async (t, address) => {
    const protos = loadHostgateProtos();
    const client = new protos.QuoteCollectorService(address, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const res = await new Promise<EnrollResponse__Output>((resolve, reject) =>
      client.Enroll({}, (err, value) => (err || value === undefined ? reject(err) : resolve(value))),
    );
    assert.deepEqual(
      res.refusals.map((r) => r.code),
      ['KEY_INVALID', 'KEY_INVALID', 'EK_CERT_INVALID'],
    );
    client.close();
  },
});

test('config: a bad PCR list or timeout is refused at load; EK roots must be readable PEM', async (t) => {
  assert.equal(load({}).pcrSelection, 'sha256:0,1,2,3,4,5,6,7');
  assert.equal(
    load({ HOSTGATE_QUOTE_COLLECTOR_PCR_SELECTION: 'sha1:0+sha256:0,7' }).pcrSelection,
    'sha1:0+sha256:0,7',
  );
  assert.throws(() => load({ HOSTGATE_QUOTE_COLLECTOR_PCR_SELECTION: 'sha256:0-7' }), {
    code: 'CONFIG_INVALID_VALUE',
  });
  assert.throws(() => load({ HOSTGATE_QUOTE_COLLECTOR_PCR_SELECTION: 'sha256:0+sha256:1' }), {
    code: 'CONFIG_INVALID_VALUE',
  });
  assert.throws(() => load({ HOSTGATE_QUOTE_COLLECTOR_NONCE_TTL_MS: '10' }), {
    code: 'CONFIG_INVALID_VALUE',
  });
  assert.equal(load({ HOSTGATE_EK_ROOTS: '/a.pem:/b.pem' }).ekRoots, '/a.pem:/b.pem');

  assert.deepEqual(loadEkRoots(undefined), []);
  assert.throws(() => loadEkRoots('/nonexistent/root.pem'), /cannot read \/nonexistent\/root\.pem: ENOENT/);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hg-qc-roots-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const junk = path.join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate');
  assert.throws(() => loadEkRoots(junk), /holds no PEM certificate/);
  const bad = path.join(dir, 'bad.pem');
  await writeFile(bad, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  assert.throws(() => loadEkRoots(bad), /HOSTGATE_EK_ROOTS: .*bad\.pem/);
});
