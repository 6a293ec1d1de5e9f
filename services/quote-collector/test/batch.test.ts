// Concurrent calls share one statement (Batcher): the nonce inserts of GetChallenge and the
// one-statement Attest of remembered AKs. A mixed batch must decide every item exactly as the
// same items one at a time do (outcomes and what is left in the store), on PGlite and — when
// DATABASE_URL is set — on a real PostgreSQL server.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Db } from '@hostgate/service-runtime';
import { type SoftwareAk, softwareAk } from '@hostgate/tpm2-js-lite/testing';
import { hostIdForEk, MAX_LIVE_NONCES, type QuoteCollector } from '../src/collector.ts';
import {
  type CountersRecord,
  QuoteCollectorStore,
  type RememberedAttestation,
  type RememberedOutcome,
} from '../src/store.ts';
import {
  attestRequest,
  counting,
  enrollSoftwareAk,
  newCollector,
  openTestDb,
  type StoreKind,
  softwareEkPublic,
  storeMissing,
  TestClock,
} from './helpers.ts';

type Result = Awaited<ReturnType<QuoteCollector['attest']>>;

const codes = (r: Result): string[] => (r.kind === 'refused' ? r.refusals.map((x) => x.code) : []);

const T0 = Date.UTC(2026, 0, 1);
const TTL = 60_000;

const counters = (clock: bigint, resetCount = 1, restartCount = 0): CountersRecord => ({
  resetCount,
  restartCount,
  clock,
  safe: true,
  firmwareVersion: 7n,
  quoteInfoJson: JSON.stringify({ clock: String(clock) }),
});

/** What each item of the mixed batch is, and the outcome it must get. */
const CASES = [
  ['valid, counters move forward', 'accepted'],
  ['valid, the host has no counters yet', 'accepted'],
  ['reused nonce', 'nonce-not-consumed'],
  ['expired nonce', 'nonce-not-consumed'],
  ['counters backwards (clock)', 'counters-backwards'],
  ['counters not ahead (same clock)', 'counters-backwards'],
  ['host disabled', 'nonce-not-consumed'],
  ['host trusts another AK now', 'nonce-not-consumed'],
  ['nonce issued to another AK', 'nonce-not-consumed'],
  ['nonce never issued', 'nonce-not-consumed'],
  ['valid, a restart brings a smaller clock', 'accepted'],
] as const;

/** Keys and nonces shared by the two stores, so both start from the same state. */
interface Fixture {
  aks: SoftwareAk[];
  replacementAk: SoftwareAk;
  eks: Uint8Array[];
  nonces: Uint8Array[];
}

function fixture(): Fixture {
  return {
    aks: CASES.map(() => softwareAk('p256')),
    replacementAk: softwareAk('p256'),
    eks: CASES.map(() => softwareEkPublic()),
    nonces: CASES.map(() => new Uint8Array(randomBytes(32))),
  };
}

async function enroll(store: QuoteCollectorStore, ek: Uint8Array, ak: SoftwareAk, at: number) {
  const hostId = hostIdForEk(ek);
  const enrollment = {
    enrollmentId: randomUUID(),
    akPublic: ak.publicBytes,
    akName: ak.name,
    secretDigest: new Uint8Array(32),
    createdAtMs: at,
    expiresAtMs: at + TTL,
  };
  await store.addEnrollment(
    { hostId, ekPublic: ek, ekCertificate: new Uint8Array([0x30, 0]), ekCertificateIssuer: 'CN=test' },
    enrollment,
  );
  await store.activate({ ...enrollment, hostId, activatedAtMs: undefined }, at);
  return hostId;
}

