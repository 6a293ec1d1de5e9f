// No input crashes the collector: mutated, truncated and random evidence always comes back as a
// refusal with a stable code (or, for a harmless change, acceptance), never as an exception.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'node:test';
import { isRefusalCode } from '@hostgate/protos';
import { softwareAk } from '@hostgate/tpm2-js-lite/testing';
import type { QuoteCollector } from '../src/collector.ts';
import {
  attestRequest,
  enrollSoftwareAk,
  newCollector,
  openTestDb,
  softwareEkPublic,
  TestClock,
} from './helpers.ts';

/** A changed copy of `b` (never equal to it). */
function mutate(b: Buffer): Buffer {
  for (;;) {
    const out = mutateOnce(b);
    if (!out.equals(b)) return out;
  }
}

function mutateOnce(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(4)) {
    case 0: // flip a byte
      if (out.length > 0) out[randomInt(out.length)] = randomInt(256);
      return out;
    case 1: // truncate
      return out.subarray(0, randomInt(out.length + 1));
    case 2: // extend with junk
      return Buffer.concat([out, randomBytes(randomInt(1, 64))]);
    default: // inflate a 16-bit length field somewhere
      if (out.length > 2) out.writeUInt16BE(0xffff - randomInt(16), randomInt(out.length - 1));
      return out;
  }
}

test('600 mutated attestations: each is refused with a known code, none throws, none is accepted', async (t) => {
  const { db, close } = await openTestDb('pglite');
  t.after(close);
  const clock = new TestClock();
  const collector: QuoteCollector = newCollector(db, clock);
  const ak = softwareAk('p256');
  await enrollSoftwareAk(collector, ak, { now: clock.ms });
  const fields = ['attest', 'signature', 'keyPublic', 'certifyAttest', 'certifySignature', 'digest'] as const;
  const seen = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const ch = await collector.challenge(ak.name);
    assert.ok(typeof ch === 'object');
    const req = attestRequest({ ak, nonce: ch.nonce, clock: { clock: BigInt(i + 1) } });
    const field = fields[i % fields.length]!;
    if (field === 'attest' || field === 'signature') req.quote![field] = mutate(req.quote![field]);
    else if (field === 'digest') {
      const pcr = req.quote!.pcrBanks[0]!.pcrs[randomInt(8)]!;
      pcr.digest = mutate(pcr.digest);
    } else req.certifiedKey![field] = mutate(req.certifiedKey![field]);
    const r = await collector.attest(req);
    // Every field mutated is covered by a signature, a digest or a name: a change is never accepted.
    assert.equal(r.kind, 'refused', `mutated ${field} was accepted`);
    if (r.kind !== 'refused') continue;
    for (const x of r.refusals) {
      assert.ok(isRefusalCode(x.code), x.code);
      assert.ok(x.message.length > 0);
      seen.set(x.code, (seen.get(x.code) ?? 0) + 1);
    }
  }
  // The mutations reach the interesting checks, not only the first one.
  for (const c of ['SIGNATURE_INVALID', 'QUOTE_MALFORMED', 'CERTIFY_INVALID', 'PCR_DIGEST_MISMATCH'])
    assert.ok((seen.get(c) ?? 0) > 0, `${c} never seen: ${JSON.stringify([...seen])}`);
});

test('random and mutated enrollments are refused with codes, never thrown', async (t) => {
  const { db, close } = await openTestDb('pglite');
  t.after(close);
  const collector = newCollector(db, new TestClock());
  const ek = Buffer.from(softwareEkPublic());
  const ak = Buffer.from(softwareAk('p256').publicBytes);
  for (let i = 0; i < 300; i++) {
    const req = {
      ekPublic: i % 3 === 0 ? randomBytes(randomInt(0, 600)) : mutate(ek),
      ekCertificate: i % 2 === 0 ? randomBytes(randomInt(0, 300)) : Buffer.from([0x30, 0x82, 0xff, 0xff]),
      ekCertificateChain: i % 5 === 0 ? [randomBytes(40)] : [],
      akPublic: i % 4 === 0 ? randomBytes(randomInt(0, 300)) : mutate(ak),
    };
    const r = await collector.enroll(req);
    assert.ok(r.refusals.length > 0);
    for (const x of r.refusals) assert.ok(isRefusalCode(x.code), x.code);
    assert.equal(r.enrollmentId, '');
  }
});
