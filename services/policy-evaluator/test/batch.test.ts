// The hot path's batched statement: a batch gives what its verdicts give one at a time; the judgement
// follows activations and class assignments made by anyone between two messages; the set cache is
// bounded; concurrent messages share one statement; two replicas racing keep the first verdict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMeasurements, decodeVerdict, encodeMeasurements } from '@hostgate/protos';
import type { Db, QueryResult } from '@hostgate/service-runtime';
import { xactTuplesRead } from '@hostgate/testkit/postgres';
import {
  migrations,
  PolicyStore,
  type RecordOutcome,
  VerdictRecorder,
  type VerdictToRecord,
} from '../src/index.ts';
import { measurementsOf, openTestDb } from './harness.ts';

type After = { after: (fn: () => unknown) => void };

/** A Db that counts the statements sent through it. */
function counting(db: Db): { db: Db; statements: () => number } {
  let n = 0;
  const wrapped: Db = {
    kind: db.kind,
    schema: db.schema,
    query: <R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
      n++;
      return db.query<R>(sql, params);
    },
    transaction: (fn) => db.transaction(fn),
    migrate: (m) => db.migrate(m),
    close: () => db.close(),
  };
  return { db: wrapped, statements: () => n };
}

async function openStore(t: After): Promise<{ db: Db; store: PolicyStore }> {
  const db = await openTestDb(t);
  await db.migrate(migrations);
  return { db, store: new PolicyStore(db) };
}

const SECURE_BOOT = { class: 'default', rules: [{ id: 'sb', kind: 'secure-boot-enabled' }] };

