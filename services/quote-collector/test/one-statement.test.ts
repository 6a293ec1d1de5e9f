// Attest in one statement for a remembered AK: the round trips per accepted attestation, and every
// way the remembered AK can be stale (host disabled, re-enrolled with another AK, the AK moved to
// another host), on PGlite and — when DATABASE_URL is set — on a real PostgreSQL server.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Db } from '@hostgate/service-runtime';
import { type SoftwareAk, softwareAk } from '@hostgate/tpm2-js-lite/testing';
import { QuoteCollector } from '../src/collector.ts';
import { QuoteCollectorStore } from '../src/store.ts';
import {
  attestRequest,
  enrolledCollector,
  counting,
  enrollSoftwareAk,
  REQUIRED,
  type StoreKind,
  storeMissing,
  type TestClock,
} from './helpers.ts';
import { parsePcrList } from '@hostgate/tpm2-js-lite';

type Result = Awaited<ReturnType<QuoteCollector['attest']>>;

function codes(r: Result): string[] {
  return r.kind === 'refused' ? r.refusals.map((x) => x.code) : [];
}

function collectorOver(db: Db, clock: TestClock, akCacheSize?: number): QuoteCollector {
  return new QuoteCollector({
    store: new QuoteCollectorStore(db),
    ekRoots: [],
    nonceTtlMs: 60_000,
    enrollmentTtlMs: 300_000,
    pcrSelection: parsePcrList(REQUIRED),
    now: clock.now,
    ...(akCacheSize === undefined ? {} : { akCacheSize }),
  });
}

async function nonceFor(c: QuoteCollector, akName: Uint8Array): Promise<Uint8Array> {
  const ch = await c.challenge(akName);
  assert.ok(typeof ch === 'object');
  return ch.nonce;
}

