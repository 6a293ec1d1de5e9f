// The subject key check: only a TPM-resident, sign-only P-256 key the AK certified gets a certificate.
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CertifiedKey__Output } from '@hostgate/protos';
import { TPMA } from '@hostgate/tpm2-js-lite';
import {
  type SoftwareAk,
  samplePcrs,
  softwareAk,
  softwareCertify,
  softwareQuote,
} from '@hostgate/tpm2-js-lite/testing';
import { subjectKeyFromVerdict } from '../src/subject-key.ts';
import { SUBJECT_ATTRIBUTES } from './harness.ts';

function certified(ak: SoftwareAk, subject: SoftwareAk): CertifiedKey__Output {
  const c = softwareCertify({ ak, nonce: randomBytes(32), certified: subject.publicBytes });
  return {
    keyPublic: Buffer.from(subject.publicBytes),
    certifyAttest: Buffer.from(c.attest),
    certifySignature: Buffer.from(c.signature),
  };
}

test('a fixedTPM sign-only P-256 key certified by the AK: its SPKI', () => {
  const ak = softwareAk('p256');
  const subject = softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES });
  const r = subjectKeyFromVerdict(certified(ak, subject), ak.publicBytes);
  assert.ok(r.ok);
  assert.deepEqual(Buffer.from(r.spki), subject.publicKey.export({ type: 'spki', format: 'der' }));
  // An RSA AK certifies as well.
  const rsaAk = softwareAk('rsa2048');
  assert.ok(subjectKeyFromVerdict(certified(rsaAk, subject), rsaAk.publicBytes).ok);
});

test("a host's key is imported once: later verdicts with the same key get the same KeyObject, and still every check", () => {
  const ak = softwareAk('p256');
  const subject = softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES });
  const first = subjectKeyFromVerdict(certified(ak, subject), ak.publicBytes);
  const second = subjectKeyFromVerdict(certified(ak, subject), ak.publicBytes);
  assert.ok(first.ok && second.ok);
  assert.equal(second.key, first.key);
  assert.deepEqual(Buffer.from(second.spki), subject.publicKey.export({ type: 'spki', format: 'der' }));
  // The cache never skips the certify check: another AK's Certify of the same key is refused.
  const other = softwareAk('p256');
  const forged = subjectKeyFromVerdict(certified(other, subject), ak.publicBytes);
  assert.equal(forged.ok, false);
  const noAk = subjectKeyFromVerdict(certified(ak, subject), new Uint8Array(0));
  assert.ok(!noAk.ok && noAk.refusal.code === 'CERTIFY_INVALID');
});

test('every unsuitable key is refused SUBJECT_KEY_UNSUITABLE naming what is wrong', () => {
  const ak = softwareAk('p256');
  const cases: Array<[string, SoftwareAk, RegExp]> = [
    ['no fixedTPM', softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES & ~TPMA.fixedTPM }), /not fixedTPM/],
    [
      'no fixedParent',
      softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES & ~TPMA.fixedParent }),
      /not fixedParent/,
    ],
    [
      'imported',
      softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES & ~TPMA.sensitiveDataOrigin }),
      /imported/,
    ],
    ['decrypt too', softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES | TPMA.decrypt }), /decryption/],
    ['restricted', softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES | TPMA.restricted }), /restricted/],
    ['cannot sign', softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES & ~TPMA.sign }), /not a signing key/],
    ['P-384', softwareAk('p384', { attributes: SUBJECT_ATTRIBUTES }), /P-256/],
    ['RSA', softwareAk('rsa2048', { attributes: SUBJECT_ATTRIBUTES }), /P-256/],
  ];
  for (const [name, subject, message] of cases) {
    const r = subjectKeyFromVerdict(certified(ak, subject), ak.publicBytes);
    assert.ok(!r.ok, name);
    assert.equal(r.refusal.code, 'SUBJECT_KEY_UNSUITABLE', name);
    assert.match(r.refusal.message, message, name);
  }
  const malformed = certified(ak, softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES }));
  for (const keyPublic of [Buffer.alloc(0), malformed.keyPublic.subarray(0, 20), Buffer.alloc(2000)]) {
    const r = subjectKeyFromVerdict({ ...malformed, keyPublic }, ak.publicBytes);
    assert.ok(!r.ok);
    assert.ok(['SUBJECT_KEY_UNSUITABLE', 'CERTIFY_INVALID'].includes(r.refusal.code));
  }
});

test('a certify that does not bind the key to the AK is refused CERTIFY_INVALID', () => {
  const ak = softwareAk('p256');
  const subject = softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES });
  const good = certified(ak, subject);
  const other = softwareAk('p256', { attributes: SUBJECT_ATTRIBUTES });
  const quote = softwareQuote({ ak, nonce: randomBytes(32), pcrs: samplePcrs('sha256', [0, 7]) });
  const tampered = Buffer.from(good.certifySignature);
  tampered[tampered.length - 1]! ^= 1;
  const cases: Array<[string, CertifiedKey__Output, Uint8Array]> = [
    ['another AK signed it', good, softwareAk('p256').publicBytes],
    ['it names another key', { ...certified(ak, other), keyPublic: good.keyPublic }, ak.publicBytes],
    ['signature altered', { ...good, certifySignature: tampered }, ak.publicBytes],
    ['attest truncated', { ...good, certifyAttest: good.certifyAttest.subarray(0, 30) }, ak.publicBytes],
    ['no AK', good, new Uint8Array(0)],
    ['attest too large', { ...good, certifyAttest: Buffer.alloc(5000) }, ak.publicBytes],
    [
      'a quote, not a certify',
      { ...good, certifyAttest: Buffer.from(quote.attest), certifySignature: Buffer.from(quote.signature) },
      ak.publicBytes,
    ],
  ];
  for (const [name, key, akPublic] of cases) {
    const r = subjectKeyFromVerdict(key, akPublic);
    assert.ok(!r.ok, name);
    assert.equal(r.refusal.code, 'CERTIFY_INVALID', name);
  }
  const none = subjectKeyFromVerdict(null, ak.publicBytes);
  assert.ok(!none.ok);
  assert.equal(none.refusal.code, 'CERTIFY_INVALID');
});