/** default v1 active, web v1 active, host-web in class web, and one verdict stored for att-old. */
async function seed(store: PolicyStore): Promise<void> {
  await store.publish(SECURE_BOOT, 'test');
  await store.activate('default', 1, 'test');
  await store.publish({ class: 'web', rules: [{ id: 'sb', kind: 'secure-boot-enabled' }] }, 'test');
  await store.activate('web', 1, 'test');
  await store.assignHostClass('host-web', 'web', 'test');
  const [old] = await store.recordVerdicts([item('att-old', 'host-2', { verdictId: 'vid-old' })]);
  assert.equal(old?.kind, 'stored');
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

function item(
  attestationId: string,
  hostId: string,
  o: { verdictId?: string; hostClass?: string; version?: number; pass?: boolean; replayedAt?: number } = {},
): VerdictToRecord {
  const verdictId = o.verdictId ?? `vid-${attestationId}-${hostId}`;
  return {
    attestationId,
    verdictId,
    hostId,
    pass: o.pass ?? true,
    hostClass: o.hostClass ?? 'default',
    policyVersion: o.version ?? 1,
    evaluatedAt: new Date(T0),
    verdict: Buffer.from(`verdict ${verdictId}`),
    measurements:
      o.replayedAt === undefined
        ? undefined
        : { replayedAt: new Date(T0 + o.replayedAt), bytes: Buffer.from(`m ${attestationId}`) },
  };
}

function plain(o: RecordOutcome): unknown {
  return o.kind === 'stale' ? o : { ...o, verdict: Buffer.from(o.verdict).toString() };
}

async function tables(db: Db): Promise<unknown> {
  const verdicts = await db.query(
    `SELECT attestation_id, verdict_id, host_id, pass, host_class, policy_version, encode(verdict, 'escape') AS verdict
       FROM verdicts ORDER BY attestation_id`,
  );
  const hm = await db.query(
    `SELECT host_id, attestation_id, replayed_at, encode(measurements, 'escape') AS m
       FROM host_measurements ORDER BY host_id`,
  );
  return { verdicts: verdicts.rows, hostMeasurements: hm.rows };
}

test('a mixed batch gives what its verdicts give one at a time', async (t) => {
  const batched = await openStore(t);
  const single = await openStore(t);
  await seed(batched.store);
  await seed(single.store);
  const batch = [
    item('att-1', 'host-1', { replayedAt: 10 }), // new, passes, with measurements
    item('att-old', 'host-2', { replayedAt: 5 }), // redelivered: the first verdict comes back
    item('att-3', 'host-web', { hostClass: 'web', pass: false }), // another class, fails, no measurements
    item('att-4', 'host-4', { version: 2, replayedAt: 7 }), // judged against a version not active
    item('att-5', 'host-5', { hostClass: 'web' }), // judged against a class not the host's
    item('att-1', 'host-6', { replayedAt: 3 }), // same attestation again (another host): first one wins
    item('att-7', 'host-1', { replayedAt: 2 }), // older measurements of host-1: host-1 keeps att-1's
    item('att-8', 'host-8', { pass: false, replayedAt: 1 }), // new, fails, with measurements
  ];
  const together = await batched.store.recordVerdicts(batch);
  const oneByOne: RecordOutcome[] = [];
  for (const v of batch) oneByOne.push(...(await single.store.recordVerdicts([v])));
  assert.deepEqual(together.map(plain), oneByOne.map(plain));
  assert.deepEqual(await tables(batched.db), await tables(single.db));

  // And what that is, spelled out.
  const current = (hostClass: string, policyVersion: number) => ({ hostClass, policyVersion });
  assert.deepEqual(
    together.map((o) =>
      o.kind === 'stale' ? ['stale', o.current] : [o.created, o.verdictId, Buffer.from(o.verdict).toString()],
    ),
    [
      [true, 'vid-att-1-host-1', 'verdict vid-att-1-host-1'],
      [false, 'vid-old', 'verdict vid-old'],
      [true, 'vid-att-3-host-web', 'verdict vid-att-3-host-web'],
      ['stale', current('default', 1)],
      ['stale', current('default', 1)],
      [false, 'vid-att-1-host-1', 'verdict vid-att-1-host-1'],
      [true, 'vid-att-7-host-1', 'verdict vid-att-7-host-1'],
      [true, 'vid-att-8-host-8', 'verdict vid-att-8-host-8'],
    ],
  );
  assert.deepEqual(together[2]?.current, current('web', 1));
  const { hostMeasurements, verdicts } = (await tables(batched.db)) as {
    hostMeasurements: { host_id: string; attestation_id: string }[];
    verdicts: { attestation_id: string; pass: boolean }[];
  };
  assert.deepEqual(
    hostMeasurements.map((r) => [r.host_id, r.attestation_id]),
    [
      ['host-1', 'att-1'],
      ['host-2', 'att-old'],
      ['host-4', 'att-4'],
      ['host-6', 'att-1'],
      ['host-8', 'att-8'],
    ],
  );
  assert.deepEqual(
    verdicts.map((r) => [r.attestation_id, r.pass]),
    [
      ['att-1', true],
      ['att-3', false],
      ['att-7', true],
      ['att-8', false],
      ['att-old', true],
    ],
  );
  // The stale ones stored nothing: judged again against what is current, they are stored.
  const again = await batched.store.recordVerdicts([item('att-4', 'host-4'), item('att-5', 'host-5')]);
  assert.deepEqual(
    again.map((o) => o.kind === 'stored' && o.created),
    [true, true],
  );
});

function measurementsFor(attestationId: string, hostId: string, opts: { secureBoot?: boolean } = {}) {
  const m = decodeMeasurements(encodeMeasurements(measurementsOf(attestationId, hostId, opts).measurements));
  return { m, bytes: encodeMeasurements(m) };
}

test('concurrent messages share one statement; activations and class changes by another replica count at the next message', async (t) => {
  const { db: real } = await openStore(t);
  const { db, statements } = counting(real);
  const store = new PolicyStore(db);
  const recorder = new VerdictRecorder(store);
  const admin = new PolicyStore(real); // another replica's store
  const record = (attestationId: string, hostId: string, opts: { secureBoot?: boolean } = {}) => {
    const { m, bytes } = measurementsFor(attestationId, hostId, opts);
    return recorder.record(m, bytes, new Date());
  };

  const none = await record('att-0', 'host-a');
  assert.deepEqual(
    [none.verdict.policyVersion, none.verdict.refusals?.map((r) => r.code)],
    [0, ['NO_POLICY']],
  );
  assert.equal(statements(), 1);

  await admin.publish(SECURE_BOOT, 'ops');
  await admin.activate('default', 1, 'ops');
  // The hint said "no policy": the statement says v1, the set is read once, judged again.
  const n0 = statements();
  const first = await record('att-1', 'host-a');
  assert.equal(first.verdict.policyVersion, 1);
  assert.equal(first.verdict.pass, true, JSON.stringify(first.verdict.refusals));
  assert.equal(statements() - n0, 3);

  // Sixteen hosts at once: one statement for all of them.
  const n1 = statements();
  const b1 = recorder.batches;
  const many = await Promise.all(
    Array.from({ length: 16 }, (_, i) => record(`att-m${i}`, `host-m${i}`, { secureBoot: i % 2 === 0 })),
  );
  assert.equal(statements() - n1, 1);
  assert.equal(recorder.batches - b1, 1);
  assert.deepEqual(
    many.map((r) => [r.stored.created, r.verdict.pass, r.verdict.policyVersion]),
    Array.from({ length: 16 }, (_, i) => [true, i % 2 === 0, 1]),
  );
  for (const r of many) assert.deepEqual(decodeVerdict(r.stored.verdict).verdictId, r.verdict.verdictId);

  // A new version activated elsewhere: the very next message is judged against it.
  await admin.publish(
    { class: 'default', rules: [{ id: 'fd', kind: 'forbidden-digests', digests: ['00'.repeat(32)] }] },
    'ops',
  );
  await admin.activate('default', 2, 'ops');
  const v2 = await record('att-2', 'host-a');
  assert.equal(v2.verdict.policyVersion, 2);
  assert.deepEqual(v2.verdict.passedRuleIds, ['fd']);
  // Back to v1 (cached): one statement to find out, one to store.
  const n2 = statements();
  const back = await admin.activate('default', 1, 'ops');
  assert.equal(back, 2);
  const v1 = await record('att-3', 'host-a');
  assert.equal(v1.verdict.policyVersion, 1);
  assert.equal(statements() - n2, 2);
  // The host moved to a class without a policy, then the class got one.
  await admin.assignHostClass('host-a', 'db', 'ops');
  const moved = await record('att-4', 'host-a');
  assert.deepEqual([moved.verdict.hostClass, moved.verdict.policyVersion], ['db', 0]);
  assert.equal(moved.verdict.pass, false);
  await admin.publish({ ...SECURE_BOOT, class: 'db' }, 'ops');
  await admin.activate('db', 1, 'ops');
  const dbPass = await record('att-5', 'host-a');
  assert.deepEqual(
    [dbPass.verdict.hostClass, dbPass.verdict.policyVersion, dbPass.verdict.pass],
    ['db', 1, true],
  );
  // Deactivated: the next one has no policy.
  await admin.deactivate('db');
  const off = await record('att-6', 'host-a');
  assert.deepEqual([off.verdict.hostClass, off.verdict.policyVersion, off.verdict.pass], ['db', 0, false]);

  // Every stored verdict says what it was judged against.
  const { rows } = await real.query<{ attestation_id: string; host_class: string; policy_version: number }>(
    "SELECT attestation_id, host_class, policy_version FROM verdicts WHERE host_id = 'host-a' ORDER BY seq",
  );
  assert.deepEqual(
    rows.map((r) => [r.attestation_id, r.host_class, r.policy_version]),
    [
      ['att-0', 'default', 0],
      ['att-1', 'default', 1],
      ['att-2', 'default', 2],
      ['att-3', 'default', 1],
      ['att-4', 'db', 0],
      ['att-5', 'db', 1],
      ['att-6', 'db', 0],
    ],
  );
});

test('the golden set cache is bounded, least recently used out, and hands out the right set after eviction', async (t) => {
  const { db: real } = await openStore(t);
  const { db, statements } = counting(real);
  const store = new PolicyStore(db, { setCacheSize: 2 });
  assert.throws(() => new PolicyStore(db, { setCacheSize: 0 }), RangeError);
  for (let i = 1; i <= 4; i++)
    await store.publish(
      { class: 'c', description: `v${i}`, rules: [{ id: `r${i}`, kind: 'secure-boot-enabled' }] },
      't',
    );
  const get = async (v: number) => {
    const set = await store.goldenSet('c', v);
    assert.equal(set?.version, v);
    assert.equal(set?.description, `v${v}`);
    assert.equal(set?.rules[0]?.id, `r${v}`);
    return set;
  };
  const n0 = statements();
  const s1 = await get(1);
  await get(2);
  assert.equal(statements() - n0, 2);
  // Cached: no statement, the same frozen object.
  assert.equal(await get(1), s1);
  assert.ok(Object.isFrozen(s1) && Object.isFrozen(s1?.rules));
  assert.equal(statements() - n0, 2);
  await get(3); // 2 was used least recently: out
  assert.equal(store.cachedSets, 2);
  await get(1);
  assert.equal(statements() - n0, 3);
  await get(2);
  assert.equal(statements() - n0, 4);
  await get(4);
  assert.equal(store.cachedSets, 2);
  assert.equal(await store.goldenSet('c', 9), undefined);
  // Concurrent misses of one set share one statement.
  const n1 = statements();
  await Promise.all([get(1), get(1), get(1)]);
  assert.equal(statements() - n1, 1);
});

test('two replicas racing on the same attestations keep one verdict each, the first', async (t) => {
  const { db, store } = await openStore(t);
  await store.publish(SECURE_BOOT, 'ops');
  await store.activate('default', 1, 'ops');
  const replicas = [new VerdictRecorder(new PolicyStore(db)), new VerdictRecorder(new PolicyStore(db))];
  const inputs = Array.from({ length: 12 }, (_, i) => measurementsFor(`att-${i}`, `host-${i}`));
  const results = await Promise.all(
    replicas.map((r) => Promise.all(inputs.map((x) => r.record(x.m, x.bytes, new Date())))),
  );
  const { rows } = await db.query<{ attestation_id: string; verdict_id: string }>(
    'SELECT attestation_id, verdict_id FROM verdicts',
  );
  assert.equal(rows.length, 12);
  const stored = new Map(rows.map((r) => [r.attestation_id, r.verdict_id]));
  for (const [i] of inputs.entries()) {
    const [a, b] = [results[0]![i]!.stored, results[1]![i]!.stored];
    assert.equal(a.verdictId, stored.get(`att-${i}`));
    assert.equal(b.verdictId, stored.get(`att-${i}`));
    assert.deepEqual(Buffer.from(a.verdict), Buffer.from(b.verdict));
    assert.equal(Number(a.created) + Number(b.created), 1, `att-${i}: created once`);
  }
});

test('a verdict another replica commits while the statement waits on it comes back as the stored one', async (t) => {
  const { db, store } = await openStore(t);
  if (db.kind !== 'postgres') {
    t.skip('needs a server (DATABASE_URL): PGlite runs one transaction at a time');
    return;
  }
  await store.publish(SECURE_BOOT, 'ops');
  await store.activate('default', 1, 'ops');
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  let inserted = () => {};
  const didInsert = new Promise<void>((r) => {
    inserted = r;
  });
  const other = db.transaction(async (q) => {
    await q.query(
      `INSERT INTO verdicts (attestation_id, verdict_id, host_id, pass, host_class, policy_version, evaluated_at, verdict)
       VALUES ('att-race', 'vid-first', 'host-r', true, 'default', 1, now(), '\\x01')`,
    );
    inserted();
    await held;
  });
  await didInsert;
  const pending = store.recordVerdicts([
    item('att-race', 'host-r', { verdictId: 'vid-second' }),
    item('att-new', 'host-n'),
  ]);
  await new Promise((r) => setTimeout(r, 200));
  release();
  await other;
  const [raced, fresh] = await pending;
  assert.deepEqual(raced?.kind === 'stored' && [raced.created, raced.verdictId, [...raced.verdict]], [
    false,
    'vid-first',
    [1],
  ]);
  assert.deepEqual(fresh?.kind === 'stored' && [fresh.created, fresh.verdictId], [
    true,
    'vid-att-new-host-n',
  ]);
});

test('a new verdict reads no stored verdict, whatever the cached plan', async (t) => {
  const { db, store } = await openStore(t);
  await store.publish(SECURE_BOOT, 'test');
  await store.activate('default', 1, 'test');
  await db.transaction(async (tx) => {
    // The plan is built while verdicts is empty and kept (as a pooled connection keeps it).
    await tx.query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", []);
    const [first] = await store.recordVerdicts([item('att-first', 'host-1')], tx);
    assert.equal(first?.kind, 'stored');
    await tx.query(
      `INSERT INTO verdicts (attestation_id, verdict_id, host_id, pass, host_class, policy_version, evaluated_at, verdict)
       SELECT 'att-' || i, 'vid-' || i, 'host-' || i, true, 'default', 1, now(), '\\x00'::bytea
       FROM generate_series(1, 400) AS i`,
      [],
    );
    const before = (await xactTuplesRead(tx, 'verdicts')) + (await xactTuplesRead(tx, 'verdicts_pkey'));
    const [r] = await store.recordVerdicts([item('att-next', 'host-next')], tx);
    assert.equal(r?.kind === 'stored' && r.created, true);
    const read = (await xactTuplesRead(tx, 'verdicts')) + (await xactTuplesRead(tx, 'verdicts_pkey'));
    assert.ok(read - before < 20, `read ${read - before} verdict tuples for one new verdict`);
    // A redelivery still finds the stored verdict.
    const [again] = await store.recordVerdicts([item('att-first', 'host-1', { verdictId: 'vid-other' })], tx);
    assert.equal(again?.kind === 'stored' && !again.created && again.verdictId, 'vid-att-first-host-1');
  });
});