/** Enrolls and activates `ak` for an existing host (a re-provisioned AK): the previous AK stops counting. */
async function reenroll(c: QuoteCollector, hostId: string, ak: SoftwareAk, now: number): Promise<void> {
  const host = await c.store.getHost(hostId);
  assert.ok(host !== undefined);
  const enrollment = {
    enrollmentId: randomUUID(),
    akPublic: ak.publicBytes,
    akName: ak.name,
    secretDigest: new Uint8Array(32),
    createdAtMs: now,
    expiresAtMs: now + 60_000,
  };
  await c.store.addEnrollment(host, enrollment);
  await c.store.activate({ ...enrollment, hostId, activatedAtMs: undefined }, now);
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`attest in one statement (${kind})`, { skip: storeMissing(kind) }, () => {
    const setup = async (t: { after(fn: () => Promise<void>): void }) => {
      const { db, collector, clock, ak, hostId } = await enrolledCollector(kind, t);
      let tick = 1000n;
      const attest = async (c: QuoteCollector = collector, who: SoftwareAk = ak, nonce?: Uint8Array) => {
        tick += 10n;
        return c.attest(
          attestRequest({ ak: who, nonce: nonce ?? (await nonceFor(c, who.name)), clock: { clock: tick } }),
        );
      };
      return { db, collector, clock, ak, hostId, attest };
    };

    test('an accepted attestation of a remembered AK is one statement (two before, and on a miss)', async (t) => {
      const { db, clock, ak, hostId } = await setup(t);
      const perAttestation = async (akCacheSize: number | undefined) => {
        const counted = counting(db);
        const c = collectorOver(counted.db, clock, akCacheSize);
        const attestCounts: number[] = [];
        const challengeCounts: number[] = [];
        for (let i = 0; i < 4; i++) {
          let before = counted.statements.length;
          const nonce = await nonceFor(c, ak.name);
          challengeCounts.push(counted.statements.length - before);
          before = counted.statements.length;
          clock.advance(1);
          const r = await c.attest(attestRequest({ ak, nonce, clock: { clock: BigInt(clock.ms) } }));
          assert.equal(r.kind, 'accepted', JSON.stringify(codes(r)));
          assert.equal(r.hostId, hostId);
          attestCounts.push(counted.statements.length - before);
        }
        return { attestCounts, challengeCounts };
      };
      const uncached = await perAttestation(0);
      assert.deepEqual(uncached.challengeCounts, [1, 1, 1, 1]);
      assert.deepEqual(uncached.attestCounts, [2, 2, 2, 2], 'consume the nonce, then advance the counters');
      const cached = await perAttestation(undefined);
      assert.deepEqual(cached.challengeCounts, [1, 1, 1, 1]);
      assert.deepEqual(cached.attestCounts, [2, 1, 1, 1], 'a miss goes the precise way, then one statement');
      const host = await collectorOver(db, clock).store.getHost(hostId);
      assert.equal(host?.lastAttestedAtMs, clock.ms);
      const counters = await collectorOver(db, clock).store.getCounters(hostId);
      assert.equal(counters?.clock, BigInt(clock.ms));
    });

    test('the one statement records what the precise way records', async (t) => {
      const { collector, hostId, attest } = await setup(t);
      const first = await attest();
      const second = await attest();
      assert.equal(first.kind, 'accepted');
      assert.equal(second.kind, 'accepted');
      if (first.kind !== 'accepted' || second.kind !== 'accepted') return;
      for (const r of [first, second]) {
        assert.equal(r.evidence.hostId, hostId);
        assert.deepEqual(
          (await collector.store.getAttestation(r.evidence.attestationId))?.outcome,
          'PENDING',
        );
      }
      assert.deepEqual(
        {
          ...second.evidence.quoteInfo,
          clock: '',
          akName: Buffer.from(second.evidence.quoteInfo?.akName ?? []),
        },
        {
          ...first.evidence.quoteInfo,
          clock: '',
          akName: Buffer.from(first.evidence.quoteInfo?.akName ?? []),
        },
      );
      assert.deepEqual(
        Buffer.from(second.evidence.akPublic as Uint8Array),
        Buffer.from(first.evidence.akPublic as Uint8Array),
      );
      assert.equal(second.host.state, 'ACTIVE');
      assert.equal(second.host.lastAttestedAtMs !== undefined, true);
    });

    test('a host disabled after its AK was remembered: HOST_DISABLED, and the nonce is not burnt', async (t) => {
      const { collector, ak, hostId, attest } = await setup(t);
      assert.equal((await attest()).kind, 'accepted');
      await collector.store.setHostState(hostId, 'DISABLED', 'lost in transit', { actor: 'bob', atMs: 1 });
      const nonce = await nonceFor(collector, ak.name);
      const r = await attest(collector, ak, nonce);
      assert.deepEqual(codes(r), ['HOST_DISABLED']);
      assert.equal(r.hostId, hostId);
      assert.match(r.kind === 'refused' ? (r.refusals[0]?.message ?? '') : '', /lost in transit/);
      // Refused again while disabled (now without the remembered AK).
      assert.deepEqual(codes(await attest()), ['HOST_DISABLED']);
      // As before this change, a disabled host burns nothing: enabled again, the nonce still works.
      await collector.store.setHostState(hostId, 'ACTIVE', '', { actor: 'bob', atMs: 2 });
      assert.equal((await attest(collector, ak, nonce)).kind, 'accepted');
    });

    test('a host re-enrolled with another AK: the remembered old AK is UNKNOWN_AK, the new one is accepted', async (t) => {
      const { collector, clock, ak, hostId, attest } = await setup(t);
      assert.equal((await attest()).kind, 'accepted');
      const oldNonce = await nonceFor(collector, ak.name);
      const next = softwareAk('p256');
      await reenroll(collector, hostId, next, clock.ms);
      const r = await attest(collector, ak, oldNonce);
      assert.deepEqual(codes(r), ['UNKNOWN_AK']);
      assert.equal(r.hostId, '');
      const fresh = await attest(collector, next);
      assert.equal(fresh.kind, 'accepted', JSON.stringify(codes(fresh)));
      assert.equal(fresh.hostId, hostId);
      // And again, now remembered.
      assert.equal((await attest(collector, next)).hostId, hostId);
      assert.deepEqual(codes(await attest(collector, ak)), ['UNKNOWN_AK']);
    });

    test('an AK moved to another host (TPM re-provisioned): accepted for the host that trusts it now', async (t) => {
      const { collector, clock, ak, hostId, attest } = await setup(t);
      assert.equal((await attest()).kind, 'accepted');
      const other = await enrollSoftwareAk(collector, softwareAk('p256'), { now: clock.ms });
      await reenroll(collector, other, ak, clock.ms);
      assert.equal((await collector.store.getHost(hostId))?.akName, undefined);
      const r = await attest();
      assert.equal(r.kind, 'accepted', JSON.stringify(codes(r)));
      assert.equal(r.hostId, other);
      assert.equal((await attest()).hostId, other);
    });

    test('an invalid quote from a remembered AK still burns its nonce', async (t) => {
      const { collector, ak, attest } = await setup(t);
      assert.equal((await attest()).kind, 'accepted');
      const nonce = await nonceFor(collector, ak.name);
      const bad = attestRequest({ ak, nonce, clock: { clock: 999_999n } });
      bad.quote!.attest[bad.quote!.attest.length - 1]! ^= 1;
      assert.deepEqual(codes(await collector.attest(bad)), ['SIGNATURE_INVALID']);
      const r = await attest(collector, ak, nonce);
      assert.deepEqual(codes(r), ['NONCE_REUSED']);
      // A certify by another key burns it too.
      const nonce2 = await nonceFor(collector, ak.name);
      const wrong = attestRequest({
        ak,
        nonce: nonce2,
        certifier: softwareAk('p256'),
        clock: { clock: 1_999_999n },
      });
      assert.deepEqual(codes(await collector.attest(wrong)), ['CERTIFY_INVALID']);
      assert.deepEqual(codes(await attest(collector, ak, nonce2)), ['NONCE_REUSED']);
    });

    test('nonce refusals for a remembered AK are the precise ones', async (t) => {
      const { collector, clock, ak, attest } = await setup(t);
      const nonce = await nonceFor(collector, ak.name);
      assert.equal((await attest(collector, ak, nonce)).kind, 'accepted');
      assert.deepEqual(codes(await attest(collector, ak, nonce)), ['NONCE_REUSED']);
      const late = await nonceFor(collector, ak.name);
      clock.advance(60_000);
      const expired = await attest(collector, ak, late);
      assert.deepEqual(codes(expired), ['NONCE_EXPIRED']);
      assert.ok(expired.kind === 'refused' && expired.refusals[0]?.details?.['nonce_expired_at']);
      assert.deepEqual(codes(await attest(collector, ak, new Uint8Array(32))), ['NONCE_UNKNOWN']);
      const other = softwareAk('p256');
      await enrollSoftwareAk(collector, other, { now: clock.ms });
      const theirs = await nonceFor(collector, other.name);
      const stolen = await attest(collector, ak, theirs);
      assert.deepEqual(codes(stolen), ['NONCE_UNKNOWN']);
      assert.match(stolen.kind === 'refused' ? (stolen.refusals[0]?.message ?? '') : '', /another AK/);
      assert.equal((await attest(collector, other, theirs)).kind, 'accepted');
    });

    test('racing with one nonce on a remembered AK: exactly one is accepted', async (t) => {
      const { collector, ak, attest } = await setup(t);
      assert.equal((await attest()).kind, 'accepted');
      for (let round = 0; round < 3; round++) {
        const nonce = await nonceFor(collector, ak.name);
        const results = await Promise.all([
          attest(collector, ak, nonce),
          attest(collector, ak, nonce),
          attest(collector, ak, nonce),
        ]);
        assert.deepEqual(results.map((r) => r.kind).sort(), ['accepted', 'refused', 'refused']);
        assert.deepEqual(results.flatMap(codes), ['NONCE_REUSED', 'NONCE_REUSED']);
      }
    });

    test('a remembered AK with counters that do not move forward: COUNTERS_BACKWARDS, nonce burnt', async (t) => {
      const { collector, ak, hostId } = await setup(t);
      const at = async (clock: bigint, nonce?: Uint8Array) =>
        collector.attest(
          attestRequest({ ak, nonce: nonce ?? (await nonceFor(collector, ak.name)), clock: { clock } }),
        );
      assert.equal((await at(5000n)).kind, 'accepted');
      const nonce = await nonceFor(collector, ak.name);
      const r = await at(4000n, nonce);
      assert.deepEqual(codes(r), ['COUNTERS_BACKWARDS']);
      assert.equal(r.hostId, hostId);
      assert.match(
        r.kind === 'refused' ? (r.refusals[0]?.message ?? '') : '',
        /clock went from 5000 to 4000/,
      );
      assert.deepEqual(codes(await at(6000n, nonce)), ['NONCE_REUSED']);
      assert.equal((await collector.store.getCounters(hostId))?.clock, 5000n);
      // Two quotes with one clock racing on distinct nonces: one moves the counters, never both.
      const [n1, n2] = [await nonceFor(collector, ak.name), await nonceFor(collector, ak.name)];
      const results = await Promise.all([at(7000n, n1), at(7000n, n2)]);
      assert.deepEqual(results.map((x) => x.kind).sort(), ['accepted', 'refused']);
      assert.deepEqual(results.flatMap(codes), ['COUNTERS_BACKWARDS']);
    });

    test('the remembered AKs are bounded: one evicted goes the precise way again', async (t) => {
      const { db, clock } = await setup(t);
      const counted = counting(db);
      const c = collectorOver(counted.db, clock, 1);
      const aks = [softwareAk('p256'), softwareAk('p256')];
      for (const ak of aks) await enrollSoftwareAk(c, ak, { now: clock.ms });
      const statementsOf = async (ak: SoftwareAk) => {
        const nonce = await nonceFor(c, ak.name);
        clock.advance(1);
        const before = counted.statements.length;
        const r = await c.attest(attestRequest({ ak, nonce, clock: { clock: BigInt(clock.ms) } }));
        assert.equal(r.kind, 'accepted');
        return counted.statements.length - before;
      };
      assert.deepEqual(
        [
          await statementsOf(aks[0]!),
          await statementsOf(aks[0]!),
          await statementsOf(aks[1]!),
          await statementsOf(aks[0]!),
        ],
        [2, 1, 2, 2],
      );
    });
  });
}