/** Seeds `store` with the situation of every case and returns the items of the mixed batch. */
async function seed(store: QuoteCollectorStore, f: Fixture): Promise<RememberedAttestation[]> {
  const hostIds: string[] = [];
  for (const [i, ek] of f.eks.entries()) hostIds.push(await enroll(store, ek, f.aks[i]!, T0));
  // Every host but #1 has counters (clock 1000 within 1/0).
  for (const [i, hostId] of hostIds.entries())
    if (i !== 1) assert.ok(await store.advanceCounters(hostId, counters(1000n), T0, `seed-${i}`));
  const issue = async (i: number, akName: Uint8Array, at: number) =>
    assert.deepEqual(
      await store.addNonces([{ nonce: f.nonces[i]!, akName, issuedAtMs: at, expiresAtMs: at + TTL }], 16),
      [true],
    );
  for (const i of [0, 1, 2, 4, 5, 6, 7, 10]) await issue(i, f.aks[i]!.name, T0 + 1);
  await issue(3, f.aks[3]!.name, T0 - TTL); // expired by T0
  await issue(8, f.aks[0]!.name, T0 + 1); // #8 presents a nonce issued to #0's AK
  // #2's nonce was used already.
  const used = await store.hostConsumingNonce(f.aks[2]!.name, f.nonces[2]!, T0 + 2);
  assert.equal(used.nonce.kind, 'consumed');
  await store.setHostState(hostIds[6]!, 'DISABLED', 'test', { actor: 't', atMs: T0 + 3 });
  // #7 was re-enrolled with another AK after the collector remembered the first.
  await store.addEnrollment(
    {
      hostId: hostIds[7]!,
      ekPublic: f.eks[7]!,
      ekCertificate: new Uint8Array([0x30, 0]),
      ekCertificateIssuer: 'CN=test',
    },
    {
      enrollmentId: randomUUID(),
      akPublic: f.replacementAk.publicBytes,
      akName: f.replacementAk.name,
      secretDigest: new Uint8Array(32),
      createdAtMs: T0 + 4,
      expiresAtMs: T0 + 4 + TTL,
    },
  );
  const [pending] = (
    await store.db.query<{ enrollment_id: string }>(
      'SELECT enrollment_id FROM enrollments WHERE host_id = $1 AND activated_at_ms IS NULL',
      [hostIds[7]!],
    )
  ).rows;
  const replacement = await store.getEnrollment(String(pending?.enrollment_id));
  assert.ok(replacement !== undefined);
  await store.activate(replacement, T0 + 4);

  const clockOf = [2000n, 5n, 2000n, 2000n, 999n, 1000n, 2000n, 2000n, 2000n, 2000n, 3n];
  return CASES.map((_, i) => ({
    ak: { hostId: hostIds[i]!, akName: f.aks[i]!.name, akPublic: f.aks[i]!.publicBytes },
    nonce: i === 9 ? new Uint8Array(32).fill(9) : f.nonces[i]!,
    next: i === 10 ? counters(clockOf[i]!, 1, 1) : counters(clockOf[i]!),
    nowMs: T0 + 100 + i,
    attestationId: `att-${i}`,
  }));
}

/** What the statements leave behind, comparable across two stores. */
async function dump(db: Db) {
  const q = async (sql: string) =>
    (await db.query(sql)).rows.map((r) =>
      JSON.stringify(r, (_k, v) =>
        typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
      ),
    );
  return {
    nonces: await q('SELECT nonce, ak_name, used_at_ms, expires_at_ms FROM nonces ORDER BY nonce'),
    counters: await q(
      'SELECT host_id, reset_count, restart_count, clock::text, safe, firmware_version::text, quote_info, updated_at_ms FROM counters ORDER BY host_id',
    ),
    attestations: await q(
      'SELECT attestation_id, host_id, created_at_ms, outcome FROM attestations ORDER BY attestation_id',
    ),
    hosts: await q('SELECT host_id, state, last_attested_at_ms, ak_name FROM hosts ORDER BY host_id'),
  };
}

const summary = (o: RememberedOutcome) =>
  o.kind === 'accepted' ? `accepted ${o.host.hostId} ${o.host.lastAttestedAtMs}` : o.kind;

