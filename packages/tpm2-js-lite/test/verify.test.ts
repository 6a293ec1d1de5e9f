import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { eccSigningKeyTemplate } from '../src/client/templates.ts';
import { TPM_ALG } from '../src/constants.ts';
import { Tpm2Error } from '../src/errors.ts';
import { pcrSelection, type PcrValueMap } from '../src/pcr.ts';
import { marshalPublic } from '../src/public.ts';
import { marshalSignature } from '../src/signature.ts';
import {
  type SoftwareKeyKind,
  samplePcrs,
  softwareAk,
  softwareCertify,
  softwareQuote,
  softwareSign,
} from '../src/testing.ts';
import { verifyCertify, verifyQuote } from '../src/verify.ts';

const nonce = new Uint8Array(randomBytes(32));
const kinds: SoftwareKeyKind[] = ['rsa2048', 'rsa3072', 'p256', 'p384'];
const aks = Object.fromEntries(kinds.map((k) => [k, softwareAk(k)])) as Record<
  SoftwareKeyKind,
  ReturnType<typeof softwareAk>
>;

function clonePcrs(pcrs: PcrValueMap): PcrValueMap {
  return new Map([...pcrs].map(([h, bank]) => [h, new Map([...bank].map(([i, v]) => [i, v.slice()]))]));
}

