// The collector's half of Attest, with software AKs (every check a quote or certify must pass), on
// PGlite and — when DATABASE_URL is set — on a real PostgreSQL server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { samplePcrs, softwareAk } from '@hostgate/tpm2-js-lite/testing';
import {
  countersProblem,
  MAX_EVENT_LOG_BYTES,
  MAX_LIVE_NONCES,
  type QuoteCollector,
} from '../src/collector.ts';
import {
  attestRequest,
  enrolledCollector,
  enrollSoftwareAk,
  newCollector,
  openTestDb,
  type StoreKind,
  storeMissing,
  subjectKey,
  TestClock,
} from './helpers.ts';

type Result = Awaited<ReturnType<QuoteCollector['attest']>>;

function codes(r: Result): string[] {
  return r.kind === 'refused' ? r.refusals.map((x) => x.code) : [];
}

async function nonceFor(c: QuoteCollector, akName: Uint8Array): Promise<Uint8Array> {
  const ch = await c.challenge(akName);
  assert.ok(typeof ch === 'object');
  assert.equal(ch.nonce.length, 32);
  return ch.nonce;
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`attest checks (${kind})`, { skip: storeMissing(kind) }, () => {
    const setup = (t: { after(fn: () => Promise<void>): void }) => enrolledCollector(kind, t);

    test('a valid quote and certify are accepted, with the evidence filled in', async (t) => {
      const { collector, ak, hostId } = await setup(t);
      const nonce = await nonceFor(collector, ak.name);
      const r = await collector.attest(attestRequest({ ak, nonce, clock: { clock: 5000n } }));
      assert.equal(r.kind, 'accepted', JSON.stringify(codes(r)));
      if (r.kind !== 'accepted') return;
      const e = r.evidence;
      assert.equal(e.hostId, hostId);
      assert.match(e.attestationId, /^[0-9a-f-]{36}$/);
      assert.deepEqual(Buffer.from(e.nonce as Uint8Array), Buffer.from(nonce));
      assert.equal(e.quoteInfo?.clock, '5000');
      assert.equal(e.quoteInfo?.pcrDigestAlgorithm, 'HASH_ALGORITHM_SHA256');
      assert.deepEqual(e.quoteInfo?.pcrSelection, [
        { hashAlgorithm: 'HASH_ALGORITHM_SHA256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] },
      ]);
      assert.deepEqual(Buffer.from(e.akPublic as Uint8Array), Buffer.from(ak.publicBytes));
      const host = await collector.store.getHost(hostId);
      assert.equal(host?.lastAttestedAtMs !== undefined, true);
    });

    test('UNKNOWN_AK for an AK never enrolled; AK_NOT_ACTIVATED for one enrolled but not activated', async (t) => {
      const { collector, clock } = await setup(t);
      const stranger = softwareAk('p256');
      let r = await collector.attest(
        attestRequest({ ak: stranger, nonce: await nonceFor(collector, stranger.name) }),
      );
      assert.deepEqual(codes(r), ['UNKNOWN_AK']);
      const pending = softwareAk('rsa2048');
      const pendingHost = await enrollSoftwareAk(collector, pending, { activate: false, now: clock.ms });
      r = await collector.attest(
        attestRequest({ ak: pending, nonce: await nonceFor(collector, pending.name) }),
      );
      assert.deepEqual(codes(r), ['AK_NOT_ACTIVATED']);
      assert.equal(r.hostId, pendingHost);
    });

    test('a nonce is single use, expires, and must have been issued to this AK', async (t) => {
      const { collector, clock, ak } = await setup(t);
      const nonce = await nonceFor(collector, ak.name);
      assert.equal(
        (await collector.attest(attestRequest({ ak, nonce, clock: { clock: 10n } }))).kind,
        'accepted',
      );
      assert.deepEqual(codes(await collector.attest(attestRequest({ ak, nonce, clock: { clock: 20n } }))), [
        'NONCE_REUSED',
      ]);

      const late = await nonceFor(collector, ak.name);
      clock.advance(60_000);
      const expired = await collector.attest(attestRequest({ ak, nonce: late, clock: { clock: 30n } }));
      assert.deepEqual(codes(expired), ['NONCE_EXPIRED']);
      assert.ok(expired.kind === 'refused' && expired.refusals[0]?.details?.['nonce_expired_at']);

      const justInTime = await nonceFor(collector, ak.name);
      clock.advance(59_999);
      assert.equal(
        (await collector.attest(attestRequest({ ak, nonce: justInTime, clock: { clock: 40n } }))).kind,
        'accepted',
      );

      const never = new Uint8Array(randomBytes(32));
      assert.deepEqual(codes(await collector.attest(attestRequest({ ak, nonce: never }))), ['NONCE_UNKNOWN']);
      const other = softwareAk('p256');
      await enrollSoftwareAk(collector, other, { now: clock.ms });
      const othersNonce = await nonceFor(collector, other.name);
      assert.deepEqual(codes(await collector.attest(attestRequest({ ak, nonce: othersNonce }))), [
        'NONCE_UNKNOWN',
      ]);
      // The other AK can still use it: a stolen nonce attempt does not burn it.
      assert.equal(
        (await collector.attest(attestRequest({ ak: other, nonce: othersNonce }))).kind,
        'accepted',
      );
    });

    test('two attestations racing with one nonce: exactly one is accepted', async (t) => {
      const { collector, ak } = await setup(t);
      const nonce = await nonceFor(collector, ak.name);
      const results = await Promise.all([
        collector.attest(attestRequest({ ak, nonce, clock: { clock: 100n } })),
        collector.attest(attestRequest({ ak, nonce, clock: { clock: 200n } })),
      ]);
      assert.deepEqual(results.map((r) => r.kind).sort(), ['accepted', 'refused']);
      assert.deepEqual(results.flatMap(codes), ['NONCE_REUSED']);
    });

    test('PCR_SELECTION_MISMATCH for a quote over other PCRs, or values for PCRs not quoted', async (t) => {
      const { collector, ak } = await setup(t);
      const other = samplePcrs('sha256', [8, 9, 10]);
      let r = await collector.attest(
        attestRequest({ ak, nonce: await nonceFor(collector, ak.name), pcrs: other }),
      );
      assert.deepEqual(codes(r), ['PCR_SELECTION_MISMATCH']);
      // More than required is refused too: the selection is exact.
      const more = samplePcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      r = await collector.attest(
        attestRequest({ ak, nonce: await nonceFor(collector, ak.name), pcrs: more }),
      );
      assert.deepEqual(codes(r), ['PCR_SELECTION_MISMATCH']);
      const sha1 = samplePcrs('sha1', [0, 1, 2, 3, 4, 5, 6, 7]);
      r = await collector.attest(
        attestRequest({ ak, nonce: await nonceFor(collector, ak.name), pcrs: sha1 }),
      );
      assert.deepEqual(codes(r), ['PCR_SELECTION_MISMATCH']);
      // A value for a PCR the quote does not cover.
      const req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name) });
      req.quote!.pcrBanks[0]!.pcrs.push({ index: 12, digest: Buffer.alloc(32) });
      assert.deepEqual(codes(await collector.attest(req)), ['PCR_SELECTION_MISMATCH']);
    });

    test('SIGNATURE_INVALID, PCR_DIGEST_MISMATCH, NONCE_MISMATCH and QUOTE_MALFORMED from a tampered quote', async (t) => {
      const { collector, ak } = await setup(t);
      let req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name) });
      req.quote!.attest[req.quote!.attest.length - 1]! ^= 1;
      assert.deepEqual(codes(await collector.attest(req)), ['SIGNATURE_INVALID']);

      req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name) });
      req.quote!.pcrBanks[0]!.pcrs[3]!.digest[0]! ^= 1;
      assert.deepEqual(codes(await collector.attest(req)), ['PCR_DIGEST_MISMATCH']);

      // Quote and certify made over another nonce than the one presented.
      const presented = await nonceFor(collector, ak.name);
      req = attestRequest({ ak, nonce: new Uint8Array(randomBytes(32)) });
      req.nonce = Buffer.from(presented);
      assert.deepEqual(codes(await collector.attest(req)), ['NONCE_MISMATCH', 'NONCE_MISMATCH']);

      req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name) });
      req.quote!.attest = req.quote!.attest.subarray(0, 10);
      assert.deepEqual(codes(await collector.attest(req)), ['QUOTE_MALFORMED']);
    });

    test('CERTIFY_INVALID and SUBJECT_KEY_UNSUITABLE for the certified key', async (t) => {
      const { collector, ak } = await setup(t);
      // Certified by some other key than the AK.
      let req = attestRequest({
        ak,
        nonce: await nonceFor(collector, ak.name),
        certifier: softwareAk('p256'),
      });
      assert.deepEqual(codes(await collector.attest(req)), ['CERTIFY_INVALID']);
      // The certification names another key than the one presented.
      req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name) });
      req.certifiedKey!.keyPublic = Buffer.from(subjectKey().publicBytes);
      assert.deepEqual(codes(await collector.attest(req)), ['CERTIFY_INVALID']);
      // Restricted (an AK-like key) and RSA keys cannot be the subject key; neither can an importable one.
      for (const key of [
        softwareAk('p256'),
        softwareAk('rsa2048', { attributes: 0x00040072 }),
        subjectKey(0x00040052),
      ]) {
        req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name), key });
        assert.deepEqual(codes(await collector.attest(req)), ['SUBJECT_KEY_UNSUITABLE']);
      }
    });

    test('EVIDENCE_TOO_LARGE for an event log over 8 MiB, and the log at the cap is accepted', async (t) => {
      const { collector, ak } = await setup(t);
      let req = attestRequest({
        ak,
        nonce: await nonceFor(collector, ak.name),
        eventLog: new Uint8Array(MAX_EVENT_LOG_BYTES + 1),
      });
      const r = await collector.attest(req);
      assert.deepEqual(codes(r), ['EVIDENCE_TOO_LARGE']);
      assert.equal(r.kind === 'refused' && r.refusals[0]?.details?.['limit'], String(8 * 1024 * 1024));
      req = attestRequest({
        ak,
        nonce: await nonceFor(collector, ak.name),
        eventLog: new Uint8Array(MAX_EVENT_LOG_BYTES),
        clock: { clock: 9n },
      });
      assert.equal((await collector.attest(req)).kind, 'accepted');
    });

    test('COUNTERS_BACKWARDS: reset, restart and clock never move backwards for a host', async (t) => {
      const { collector, ak } = await setup(t);
      const at = async (clock: bigint, resetCount: number, restartCount: number) =>
        collector.attest(
          attestRequest({
            ak,
            nonce: await nonceFor(collector, ak.name),
            clock: { clock, resetCount, restartCount },
          }),
        );
      assert.equal((await at(1000n, 5, 2)).kind, 'accepted');
      assert.deepEqual(codes(await at(999n, 5, 2)), ['COUNTERS_BACKWARDS']);
      assert.deepEqual(codes(await at(1000n, 5, 2)), ['COUNTERS_BACKWARDS'], 'a replayed clock value');
      assert.deepEqual(codes(await at(5000n, 5, 1)), ['COUNTERS_BACKWARDS'], 'restartCount went down');
      assert.deepEqual(codes(await at(5000n, 4, 9)), ['COUNTERS_BACKWARDS'], 'resetCount went down');
      // A refused quote does not move the counters: 1001 within 5/2 is still fine.
      assert.equal((await at(1001n, 5, 2)).kind, 'accepted');
      // A restart (resume) or a reboot may bring a smaller clock.
      assert.equal((await at(10n, 5, 3)).kind, 'accepted');
      assert.equal((await at(5n, 6, 0)).kind, 'accepted');
      assert.deepEqual(codes(await at(4n, 6, 0)), ['COUNTERS_BACKWARDS']);
    });

    test('HOST_DISABLED once an operator disables the host', async (t) => {
      const { collector, ak, hostId } = await setup(t);
      await collector.store.setHostState(hostId, 'DISABLED', 'stolen', { actor: 'alice', atMs: 1 });
      assert.deepEqual(
        (await collector.store.auditOf(hostId)).map((a) => [a.actor, a.action, JSON.parse(a.details)]),
        [['alice', 'SetHostState', { from: 'ACTIVE', to: 'DISABLED', reason: 'stolen' }]],
      );
      const r = await collector.attest(attestRequest({ ak, nonce: await nonceFor(collector, ak.name) }));
      assert.deepEqual(codes(r), ['HOST_DISABLED']);
      assert.match(r.kind === 'refused' ? (r.refusals[0]?.message ?? '') : '', /stolen/);
    });
  });
}

