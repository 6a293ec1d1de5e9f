// Verdicts written together: one statement for a batch (store.recordVerdicts) must give every write
// what it would get alone — claim, certificate, revocation, host, outbox, redelivery, live-changed.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessBus } from '@hostgate/bus';
import { createCa } from '@hostgate/health-cert';
import { decodeCertificateEvent, encodeVerdict, type Verdict } from '@hostgate/protos';
import type { Db, Queryable } from '@hostgate/service-runtime';
import { postgresMissing, xactTuplesRead } from '@hostgate/testkit/postgres';
import type { HostState } from '../src/fleet.ts';
import { type Issuer, migrations } from '../src/index.ts';
import { recordVerdicts, type VerdictWrite } from '../src/store.ts';
import { hostKeys, openTestDb, recordingBus, testIssuer, verdict } from './harness.ts';

const NOW = new Date('2026-11-25T12:00:00.000Z');
const LATER = new Date('2026-11-25T12:00:05.000Z');
const NOT_AFTER = new Date('2026-11-25T13:00:00.000Z');

function host(
  hostId: string,
  attestationId: string,
  healthy: boolean,
  now: Date,
  serial?: string,
): HostState {
  return {
    hostId,
    healthy,
    cause: healthy ? 'issued' : 'refused',
    reason: healthy ? 'passed web v3' : 'Secure Boot is off',
    reasonCode: healthy ? '' : 'SECURE_BOOT_OFF',
    refusals: healthy
      ? []
      : [{ code: 'SECURE_BOOT_OFF', message: 'Secure Boot is off', details: { pcr: '7' } }],
    serial: serial ?? null,
    expiresAt: healthy ? NOT_AFTER : null,
    policyClass: healthy ? 'web' : '',
    policyVersion: healthy ? 3 : 0,
    attestationId,
    updatedAt: now,
  };
}

function messages(hostId: string, attestationId: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    topic: i === 0 ? 'hostgate.certificates.v1' : 'hostgate.events.v1',
    key: hostId,
    value: new Uint8Array(Buffer.from(`${attestationId}/${i}`)),
    headers: { 'content-type': 'application/protobuf', n: String(i) },
  }));
}

function pass(hostId: string, attestationId: string, serial: string, now = NOW): VerdictWrite {
  return {
    attestationId,
    hostId,
    verdictId: `v-${attestationId}`,
    outcome: 'issued',
    now,
    certificate: {
      serial,
      policy_class: 'web',
      policy_version: 3,
      pcr_digest: new Uint8Array(32).fill(7),
      der: new Uint8Array(Buffer.from(`der of ${serial}`)),
      not_before: now,
      not_after: NOT_AFTER,
    },
    host: host(hostId, attestationId, true, now, serial),
    messages: messages(hostId, attestationId, 3),
  };
}

function fail(hostId: string, attestationId: string, expected: string[], now = NOW): VerdictWrite {
  return {
    attestationId,
    hostId,
    verdictId: `v-${attestationId}`,
    outcome: 'refused',
    now,
    revoke: { reason: `attestation ${attestationId} refused`, expected },
    host: host(hostId, attestationId, false, now),
    messages: messages(hostId, attestationId, expected.length > 0 ? 3 : 2),
  };
}

/** Every row the verdict writes touch, in a stable order. */
async function dump(db: Queryable) {
  const q = async (sql: string) => (await db.query<Record<string, unknown>>(sql)).rows.map((r) => ({ ...r }));
  return {
    attestations: await q('SELECT * FROM attestations ORDER BY attestation_id'),
    certificates: await q('SELECT * FROM certificates ORDER BY serial'),
    outbox: await q('SELECT * FROM outbox ORDER BY attestation_id, seq'),
    hosts: await q('SELECT * FROM hosts ORDER BY host_id'),
  };
}

async function storeWith(t: TestContext, tier: 'pglite' | 'postgres'): Promise<Db> {
  const db = await openTestDb(t, tier, 'hg_issuer_batch');
  await db.migrate(migrations);
  // What was there before the batch, written one at a time.
  for (const w of [
    pass('h-a', 'a1', 'a1'),
    pass('h-a', 'a2', 'a2'),
    pass('h-b', 'b1', 'b1'),
    pass('h-d', 'd1', 'd1'),
    fail('h-g', 'g1', []),
  ]) {
    const [r] = await recordVerdicts(db, [w]);
    assert.equal(r!.outcome, 'claimed');
  }
  return db;
}

