// Fleet state over time (a controlled clock): expiry reaches CheckHost and WatchFleet; certificates
// listed and paged; operator revocation authenticated and audited.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { InProcessBus } from '@hostgate/bus';
import { createCa } from '@hostgate/health-cert';
import {
  type CheckHostResponse__Output,
  encodeVerdict,
  type ListCertificatesResponse__Output,
  loadHostgateProtos,
  type RevokeHostResponse__Output,
  SERVICE_NAMES,
  type WatchFleetResponse__Output,
} from '@hostgate/protos';
import { openEmbeddedPostgres, startGrpcServer } from '@hostgate/service-runtime';
import { postgresMissing } from '@hostgate/testkit/postgres';
import { FleetHub, handlers, migrations } from '../src/index.ts';
import { call, hostKeys, openTestDb, recordingBus, silentLogger, testIssuer, verdict } from './harness.ts';

const T0 = new Date('2026-11-25T12:00:00Z');

async function setup(t: TestContext, adminToken?: string) {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const db = embedded.db('health_cert_issuer');
  await db.migrate(migrations);
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const clock = { now: T0 };
  const hub = new FleetHub();
  const ca = createCa({ commonName: 'Fleet Test CA', notBefore: new Date('2026-01-01T00:00:00Z') });
  const issuer = testIssuer({ db, bus, ca, hub, now: () => clock.now });
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: '127.0.0.1:0',
    logger: silentLogger,
    services: [
      {
        name: SERVICE_NAMES.healthCertIssuer,
        definition: protos.HealthCertIssuerService.service,
        implementation: handlers({ logger: silentLogger, bus, db, issuer, hub, adminToken }),
      },
    ],
  });
  server.setServing(true);
  t.after(() => server.shutdown(0));
  const client = new protos.HealthCertIssuerService(server.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const judge = async (hostId: string, pass: boolean) => {
    const v = verdict({
      hostId,
      keys: hostKeys(),
      pass,
      refusals: pass ? [] : [{ code: 'DBX_INCOMPLETE', message: 'dbx lacks 3 entries', details: {} }],
    });
    await issuer.handleVerdict({ key: hostId, value: encodeVerdict(v), headers: {} });
    return v;
  };
  return { db, issuer, hub, clock, client, judge };
}

test('an expired certificate makes the host unhealthy: CheckHost at once, WatchFleet EXPIRED on the sweep', async (t) => {
  const s = await setup(t);
  await s.judge('host-exp', true);
  await s.judge('host-other', true);
  const watch = s.client.WatchFleet({ hostIds: ['host-exp'], includeSnapshot: true });
  t.after(() => watch.cancel());
  watch.on('error', () => {});
  const seen: WatchFleetResponse__Output[] = [];
  watch.on('data', (m: WatchFleetResponse__Output) => seen.push(m));
  const until = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (seen.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(seen.length, n);
  };
  await until(1);
  // Only the host asked for.
  assert.equal(seen[0]!.status!.hostId, 'host-exp');
  assert.equal(seen[0]!.snapshotComplete, true);

  s.clock.now = new Date(T0.getTime() + 3599_000);
  assert.equal(await s.issuer.sweepExpired(), 0);
  let status = (await call<unknown, CheckHostResponse__Output>(s.client, 'CheckHost', { hostId: 'host-exp' }))
    .status!;
  assert.equal(status.health, 'HOST_HEALTH_HEALTHY');

  s.clock.now = new Date(T0.getTime() + 3600_000);
  // Before any sweep: an expired certificate is never reported healthy.
  status = (await call<unknown, CheckHostResponse__Output>(s.client, 'CheckHost', { hostId: 'host-exp' }))
    .status!;
  assert.equal(status.health, 'HOST_HEALTH_UNHEALTHY');
  assert.match(status.reason, /expired/);
  assert.equal(await s.issuer.sweepExpired(), 2);
  await until(2);
  assert.equal(seen[1]!.cause, 'FLEET_CHANGE_CAUSE_EXPIRED');
  assert.equal(seen[1]!.status!.health, 'HOST_HEALTH_UNHEALTHY');
  assert.equal(await s.issuer.sweepExpired(), 0);
  // Re-attesting makes it healthy again.
  await s.judge('host-exp', true);
  await until(3);
  assert.equal(seen[2]!.cause, 'FLEET_CHANGE_CAUSE_ISSUED');
});