test('an AK holds at most MAX_LIVE_NONCES unused nonces; using or outliving one frees its place', async (t) => {
  const { db, close } = await openTestDb('pglite');
  t.after(close);
  const clock = new TestClock();
  const collector = newCollector(db, clock);
  const ak = softwareAk('p256');
  await enrollSoftwareAk(collector, ak, { now: clock.ms });
  const nonces: Uint8Array[] = [];
  for (let i = 0; i < MAX_LIVE_NONCES; i++) nonces.push(await nonceFor(collector, ak.name));
  assert.equal(await collector.challenge(ak.name), 'too-many');
  // Another AK is not affected.
  assert.equal(typeof (await collector.challenge(softwareAk('p256').name)), 'object');
  assert.equal((await collector.attest(attestRequest({ ak, nonce: nonces[0]! }))).kind, 'accepted');
  assert.equal(typeof (await collector.challenge(ak.name)), 'object');
  assert.equal(await collector.challenge(ak.name), 'too-many');
  clock.advance(60_000);
  assert.equal(typeof (await collector.challenge(ak.name)), 'object');
  assert.equal(await collector.challenge(new Uint8Array(1)), 'invalid');
});

test("counting an AK's live nonces reads that AK's index entries, not every nonce in the table", async (t) => {
  const { db, close } = await openTestDb('pglite');
  t.after(close);
  const collector = newCollector(db, new TestClock());
  // A fleet's worth of other AKs' nonces, as GetChallenge leaves them.
  for (let i = 0; i < 2000 / MAX_LIVE_NONCES; i++) {
    const name = softwareAk('p256').name;
    for (let j = 0; j < MAX_LIVE_NONCES; j++)
      assert.equal(typeof (await collector.challenge(name)), 'object');
  }
  await db.query('ANALYZE nonces');
  const { rows } = await db.query<{ 'QUERY PLAN': unknown }>(
    `EXPLAIN (FORMAT JSON) SELECT count(*) FROM nonces
     WHERE ak_name = $1 AND used_at_ms IS NULL AND expires_at_ms > $2`,
    [Buffer.from(softwareAk('p256').name), 0],
  );
  const plan = JSON.stringify(rows[0]?.['QUERY PLAN']);
  assert.match(plan, /nonces_live_ak/, plan);
  assert.doesNotMatch(plan, /Seq Scan/, plan);
});

test('countersProblem orders resetCount, then restartCount, then a strictly increasing clock', () => {
  const c = (resetCount: number, restartCount: number, clock: bigint) => ({
    resetCount,
    restartCount,
    clock,
    safe: true,
    firmwareVersion: 0n,
    quoteInfoJson: '{}',
  });
  assert.equal(countersProblem(undefined, c(0, 0, 0n)), undefined);
  const cases: [number, number, bigint, boolean][] = [
    [3, 2, 101n, true],
    [3, 2, 100n, false],
    [3, 2, 99n, false],
    [3, 3, 0n, true],
    [3, 1, 1000n, false],
    [4, 0, 0n, true],
    [2, 9, 9999n, false],
  ];
  for (const [reset, restart, clock, ok] of cases) {
    const problem = countersProblem(c(3, 2, 100n), c(reset, restart, clock));
    assert.equal(problem === undefined, ok, `${reset}/${restart}/${clock}: ${problem}`);
  }
});