describe('verifyQuote with keys marshaled as a TPM does', () => {
  for (const kind of kinds) {
    test(`${kind}: a good quote verifies and reports the clock`, () => {
      const ak = aks[kind];
      const pcrs = samplePcrs(ak.hash, [0, 1, 2, 7]);
      const q = softwareQuote({
        ak,
        nonce,
        pcrs,
        clock: { clock: 999n, resetCount: 4, restartCount: 2, safe: false },
      });
      for (const akPublic of [ak.publicBytes, marshalPublic(ak.public), ak.public]) {
        const facts = verifyQuote({ akPublic, attest: q.attest, signature: q.signature, nonce, pcrs });
        assert.equal(facts.clock, 999n);
        assert.equal(facts.resetCount, 4);
        assert.equal(facts.restartCount, 2);
        assert.equal(facts.safe, false);
        assert.equal(facts.firmwareVersion, 0x2019_0827_0000_0001n);
        assert.deepEqual([...facts.pcrs.get(ak.hash)!.keys()], [0, 1, 2, 7]);
      }
      // A PEM of the same key verifies too (no attribute checks possible).
      const pem = ak.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      verifyQuote({ akPublic: pem, attest: q.attest, signature: q.signature, nonce, pcrs });
    });
  }

  test('RSAPSS AKs verify', () => {
    const ak = softwareAk('rsa2048', { rsaScheme: 'rsapss' });
    const pcrs = samplePcrs('sha256', [0]);
    const q = softwareQuote({ ak, nonce, pcrs });
    verifyQuote({ akPublic: ak.publicBytes, attest: q.attest, signature: q.signature, nonce, pcrs });
  });

  test('the PCR digest is SHA-256 over the concatenated values in selection order (computed independently)', () => {
    const ak = aks.p256;
    const pcrs = samplePcrs('sha256', [3, 1]);
    const q = softwareQuote({ ak, nonce, pcrs });
    const v = pcrs.get('sha256')!;
    const expected = createHash('sha256').update(v.get(1)!).update(v.get(3)!).digest('hex');
    assert.equal(Buffer.from(q.attest.subarray(q.attest.length - 32)).toString('hex'), expected);
  });

  const cases: { name: string; code: string; mutate: () => Parameters<typeof verifyQuote>[0] }[] = [];
  const ak = aks.p256;
  const pcrs = samplePcrs('sha256', [0, 1, 2]);
  const q = softwareQuote({ ak, nonce, pcrs });
  const good = () => ({
    akPublic: ak.publicBytes,
    attest: q.attest.slice(),
    signature: q.signature.slice(),
    nonce,
    pcrs: clonePcrs(pcrs),
  });
  cases.push({
    name: 'a flipped clock byte',
    code: 'SIGNATURE_INVALID',
    mutate: () => {
      const g = good();
      g.attest[g.attest.length - 60]! ^= 1;
      return g;
    },
  });
  cases.push({
    name: 'another nonce',
    code: 'NONCE_MISMATCH',
    mutate: () => ({ ...good(), nonce: new Uint8Array(32) }),
  });
  cases.push({
    name: 'a changed PCR value',
    code: 'PCR_DIGEST_MISMATCH',
    mutate: () => {
      const g = good();
      g.pcrs.get('sha256')!.get(1)![0]! ^= 0xff;
      return g;
    },
  });
  cases.push({
    name: 'a signature from another key',
    code: 'SIGNATURE_INVALID',
    mutate: () => ({ ...good(), signature: marshalSignature(softwareSign(softwareAk('p256'), q.attest)) }),
  });
  cases.push({
    name: 'a PCR asked for that is not quoted',
    code: 'PCR_SELECTION_MISMATCH',
    mutate: () => ({ ...good(), pcrSelection: [pcrSelection('sha256', [0, 1, 2, 3])] }),
  });
  cases.push({
    name: 'PCR values supplied for unquoted PCRs',
    code: 'PCR_SELECTION_MISMATCH',
    mutate: () => {
      const g = good();
      g.pcrs.get('sha256')!.set(9, new Uint8Array(32));
      return g;
    },
  });
  cases.push({
    name: 'a missing PCR value',
    code: 'PCR_SELECTION_MISMATCH',
    mutate: () => {
      const g = good();
      g.pcrs.get('sha256')!.delete(2);
      return { ...g, pcrSelection: [pcrSelection('sha256', [0, 1])] };
    },
  });
  cases.push({
    name: 'an RSA AK for an ECDSA signature',
    code: 'SCHEME_MISMATCH',
    mutate: () => ({ ...good(), akPublic: aks.rsa2048.publicBytes }),
  });
  cases.push({
    name: 'an ECDSA-SHA384 signature from a SHA-256 AK',
    code: 'SCHEME_MISMATCH',
    mutate: () => {
      const sig = softwareSign({ ...ak, hash: 'sha384' }, q.attest);
      return { ...good(), signature: marshalSignature(sig) };
    },
  });
  cases.push({
    name: 'an unrestricted signing key as AK',
    code: 'KEY_NOT_ATTESTATION_KEY',
    mutate: () => ({ ...good(), akPublic: eccSigningKeyTemplate() }),
  });
  cases.push({
    name: 'a certification passed as a quote',
    code: 'WRONG_TYPE',
    mutate: () => {
      const c = softwareCertify({ ak, nonce, certified: ak.publicBytes });
      return { ...good(), attest: c.attest, signature: c.signature };
    },
  });
  cases.push({
    name: 'a non-TPM structure',
    code: 'BAD_MAGIC',
    mutate: () => {
      const g = good();
      g.attest[0] = 0;
      return g;
    },
  });
  cases.push({
    name: 'a truncated attestation',
    code: 'MALFORMED',
    mutate: () => ({ ...good(), attest: q.attest.subarray(0, 30) }),
  });
  cases.push({
    name: 'an HMAC signature',
    code: 'UNSUPPORTED_ALGORITHM',
    mutate: () => ({
      ...good(),
      akPublic: ak.publicKey,
      signature: marshalSignature({
        kind: 'hmac',
        sigAlg: TPM_ALG.HMAC,
        hashAlg: TPM_ALG.SHA256,
        digest: new Uint8Array(32),
      }),
    }),
  });
  for (const c of cases) {
    test(`rejects ${c.name} with ${c.code}`, () => {
      verifyQuote(good()); // the unmutated input passes, so the rejection is due to the mutation
      assert.throws(
        () => verifyQuote(c.mutate()),
        (e: unknown) => e instanceof Tpm2Error && e.code === c.code,
      );
    });
  }

  test('mutated quotes never verify and never throw anything but Tpm2Error (fast-check)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (at, x, inSig) => {
        const g = good();
        const target = inSig ? g.signature : g.attest;
        target[at % target.length]! ^= x;
        try {
          verifyQuote(g);
          return false;
        } catch (e) {
          return e instanceof Tpm2Error;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('verifyCertify', () => {
  const ak = aks.rsa2048;
  const certified = softwareAk('p256', { attributes: 0x00040072 }).publicBytes;
  const c = softwareCertify({ ak, nonce, certified });
  test('proves the certified public area by its name', () => {
    const facts = verifyCertify({
      akPublic: ak.publicBytes,
      attest: c.attest,
      signature: c.signature,
      certifiedPublic: certified,
      nonce,
    });
    assert.equal(facts.certifiedPublic.type, 'ecc');
    const expectedName = `000b${createHash('sha256').update(certified).digest('hex')}`;
    assert.equal(Buffer.from(facts.name).toString('hex'), expectedName);
    verifyCertify({
      akPublic: ak.publicBytes,
      attest: c.attest,
      signature: c.signature,
      certifiedPublic: marshalPublic(facts.certifiedPublic),
    });
  });
  test('another public area is NAME_MISMATCH; another nonce NONCE_MISMATCH; a quote WRONG_TYPE', () => {
    const other = softwareAk('p256').publicBytes;
    assert.throws(
      () =>
        verifyCertify({
          akPublic: ak.publicBytes,
          attest: c.attest,
          signature: c.signature,
          certifiedPublic: other,
        }),
      { code: 'NAME_MISMATCH' },
    );
    assert.throws(
      () =>
        verifyCertify({
          akPublic: ak.publicBytes,
          attest: c.attest,
          signature: c.signature,
          certifiedPublic: certified,
          nonce: new Uint8Array(1),
        }),
      { code: 'NONCE_MISMATCH' },
    );
    const q = softwareQuote({ ak, nonce, pcrs: samplePcrs('sha256', [0]) });
    assert.throws(
      () =>
        verifyCertify({
          akPublic: ak.publicBytes,
          attest: q.attest,
          signature: q.signature,
          certifiedPublic: certified,
        }),
      { code: 'WRONG_TYPE' },
    );
    const tampered = c.attest.slice();
    tampered[tampered.length - 1]! ^= 1;
    assert.throws(
      () =>
        verifyCertify({
          akPublic: ak.publicBytes,
          attest: tampered,
          signature: c.signature,
          certifiedPublic: certified,
        }),
      { code: 'SIGNATURE_INVALID' },
    );
  });
});