test('WatchFleet on an empty fleet sends one snapshot_complete message with no status', async (t) => {
  const s = await setup(t);
  const watch = s.client.WatchFleet({ hostIds: [], includeSnapshot: true });
  t.after(() => watch.cancel());
  watch.on('error', () => {});
  const first = await new Promise<WatchFleetResponse__Output>((resolve) => watch.once('data', resolve));
  assert.equal(first.snapshotComplete, true);
  assert.equal(first.status, null);
});

test('ListCertificates pages newest first and filters by host and status', async (t) => {
  const s = await setup(t);
  for (let i = 0; i < 5; i++) {
    s.clock.now = new Date(T0.getTime() + i * 1000);
    await s.judge(`host-${i % 2}`, true);
  }
  s.clock.now = new Date(T0.getTime() + 10_000);
  await s.judge('host-0', false); // revokes host-0's three live certificates
  const serials: string[] = [];
  let token = '';
  do {
    const page = await call<unknown, ListCertificatesResponse__Output>(s.client, 'ListCertificates', {
      pageSize: 2,
      pageToken: token,
    });
    assert.ok(page.certificates.length <= 2);
    serials.push(...page.certificates.map((c) => c.serial));
    token = page.nextPageToken;
  } while (token !== '');
  assert.equal(serials.length, 5);
  assert.equal(new Set(serials).size, 5);
  const all = await call<unknown, ListCertificatesResponse__Output>(s.client, 'ListCertificates', {});
  assert.deepEqual(
    all.certificates.map((c) => c.serial),
    serials,
  );
  const times = all.certificates.map((c) => Number(c.notBefore!.seconds));
  assert.deepEqual(
    times,
    [...times].sort((a, b) => b - a),
  );
  const revoked = await call<unknown, ListCertificatesResponse__Output>(s.client, 'ListCertificates', {
    status: 'CERTIFICATE_STATUS_REVOKED',
  });
  assert.equal(revoked.certificates.length, 3);
  for (const c of revoked.certificates) {
    assert.equal(c.hostId, 'host-0');
    assert.match(c.revocationReason, /refused: DBX_INCOMPLETE/);
  }
  const valid1 = await call<unknown, ListCertificatesResponse__Output>(s.client, 'ListCertificates', {
    hostId: 'host-1',
    status: 'CERTIFICATE_STATUS_VALID',
  });
  assert.equal(valid1.certificates.length, 2);
  s.clock.now = new Date(T0.getTime() + 7200_000);
  const expired = await call<unknown, ListCertificatesResponse__Output>(s.client, 'ListCertificates', {
    status: 'CERTIFICATE_STATUS_EXPIRED',
  });
  assert.equal(expired.certificates.length, 2);
  await assert.rejects(call(s.client, 'ListCertificates', { pageToken: 'not-a-token' }), {
    code: grpc.status.INVALID_ARGUMENT,
  });
  await assert.rejects(call(s.client, 'ListCertificates', { pageSize: 1001 }), {
    code: grpc.status.INVALID_ARGUMENT,
  });
});