/** The mixed batch: new pass, refusal revoking two, redeliveries (pass, refusal, another host's id), a wrong belief. */
function mixedBatch(): VerdictWrite[] {
  return [
    pass('h-c', 'c1', 'c1', LATER),
    fail('h-a', 'a3', ['a1', 'a2'], LATER),
    pass('h-d', 'd1', 'd9', LATER), // redelivered: a second serial, never a second certificate
    fail('h-b', 'b2', [], LATER), // believes nothing is live: b1 is
    fail('h-e', 'e1', [], LATER), // a newcomer refused
    pass('h-f', 'a1', 'f1', LATER), // an attestation id another host claimed
    fail('h-g', 'g1', [], LATER), // a refusal redelivered
  ];
}

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;

  test(`${tier}: a mixed batch in one statement gives each write what it gets alone`, { skip }, async (t) => {
    const [batched, alone] = await Promise.all([storeWith(t, tier), storeWith(t, tier)]);
    const together = await recordVerdicts(batched, mixedBatch());
    const oneByOne = [];
    for (const w of mixedBatch()) oneByOne.push(...(await recordVerdicts(alone, [w])));
    assert.deepEqual(together, oneByOne);
    assert.deepEqual(await dump(batched), await dump(alone));

    // And what that is, spelled out.
    assert.deepEqual(
      together.map((r) => r.outcome),
      ['claimed', 'claimed', 'redelivered', 'live-changed', 'claimed', 'redelivered', 'redelivered'],
    );
    assert.deepEqual(together[3], { outcome: 'live-changed', live: ['b1'] });
    const after = await dump(batched);
    const cert = (serial: string) => after.certificates.find((c) => c['serial'] === serial);
    assert.equal(cert('d9'), undefined, 'no second certificate for a redelivered verdict');
    assert.equal(cert('f1'), undefined);
    assert.ok(cert('c1') !== undefined && cert('c1')!['revoked_at'] === null);
    for (const s of ['a1', 'a2']) {
      assert.deepEqual(cert(s)!['revoked_at'], LATER);
      assert.equal(cert(s)!['revocation_reason'], 'attestation a3 refused');
    }
    assert.equal(cert('b1')!['revoked_at'], null, 'nothing written for a wrong belief');
    assert.equal(
      after.attestations.find((a) => a['attestation_id'] === 'b2'),
      undefined,
    );
    // Bytes land as given (they travel in one parameter, cut out by position).
    assert.deepEqual(Buffer.from(cert('c1')!['der'] as Uint8Array).toString(), 'der of c1');
    assert.deepEqual(Buffer.from(cert('c1')!['pcr_digest'] as Uint8Array), Buffer.alloc(32, 7));
    assert.deepEqual(
      after.outbox
        .filter((m) => m['attestation_id'] === 'a3')
        .map((m) => Buffer.from(m['value'] as Uint8Array).toString()),
      ['a3/0', 'a3/1', 'a3/2'],
    );
    assert.equal(after.outbox.filter((m) => m['attestation_id'] === 'c1').length, 3);
    assert.equal(after.outbox.filter((m) => m['attestation_id'] === 'a3').length, 3);
    assert.equal(after.outbox.filter((m) => m['attestation_id'] === 'e1').length, 2);
    const hostRow = (id: string) => after.hosts.find((h) => h['host_id'] === id);
    assert.equal(hostRow('h-f'), undefined);
    assert.equal(hostRow('h-a')!['healthy'], false);
    assert.equal(hostRow('h-a')!['policy_class'], 'web', 'a refusal keeps the class last passed');
    assert.equal(hostRow('h-d')!['attestation_id'], 'd1');
    assert.deepEqual(hostRow('h-d')!['updated_at'], NOW, 'a redelivery leaves the host as it was');
  });

  test(`${tier}: a batch never holds a host twice`, { skip }, async (t) => {
    const db = await storeWith(t, tier);
    await assert.rejects(
      recordVerdicts(db, [pass('h-x', 'x1', 'aa', LATER), fail('h-x', 'x2', [], LATER)]),
      RangeError,
    );
    assert.equal((await db.query('SELECT 1 FROM attestations WHERE host_id = $1', ['h-x'])).rows.length, 0);
  });
}

