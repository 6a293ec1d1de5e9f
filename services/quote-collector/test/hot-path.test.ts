// What Attest and GetChallenge no longer redo per call: the request's bytes are handed on as they
// are (no copies), the required selection's proto and JSON are made once, and the accepted host of
// the one-statement Attest is read without off-heap copies. Each is checked to give what the
// per-call work gave, on PGlite and — when DATABASE_URL is set — on a real PostgreSQL server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePcrList, pcrSelection } from '@hostgate/tpm2-js-lite';
import { samplePcrs, softwareCertify, softwareQuote } from '@hostgate/tpm2-js-lite/testing';
import { countersOf, type QuoteCollector, selectionsToProto } from '../src/collector.ts';
import {
  attestRequest,
  enrolledCollector,
  newCollector,
  REQUIRED,
  type StoreKind,
  storeMissing,
  subjectKey,
  TestClock,
} from './helpers.ts';

async function nonceFor(c: QuoteCollector, akName: Uint8Array): Promise<Uint8Array> {
  const ch = await c.challenge(akName);
  assert.ok(typeof ch === 'object');
  return ch.nonce;
}

test('GetChallenge answers the required selection made once, equal to selectionsToProto and frozen', () => {
  const c = newCollector(undefined as never, new TestClock());
  const proto = c.requiredSelectionProto;
  assert.deepEqual(proto, selectionsToProto(parsePcrList(REQUIRED)));
  assert.equal(c.requiredSelectionProto, proto, 'the same object on every call');
  assert.ok(Object.isFrozen(proto) && proto.every((s) => Object.isFrozen(s) && Object.isFrozen(s.pcrs)));
});

test('countersOf with the selection JSON given writes exactly what JSON.stringify writes', () => {
  const proto = selectionsToProto(parsePcrList('sha1:0,7+sha256:0,1,2,3,4,5,6,7,16'));
  const quoteInfo = {
    facts: { resetCount: 3, restartCount: 1, clock: 99n, safe: true, firmwareVersion: 7n },
    proto: { pcrDigest: new Uint8Array([0, 1, 0xab, 0xff]), pcrSelection: proto },
  } as unknown as Parameters<typeof countersOf>[0];
  const given = countersOf(quoteInfo, JSON.stringify(proto));
  assert.equal(given.quoteInfoJson, JSON.stringify({ pcrDigest: '0001abff', pcrSelection: proto }));
  assert.deepEqual(given, countersOf(quoteInfo));
});

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`the attest hot path (${kind})`, { skip: storeMissing(kind) }, () => {
    const setup = (t: { after(fn: () => Promise<void>): void }) => enrolledCollector(kind, t);

    test("accepted evidence carries the request's own nonce and event log (no copies), on both paths", async (t) => {
      const { collector, clock, ak } = await setup(t);
      // The first attestation goes the precise way, the second the one-statement way.
      for (const tick of [1000n, 2000n]) {
        clock.advance(1);
        const req = attestRequest({
          ak,
          nonce: await nonceFor(collector, ak.name),
          clock: { clock: tick },
          eventLog: new Uint8Array(4096).fill(7),
        });
        const r = await collector.attest(req);
        assert.equal(r.kind, 'accepted');
        if (r.kind !== 'accepted') return;
        assert.equal(r.evidence.eventLog, req.eventLog);
        assert.equal(r.evidence.nonce, req.nonce);
        assert.equal(r.evidence.quoteInfo?.pcrSelection, collector.requiredSelectionProto);
      }
    });

    test('the stored counters JSON is the accepted QuoteInfo, and the accepted host is the stored host', async (t) => {
      const { collector, clock, ak, hostId } = await setup(t);
      for (const tick of [1000n, 2000n]) {
        clock.advance(1);
        const req = attestRequest({ ak, nonce: await nonceFor(collector, ak.name), clock: { clock: tick } });
        const r = await collector.attest(req);
        assert.equal(r.kind, 'accepted');
        if (r.kind !== 'accepted') return;
        const counters = await collector.store.getCounters(hostId);
        assert.equal(
          counters?.quoteInfoJson,
          JSON.stringify({
            pcrDigest: Buffer.from(r.evidence.quoteInfo?.pcrDigest as Uint8Array).toString('hex'),
            pcrSelection: selectionsToProto(parsePcrList(REQUIRED)),
          }),
        );
        const stored = await collector.store.getHost(hostId);
        assert.ok(stored !== undefined);
        const bytes = (h: typeof stored) => ({
          ...h,
          ekPublic: Buffer.from(h.ekPublic),
          ekCertificate: Buffer.from(h.ekCertificate),
          akPublic: Buffer.from(h.akPublic ?? []),
          akName: Buffer.from(h.akName ?? []),
        });
        // The precise way answers the host as it found it (before the attestation stamped it).
        const first = tick === 1000n;
        assert.deepEqual(
          { ...bytes(r.host), lastAttestedAtMs: first ? 0 : r.host.lastAttestedAtMs },
          { ...bytes(stored), lastAttestedAtMs: first ? 0 : stored.lastAttestedAtMs },
        );
      }
    });

    test('a quote selecting the required PCRs in another shape gets its own selection in QuoteInfo', async (t) => {
      const { collector, clock, ak } = await setup(t);
      // sha256 0-3 and 4-7 as two selections: the required PCRs exactly, but not byte for byte.
      const split = [pcrSelection('sha256', [0, 1, 2, 3]), pcrSelection('sha256', [4, 5, 6, 7])];
      for (const tick of [1000n, 2000n]) {
        clock.advance(1);
        const nonce = await nonceFor(collector, ak.name);
        const req = attestRequest({ ak, nonce, clock: { clock: tick } });
        const pcrs = samplePcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7]);
        const q = softwareQuote({ ak, nonce, pcrs, selection: split, clock: { clock: tick } });
        const key = subjectKey();
        const c = softwareCertify({ ak, nonce, certified: key.publicBytes });
        req.quote = { ...req.quote!, attest: Buffer.from(q.attest), signature: Buffer.from(q.signature) };
        req.certifiedKey = {
          keyPublic: Buffer.from(key.publicBytes),
          certifyAttest: Buffer.from(c.attest),
          certifySignature: Buffer.from(c.signature),
        };
        const r = await collector.attest(req);
        assert.equal(r.kind, 'accepted', JSON.stringify(r.kind === 'refused' ? r.refusals : []));
        if (r.kind !== 'accepted') return;
        assert.deepEqual(r.evidence.quoteInfo?.pcrSelection, selectionsToProto(split));
        assert.notEqual(r.evidence.quoteInfo?.pcrSelection, collector.requiredSelectionProto);
      }
    });
  });
}