test('RevokeHost needs the admin token, names the actor, is audited and revokes every live certificate', async (t) => {
  const s = await setup(t, 'tok-123');
  await s.judge('host-r', true);
  s.clock.now = new Date(T0.getTime() + 1000);
  await s.judge('host-r', true);
  const request = { hostId: 'host-r', reason: 'disk replaced' };
  await assert.rejects(call(s.client, 'RevokeHost', request), { code: grpc.status.UNAUTHENTICATED });
  const wrong = new grpc.Metadata();
  wrong.set('authorization', 'Bearer tok-124');
  await assert.rejects(call(s.client, 'RevokeHost', request, wrong), { code: grpc.status.UNAUTHENTICATED });
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer tok-123');
  md.set('x-hostgate-operator', 'bob');
  await assert.rejects(call(s.client, 'RevokeHost', { hostId: 'host-r', reason: '' }, md), {
    code: grpc.status.INVALID_ARGUMENT,
  });
  const res = await call<unknown, RevokeHostResponse__Output>(s.client, 'RevokeHost', request, md);
  assert.equal(res.serials.length, 2);
  const again = await call<unknown, RevokeHostResponse__Output>(s.client, 'RevokeHost', request, md);
  assert.deepEqual(again.serials, []);
  const { rows } = await s.db.query<{
    actor: string;
    action: string;
    host_id: string;
    detail: { reason: string; serials: string[] };
  }>('SELECT actor, action, host_id, detail FROM audit_log ORDER BY id');
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.actor, 'bob');
  assert.equal(rows[0]!.action, 'revoke-host');
  assert.equal(rows[0]!.detail.reason, 'disk replaced');
  assert.deepEqual([...rows[0]!.detail.serials].sort(), [...res.serials].sort());
  const status = (await call<unknown, CheckHostResponse__Output>(s.client, 'CheckHost', { hostId: 'host-r' }))
    .status!;
  assert.equal(status.health, 'HOST_HEALTH_UNHEALTHY');
  assert.match(status.reason, /revoked by bob: disk replaced/);
});

test('without an admin token RevokeHost is accepted from loopback, with the peer as actor', async (t) => {
  const s = await setup(t);
  await s.judge('host-l', true);
  const res = await call<unknown, RevokeHostResponse__Output>(s.client, 'RevokeHost', {
    hostId: 'host-l',
    reason: 'test',
  });
  assert.equal(res.serials.length, 1);
  const { rows } = await s.db.query<{ actor: string }>('SELECT actor FROM audit_log');
  assert.match(rows[0]!.actor, /^local@(ipv4:)?127\.0\.0\.1:\d+$/);
});

test('two replicas on one store: a watcher of one sees what the other decided, once, within 1 s', async (t) => {
  const { InProcessBus: Bus } = await import('@hostgate/bus');
  const { loadServiceConfig } = await import('@hostgate/service-runtime');
  const { configSchema, SERVICE_NAME, start } = await import('../src/index.ts');
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const db = embedded.db('health_cert_issuer');
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0' },
  );
  const replicas = [];
  for (let i = 0; i < 2; i++) {
    const bus = new Bus();
    t.after(() => bus.close());
    const r = await start(config, { logger: silentLogger, bus, db });
    t.after(() => r.stop());
    replicas.push(r);
  }
  const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
  assert.equal(a.issuer.ca.certificatePem, b.issuer.ca.certificatePem, 'both sign with the CA in the store');
  const protos = loadHostgateProtos();
  const clientB = new protos.HealthCertIssuerService(b.address, grpc.credentials.createInsecure());
  t.after(() => clientB.close());
  const watch = clientB.WatchFleet({ hostIds: [], includeSnapshot: true });
  t.after(() => watch.cancel());
  watch.on('error', () => {});
  const seen: WatchFleetResponse__Output[] = [];
  await new Promise<void>((resolve) => {
    watch.on('data', (m: WatchFleetResponse__Output) => {
      seen.push(m);
      if (m.snapshotComplete) resolve();
    });
  });
  const keys = hostKeys();
  const waitFor = async (n: number) => {
    const started = performance.now();
    while (seen.length < n && performance.now() - started < 1000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(seen.length, n, `watcher of replica B saw ${seen.length - 1} changes, expected ${n - 1}`);
    return performance.now() - started;
  };
  await a.issuer.handleVerdict({
    key: 'host-ab',
    value: encodeVerdict(verdict({ hostId: 'host-ab', keys, pass: true })),
    headers: {},
  });
  const issuedMs = await waitFor(2);
  assert.equal(seen[1]!.cause, 'FLEET_CHANGE_CAUSE_ISSUED');
  assert.equal(seen[1]!.status!.health, 'HOST_HEALTH_HEALTHY');
  await a.issuer.handleVerdict({
    key: 'host-ab',
    value: encodeVerdict(
      verdict({
        hostId: 'host-ab',
        keys,
        pass: false,
        refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
      }),
    ),
    headers: {},
  });
  const refusedMs = await waitFor(3);
  t.diagnostic(
    `replica B's watcher saw A's issue after ${issuedMs.toFixed(0)} ms, its refusal after ${refusedMs.toFixed(0)} ms`,
  );
  assert.equal(seen[2]!.cause, 'FLEET_CHANGE_CAUSE_REFUSED');
  // A change B made itself arrives once, though the poller also reads it.
  await b.issuer.revokeHost('host-ab', 'retired', 'ops');
  await waitFor(4);
  assert.equal(seen[3]!.cause, 'FLEET_CHANGE_CAUSE_REVOKED');
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(seen.length, 4, 'no change delivered twice');
});