async function nonceFor(c: QuoteCollector, akName: Uint8Array): Promise<Uint8Array> {
  const ch = await c.challenge(akName);
  assert.ok(typeof ch === 'object', String(ch));
  return ch.nonce;
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`batched statements (${kind})`, { skip: storeMissing(kind) }, () => {
    test('a mixed Attest batch decides each item as one at a time does, in one statement', async (t) => {
      const f = fixture();
      const one = await openTestDb(kind);
      t.after(one.close);
      const all = await openTestDb(kind);
      t.after(all.close);
      const singleStore = new QuoteCollectorStore(one.db);
      const counted = counting(all.db);
      const batchStore = new QuoteCollectorStore(counted.db);
      const singleItems = await seed(singleStore, f);
      const batchItems = await seed(batchStore, f);
      assert.deepEqual(await dump(one.db), await dump(all.db), 'both stores start alike');

      const singles: RememberedOutcome[] = [];
      for (const item of singleItems) singles.push(...(await singleStore.consumeNoncesAndAdvance([item])));
      const before = counted.statements.length;
      // In reverse order, so a result matched to the wrong item cannot pass.
      const reversed = await batchStore.consumeNoncesAndAdvance([...batchItems].reverse());
      assert.equal(counted.statements.length - before, 1);
      const batched = reversed.reverse();

      assert.deepEqual(
        singles.map((o) => o.kind),
        CASES.map(([, expected]) => expected),
      );
      assert.deepEqual(batched.map(summary), singles.map(summary));
      for (const [i, o] of batched.entries())
        if (o.kind === 'accepted') {
          assert.equal(o.host.hostId, batchItems[i]!.ak.hostId);
          assert.equal(o.host.lastAttestedAtMs, batchItems[i]!.nowMs);
        }
      assert.deepEqual(await dump(all.db), await dump(one.db));
      // Spot checks of what both left: burnt nonces, and counters moved only for the accepted.
      const after = await batchStore.getCounters(batchItems[4]!.ak.hostId);
      assert.equal(after?.clock, 1000n);
      assert.equal((await batchStore.getCounters(batchItems[0]!.ak.hostId))?.clock, 2000n);
      assert.equal((await batchStore.getCounters(batchItems[10]!.ak.hostId))?.restartCount, 1);
      const nonceUsed = async (i: number) =>
        (
          await all.db.query<{ used_at_ms: bigint | null }>(
            'SELECT used_at_ms FROM nonces WHERE nonce = $1',
            [Buffer.from(f.nonces[i]!)],
          )
        ).rows[0]?.used_at_ms ?? null;
      assert.equal(await nonceUsed(4), BigInt(batchItems[4]!.nowMs), 'counters backwards burns the nonce');
      assert.equal(await nonceUsed(6), null, 'a disabled host burns nothing');
      assert.equal(await nonceUsed(8), null, "another AK's nonce is not burnt");
      assert.equal(await nonceUsed(3), null, 'an expired nonce stays unused');

      // Again with the same nonces: nothing is consumed twice.
      const again = await batchStore.consumeNoncesAndAdvance(
        batchItems.map((item, i) => ({ ...item, attestationId: `again-${i}`, nowMs: item.nowMs + 1 })),
      );
      assert.deepEqual(
        again.map((o) => o.kind),
        CASES.map(() => 'nonce-not-consumed'),
      );
      // One host twice in one statement is refused before the store is touched.
      await assert.rejects(
        batchStore.consumeNoncesAndAdvance([batchItems[0]!, { ...batchItems[0]!, attestationId: 'x' }]),
        /one item per host/,
      );
    });

    test('a mixed batch of nonce inserts: one statement, and the live-nonce cap per AK still holds', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const store = new QuoteCollectorStore(db);
      const full = softwareAk('p256').name;
      const nearlyFull = softwareAk('p256').name;
      const fresh = softwareAk('p256').name;
      const item = (akName: Uint8Array, at = T0) => ({
        nonce: new Uint8Array(randomBytes(32)),
        akName,
        issuedAtMs: at,
        expiresAtMs: at + TTL,
      });
      assert.deepEqual(
        await store.addNonces(
          Array.from({ length: MAX_LIVE_NONCES }, () => item(full)),
          MAX_LIVE_NONCES,
        ),
        Array.from({ length: MAX_LIVE_NONCES }, () => true),
      );
      await store.addNonces(
        Array.from({ length: MAX_LIVE_NONCES - 1 }, () => item(nearlyFull)),
        MAX_LIVE_NONCES,
      );
      const batch = [item(fresh), item(full), item(nearlyFull), item(full, T0 + TTL)];
      assert.deepEqual(await store.addNonces(batch, MAX_LIVE_NONCES), [true, false, true, true]);
      const stored = await db.query<{ n: bigint }>(
        'SELECT count(*) AS n FROM nonces WHERE nonce = ANY($1::bytea[])',
        [batch.map((b) => Buffer.from(b.nonce))],
      );
      assert.equal(Number(stored.rows[0]?.n), 3);
    });

    test('concurrent GetChallenge calls share statements; one AK never shares its last place', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const counted = counting(db);
      const collector = newCollector(counted.db, new TestClock());
      const names = Array.from({ length: 20 }, () => softwareAk('p256').name);
      const before = counted.statements.length;
      const got = await Promise.all(names.map((n) => collector.challenge(n)));
      assert.ok(got.every((g) => typeof g === 'object'));
      const statements = counted.statements.length - before;
      t.diagnostic(`${names.length} challenges in ${statements} statements`);
      assert.ok(statements < names.length, `${statements} statements`);
      // An AK with one place left, asked three times at once: one nonce, two refusals.
      const ak = names[0]!;
      for (let i = 1; i < MAX_LIVE_NONCES - 1; i++) await nonceFor(collector, ak);
      const racing = await Promise.all([
        collector.challenge(ak),
        collector.challenge(ak),
        collector.challenge(ak),
      ]);
      assert.deepEqual(
        racing.map((r) => (typeof r === 'object' ? 'nonce' : r)),
        ['nonce', 'too-many', 'too-many'],
      );
    });

    test('nonces are 32 fresh bytes each, across refills of the random block', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const collector = newCollector(db, new TestClock());
      const seen = new Set<string>();
      for (let round = 0; round < 20; round++) {
        const got = await Promise.all(
          Array.from({ length: 15 }, () => collector.challenge(new Uint8Array(randomBytes(34)))),
        );
        for (const g of got) {
          assert.ok(typeof g === 'object' && g.nonce.length === 32);
          seen.add(Buffer.from(g.nonce).toString('hex'));
        }
      }
      assert.equal(seen.size, 300);
    });

    test('two replicas racing on the same hosts: each nonce is used once, each clock value once', async (t) => {
      const { db, close } = await openTestDb(kind);
      t.after(close);
      const clock = new TestClock();
      const replicas = [newCollector(db, clock), newCollector(db, clock)] as const;
      const aks = Array.from({ length: 4 }, () => softwareAk('p256'));
      const hostIds: string[] = [];
      for (const ak of aks) hostIds.push(await enrollSoftwareAk(replicas[0], ak, { now: clock.ms }));
      let tick = 1000n;
      // Both replicas remember every AK.
      for (const r of replicas)
        for (const ak of aks) {
          tick += 1n;
          const got = await r.attest(
            attestRequest({ ak, nonce: await nonceFor(r, ak.name), clock: { clock: tick } }),
          );
          assert.equal(got.kind, 'accepted', JSON.stringify(codes(got)));
        }
      for (let round = 0; round < 3; round++) {
        // The same request (one nonce) to both replicas at once, for every host.
        const same = [];
        for (const ak of aks) {
          tick += 10n;
          same.push(
            attestRequest({ ak, nonce: await nonceFor(replicas[0], ak.name), clock: { clock: tick } }),
          );
        }
        const replayed = await Promise.all(same.flatMap((req) => replicas.map((r) => r.attest(req))));
        for (const [h, hostId] of hostIds.entries()) {
          const pair = replayed.slice(2 * h, 2 * h + 2);
          assert.deepEqual(pair.map((r) => r.kind).sort(), ['accepted', 'refused'], `host ${h}`);
          assert.deepEqual(pair.flatMap(codes), ['NONCE_REUSED']);
          assert.ok(pair.every((r) => r.hostId === hostId));
        }
        // Two quotes with one clock value on distinct nonces, one to each replica.
        const pairs = [];
        for (const ak of aks) {
          tick += 10n;
          pairs.push([
            attestRequest({ ak, nonce: await nonceFor(replicas[0], ak.name), clock: { clock: tick } }),
            attestRequest({ ak, nonce: await nonceFor(replicas[1], ak.name), clock: { clock: tick } }),
          ]);
        }
        const sameClock = await Promise.all(
          pairs.flatMap(([a, b]) => [replicas[0].attest(a!), replicas[1].attest(b!)]),
        );
        for (const h of hostIds.keys()) {
          const pair = sameClock.slice(2 * h, 2 * h + 2);
          assert.deepEqual(pair.map((r) => r.kind).sort(), ['accepted', 'refused'], `host ${h}`);
          assert.deepEqual(pair.flatMap(codes), ['COUNTERS_BACKWARDS']);
        }
      }
      for (const hostId of hostIds)
        assert.equal(
          (await replicas[1].store.getCounters(hostId))?.clock,
          tick - 30n + BigInt(10 * hostIds.indexOf(hostId)),
        );
    });

    test('concurrent Attests of several hosts: the outcomes of one at a time, in fewer statements', async (t) => {
      // The same scenario twice, on two stores: awaited one by one, then all started at once.
      const run = async (concurrent: boolean) => {
        const { db, close } = await openTestDb(kind);
        t.after(close);
        const clock = new TestClock();
        const counted = counting(db);
        const collector = newCollector(counted.db, clock);
        const aks = Array.from({ length: 7 }, () => softwareAk('p256'));
        const hostIds: string[] = [];
        for (const ak of aks) hostIds.push(await enrollSoftwareAk(collector, ak, { now: clock.ms }));
        // Every AK remembered, counters at 1000.
        for (const ak of aks) {
          const r = await collector.attest(
            attestRequest({ ak, nonce: await nonceFor(collector, ak.name), clock: { clock: 1000n } }),
          );
          assert.equal(r.kind, 'accepted', JSON.stringify(codes(r)));
        }
        const [a0, a1, a2, a3, a4, a5, a6] = aks as [
          SoftwareAk,
          SoftwareAk,
          SoftwareAk,
          SoftwareAk,
          SoftwareAk,
          SoftwareAk,
          SoftwareAk,
        ];
        const expiring = await nonceFor(collector, a2.name);
        clock.advance(TTL);
        const used = await nonceFor(collector, a1.name);
        assert.equal(
          (await collector.attest(attestRequest({ ak: a1, nonce: used, clock: { clock: 1500n } }))).kind,
          'accepted',
        );
        await collector.store.setHostState(hostIds[5]!, 'DISABLED', 'stolen', { actor: 't', atMs: 1 });
        const requests = [
          attestRequest({ ak: a0, nonce: await nonceFor(collector, a0.name), clock: { clock: 2000n } }),
          attestRequest({ ak: a1, nonce: used, clock: { clock: 2000n } }),
          attestRequest({ ak: a2, nonce: expiring, clock: { clock: 2000n } }),
          attestRequest({ ak: a3, nonce: await nonceFor(collector, a3.name), clock: { clock: 900n } }),
          // One host three times: in call order, each after the previous.
          attestRequest({ ak: a4, nonce: await nonceFor(collector, a4.name), clock: { clock: 2000n } }),
          attestRequest({ ak: a4, nonce: await nonceFor(collector, a4.name), clock: { clock: 3000n } }),
          attestRequest({ ak: a4, nonce: await nonceFor(collector, a4.name), clock: { clock: 3000n } }),
          attestRequest({ ak: a5, nonce: await nonceFor(collector, a5.name), clock: { clock: 2000n } }),
          attestRequest({ ak: a6, nonce: await nonceFor(collector, a0.name), clock: { clock: 2000n } }),
          attestRequest({ ak: a6, nonce: new Uint8Array(32), clock: { clock: 2000n } }),
          attestRequest({ ak: a6, nonce: await nonceFor(collector, a6.name), clock: { clock: 2000n } }),
        ];
        const before = counted.statements.length;
        const batchesBefore = collector.attestBatcher.batches;
        const results: Result[] = [];
        if (concurrent) results.push(...(await Promise.all(requests.map((r) => collector.attest(r)))));
        else for (const r of requests) results.push(await collector.attest(r));
        return {
          outcomes: results.map((r) => `${r.kind} ${r.hostId} ${codes(r).join(',')}`),
          hostIds,
          statements: counted.statements.length - before,
          batches: collector.attestBatcher.batches - batchesBefore,
          counters: await Promise.all(
            hostIds.map(async (h) => (await collector.store.getCounters(h))?.clock),
          ),
        };
      };
      const sequential = await run(false);
      const concurrent = await run(true);
      const expected = (hostIds: string[]) =>
        [
          ['accepted', 0, ''],
          ['refused', 1, 'NONCE_REUSED'],
          ['refused', 2, 'NONCE_EXPIRED'],
          ['refused', 3, 'COUNTERS_BACKWARDS'],
          ['accepted', 4, ''],
          ['accepted', 4, ''],
          ['refused', 4, 'COUNTERS_BACKWARDS'],
          ['refused', 5, 'HOST_DISABLED'],
          ['refused', 6, 'NONCE_UNKNOWN'],
          ['refused', 6, 'NONCE_UNKNOWN'],
          ['accepted', 6, ''],
        ].map(([k, h, c]) => `${k} ${hostIds[h as number]} ${c}`);
      assert.deepEqual(sequential.outcomes, expected(sequential.hostIds));
      assert.deepEqual(concurrent.outcomes, expected(concurrent.hostIds));
      assert.deepEqual(concurrent.counters, sequential.counters);
      t.diagnostic(
        `11 attestations: ${sequential.statements} statements one at a time, ${concurrent.statements} at once (${concurrent.batches} batches)`,
      );
      assert.equal(sequential.batches, 11);
      // The three of one host need three batches; the rest share the first.
      assert.equal(concurrent.batches, 3);
      assert.ok(concurrent.statements < sequential.statements);
    });
  });
}