// --- Through the issuer: concurrent handlers share statements and get what one-at-a-time gets ---

const ca = createCa({ commonName: 'Batch CA' });

interface Published {
  topic: string;
  value: Buffer;
}

function newIssuer(db: Db, published: Published[], t: TestContext): Issuer {
  const bus = new InProcessBus();
  t.after(() => bus.close());
  return testIssuer({ db, bus: recordingBus(bus, (topic, value) => published.push({ topic, value })), ca });
}

function handle(issuer: Issuer, v: Verdict) {
  return issuer.handleVerdict({ key: v.hostId!, value: encodeVerdict(v), headers: {} });
}

/** What came out, without what is random (serials, event ids): per attestation its event; per host its state. */
async function outcome(db: Db, published: Published[]) {
  const events = published
    .filter((p) => p.topic === 'hostgate.certificates.v1')
    .map((p) => decodeCertificateEvent(p.value))
    .map((e) => ({
      attestationId: e.attestationId,
      hostId: e.hostId,
      type: e.type,
      revoked: e.revoked.length,
      codes: e.refusals.map((r) => r.code),
    }))
    .sort((a, b) => (a.attestationId < b.attestationId ? -1 : a.attestationId > b.attestationId ? 1 : 0));
  const { rows: hosts } = await db.query<Record<string, unknown>>(
    `SELECT h.host_id, h.healthy, h.cause, h.reason_code, h.policy_class, h.attestation_id,
       (SELECT count(*)::int4 FROM certificates c WHERE c.host_id = h.host_id) AS certificates,
       (SELECT count(*)::int4 FROM certificates c WHERE c.host_id = h.host_id AND c.revoked_at IS NULL) AS live
     FROM hosts h ORDER BY h.host_id`,
  );
  const { rows: attestations } = await db.query<Record<string, unknown>>(
    'SELECT attestation_id, host_id, outcome FROM attestations ORDER BY attestation_id',
  );
  return { events, hosts: hosts.map((r) => ({ ...r })), attestations: attestations.map((r) => ({ ...r })) };
}

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;

  test(`${tier}: verdicts handled at once share statements and end as one at a time`, { skip }, async (t) => {
    const keys = new Map<string, ReturnType<typeof hostKeys>>();
    const keysOf = (h: string) => keys.get(h) ?? keys.set(h, hostKeys()).get(h)!;
    const off = [{ code: 'SECURE_BOOT_OFF' as const, message: 'Secure Boot is off', details: {} }];
    const mk = (h: string, ok: boolean, id: string) =>
      verdict({ hostId: h, keys: keysOf(h), pass: ok, attestationId: id, refusals: ok ? [] : off });
    const before = [mk('h1', true, 'p1'), mk('h1', true, 'p2'), mk('h2', true, 'p3'), mk('h5', false, 'p4')];
    const batch = [
      mk('h1', false, 'b1'), // revokes h1's two certificates
      mk('h3', true, 'b2'),
      before[2]!, // redelivered pass
      mk('h4', true, 'b3'),
      mk('h6', true, 'b4'),
      mk('h6', false, 'b5'), // the same host again: after b4, in call order
      before[3]!, // redelivered refusal
      mk('h7', false, 'b6'),
    ];
    const results = [];
    for (const together of [true, false]) {
      const db = await openTestDb(t, tier, 'hg_issuer_batch');
      await db.migrate(migrations);
      const published: Published[] = [];
      const issuer = newIssuer(db, published, t);
      for (const v of before) await handle(issuer, v);
      const items = issuer.writer.items;
      const batches = issuer.writer.batches;
      published.length = 0;
      if (together) await Promise.all(batch.map((v) => handle(issuer, v)));
      else for (const v of batch) await handle(issuer, v);
      if (together) {
        // One statement for seven of them; h6's refusal waits for the next batch (one host per
        // batch), and as it was built before h6's pass landed it expected nothing live: one more.
        assert.equal(issuer.writer.items - items, batch.length + 1);
        assert.equal(issuer.writer.batches - batches, 3);
      }
      results.push(await outcome(db, published));
    }
    assert.deepEqual(results[0], results[1]);
    const byId = new Map(results[0]!.events.map((e) => [e.attestationId, e]));
    assert.equal(byId.get('b1')!.revoked, 2);
    assert.equal(byId.get('b5')!.revoked, 1, 'the refusal after a pass in the same burst revokes it');
    assert.equal(byId.get('p3')!.type, 'CERTIFICATE_EVENT_TYPE_ISSUED');
    const h2 = results[0]!.hosts.find((h) => h['host_id'] === 'h2')!;
    assert.equal(h2['certificates'], 1, 'a redelivered pass issues nothing more');
  });

  test(`${tier}: two replicas racing on the same burst of verdicts decide each once`, { skip }, async (t) => {
    const db = await openTestDb(t, tier, 'hg_issuer_batch');
    await db.migrate(migrations);
    const published: Published[][] = [[], []];
    const replicas = published.map((p) => newIssuer(db, p, t));
    const verdicts = Array.from({ length: 24 }, (_, i) =>
      verdict({
        hostId: `race-${i % 12}`,
        keys: hostKeys(),
        pass: i % 3 !== 2,
        refusals: i % 3 === 2 ? [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }] : [],
      }),
    );
    // The same burst, in opposite orders (a rebalance hands a partition over while both still run).
    await Promise.all([
      ...verdicts.map((v) => handle(replicas[0]!, v)),
      ...[...verdicts].reverse().map((v) => handle(replicas[1]!, v)),
    ]);
    for (const r of replicas) assert.ok(r.writer.batches < r.writer.items, 'writes were batched');
    const events = published.map(
      (p) =>
        new Map(
          p
            .filter((m) => m.topic === 'hostgate.certificates.v1')
            .map((m) => [decodeCertificateEvent(m.value).attestationId, m.value.toString('hex')]),
        ),
    );
    for (const v of verdicts) {
      assert.ok(events[0]!.has(v.attestationId), 'replica 0 answered');
      assert.equal(events[0]!.get(v.attestationId), events[1]!.get(v.attestationId), 'with the same event');
    }
    const { rows } = await db.query<{ attestation_id: string; n: number }>(
      `SELECT a.attestation_id, (SELECT count(*)::int4 FROM certificates c WHERE c.attestation_id = a.attestation_id) AS n
       FROM attestations a`,
    );
    assert.equal(rows.length, verdicts.length);
    for (const v of verdicts) {
      assert.equal(rows.find((r) => r.attestation_id === v.attestationId)!.n, v.pass ? 1 : 0);
    }
    const hosts = await db.query('SELECT host_id FROM hosts');
    assert.equal(hosts.rows.length, 12);
  });
}

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;

  test(`${tier}: a batch without a refusal reads no live certificate, whatever the cached plan`, {
    skip,
  }, async (t) => {
    const db = await openTestDb(t, tier, 'hg_issuer_batch');
    await db.migrate(migrations);
    await db.transaction(async (tx) => {
      // The plan is built while certificates is empty and kept (as a pooled connection keeps it).
      await tx.query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", []);
      const [first] = await recordVerdicts(tx, [pass('h-first', 'first', 'f0')]);
      assert.equal(first!.outcome, 'claimed');
      await tx.query(
        `INSERT INTO certificates (serial, host_id, attestation_id, verdict_id, policy_class, policy_version,
           pcr_digest, der, not_before, not_after, issued_at)
         SELECT 'c' || i, 'h-' || i, 'att-' || i, 'v-' || i, 'web', 3, '\\x00'::bytea, '\\x00'::bytea, $1, $2, $1
         FROM generate_series(1, 400) AS i`,
        [NOW, NOT_AFTER],
      );
      const before =
        (await xactTuplesRead(tx, 'certificates')) + (await xactTuplesRead(tx, 'certificates_live_by_host'));
      const [r] = await recordVerdicts(tx, [pass('h-next', 'next', 'n0')]);
      assert.equal(r!.outcome, 'claimed');
      const read =
        (await xactTuplesRead(tx, 'certificates')) + (await xactTuplesRead(tx, 'certificates_live_by_host'));
      assert.ok(read - before < 20, `read ${read - before} certificate tuples for one issued verdict`);
    });
  });
}