test('metrics count each outcome and each revocation', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const db = embedded.db('health_cert_issuer');
  await db.migrate(migrations);
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const outcomes: string[] = [];
  const revocations: Array<[number, string]> = [];
  const issuer = testIssuer({
    db,
    bus,
    ca: createCa({ commonName: 'Metrics CA' }),
    metrics: {
      verdict: (outcome, ms) => {
        assert.ok(ms !== undefined && ms >= 0);
        outcomes.push(outcome);
      },
      revoked: (count, cause) => revocations.push([count, cause]),
    },
  });
  const keys = hostKeys();
  const pass = encodeVerdict(verdict({ hostId: 'm1', keys, pass: true }));
  await issuer.handleVerdict({ key: 'm1', value: pass, headers: {} });
  await issuer.handleVerdict({ key: 'm1', value: pass, headers: {} });
  const fail = verdict({
    hostId: 'm1',
    keys,
    pass: false,
    refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
  });
  await issuer.handleVerdict({ key: 'm1', value: encodeVerdict(fail), headers: {} });
  assert.deepEqual(outcomes, ['issued', 'redelivered', 'refused']);
  assert.deepEqual(revocations, [[1, 'attestation']]);
});

test('old outbox messages are pruned; a verdict redelivered after that re-publishes nothing and issues nothing', async (t) => {
  const s = await setup(t);
  const v = await s.judge('host-old', true);
  s.clock.now = new Date(T0.getTime() + 8 * 86_400_000);
  await s.judge('host-new', true);
  assert.equal(await s.issuer.pruneOutbox(7 * 86_400_000), 3);
  const { rows } = await s.db.query<{ attestation_id: string }>('SELECT DISTINCT attestation_id FROM outbox');
  assert.equal(rows.length, 1);
  assert.notEqual(rows[0]!.attestation_id, v.attestationId);
  await s.issuer.handleVerdict({ key: 'host-old', value: encodeVerdict(v), headers: {} });
  const certs = await s.db.query<{ n: bigint }>(
    'SELECT count(*)::int8 AS n FROM certificates WHERE host_id = $1',
    ['host-old'],
  );
  assert.equal(certs.rows[0]!.n, 1n);
});

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;
  test(`${tier}: two replicas racing on one verdict (a rebalance) issue one certificate and publish the same event`, {
    skip,
  }, async (t) => {
    const db = await openTestDb(t, tier, 'hg_issuer_race');
    await db.migrate(migrations);
    const ca = createCa({ commonName: 'Race CA' });
    const published: Buffer[] = [];
    const replicas = [0, 1].map(() => {
      const bus = new InProcessBus();
      t.after(() => bus.close());
      return testIssuer({
        db,
        bus: recordingBus(bus, (topic, value) => {
          if (topic === 'hostgate.certificates.v1') published.push(value);
        }),
        ca,
      });
    });
    for (let round = 0; round < 5; round++) {
      published.length = 0;
      const v = verdict({ hostId: `race-${round}`, keys: hostKeys(), pass: round % 2 === 0 });
      const message = { key: v.hostId!, value: encodeVerdict(v), headers: {} };
      await Promise.all(replicas.map((r) => r.handleVerdict(message)));
      assert.equal(published.length, 2, 'each replica answered');
      assert.deepEqual(published[0], published[1], 'with the very same event');
      const { rows } = await db.query<{ n: bigint }>(
        'SELECT count(*)::int8 AS n FROM attestations WHERE attestation_id = $1',
        [v.attestationId],
      );
      assert.equal(rows[0]!.n, 1n);
      const certs = await db.query<{ n: bigint }>(
        'SELECT count(*)::int8 AS n FROM certificates WHERE host_id = $1',
        [v.hostId],
      );
      assert.equal(certs.rows[0]!.n, round % 2 === 0 ? 1n : 0n);
    }
  });
}

test('WatchFleet refuses a malformed host filter with INVALID_ARGUMENT', async (t) => {
  const s = await setup(t);
  const watch = s.client.WatchFleet({ hostIds: ['ok', ''], includeSnapshot: true });
  const err = await new Promise<grpc.ServiceError>((resolve) => watch.on('error', resolve));
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err.details, /host_id/);
});

test('a watcher that stops reading is cut off with RESOURCE_EXHAUSTED, not buffered without bound', async (t) => {
  const s = await setup(t);
  const watch = s.client.WatchFleet({ hostIds: [], includeSnapshot: false });
  t.after(() => watch.cancel());
  watch.pause();
  const deadline = Date.now() + 5000;
  while (s.hub.watchers === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(s.hub.watchers, 1);
  for (let i = 0; i < 20_000; i++) {
    s.hub.publish({
      cause: 'issued',
      state: {
        hostId: `flood-${i}`,
        healthy: true,
        cause: 'issued',
        reason: 'passed',
        reasonCode: '',
        refusals: [],
        serial: i.toString(16),
        expiresAt: new Date(T0.getTime() + 3600_000),
        policyClass: 'c',
        policyVersion: 1,
        attestationId: `a-${i}`,
        updatedAt: T0,
      },
    });
  }
  assert.equal(s.hub.watchers, 0, 'the slow watcher was dropped');
  let received = 0;
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    watch.on('data', () => {
      received++;
    });
    watch.on('error', resolve);
    watch.resume();
  });
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.ok(received <= 10_001, `received ${received}`);
});

test('near the end of the CA, certificates are cut short to the CA notAfter instead of refused', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const db = embedded.db('health_cert_issuer');
  await db.migrate(migrations);
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const ca = createCa({ commonName: 'Old CA', notBefore: new Date('2026-01-01T00:00:00Z'), validityDays: 1 });
  const events: Buffer[] = [];
  const issuer = testIssuer({
    db,
    bus: recordingBus(bus, (topic, value) => {
      if (topic === 'hostgate.certificates.v1') events.push(value);
    }),
    ca,
    now: () => new Date(ca.notAfter.getTime() - 600_000),
  });
  const v = verdict({ hostId: 'late-host', keys: hostKeys(), pass: true });
  await issuer.handleVerdict({ key: 'late-host', value: encodeVerdict(v), headers: {} });
  const { decodeCertificateEvent } = await import('@hostgate/protos');
  const event = decodeCertificateEvent(events[0]!);
  assert.equal(event.type, 'CERTIFICATE_EVENT_TYPE_ISSUED');
  assert.equal(Number(event.certificate!.notAfter!.seconds) * 1000, ca.notAfter.getTime());
});
