import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { ecdsaRs } from '../src/testing.ts';

describe('ecdsaRs (software TPM signatures: DER → fixed-size r, s)', () => {
  for (const [curve, size, rounds] of [
    ['prime256v1', 32, 400],
    ['secp384r1', 48, 150],
  ] as const) {
    it(`${curve}: r‖s verifies as IEEE P1363 for every signature (high-bit integers carry a DER zero byte)`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const message = Buffer.from('quote body');
      for (let i = 0; i < rounds; i++) {
        const der = sign('sha256', message, privateKey);
        const [r, s] = ecdsaRs(der, size);
        assert.equal(r.length, size);
        assert.equal(s.length, size);
        const p1363 = Buffer.concat([r, s]);
        assert.ok(
          verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363),
          `round ${i}`,
        );
      }
    });
  }

  it('refuses malformed DER with the offset', () => {
    const good = Uint8Array.from([0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07]);
    const [r, s] = ecdsaRs(good, 32);
    assert.equal(r[31], 5);
    assert.equal(s[31], 7);
    assert.throws(() => ecdsaRs(good.subarray(0, 5), 32), /SEQUENCE length 6 does not fit 5 bytes/);
    assert.throws(() => ecdsaRs(Uint8Array.from([0x31, 0x00]), 32), /SEQUENCE expected at byte 0/);
    assert.throws(
      () => ecdsaRs(Uint8Array.from([0x30, 0x03, 0x04, 0x01, 0x05]), 32),
      /INTEGER expected at byte 2/,
    );
    assert.throws(
      () => ecdsaRs(Uint8Array.from([0x30, 0x04, 0x02, 0x05, 0x05, 0x05]), 32),
      /bad INTEGER length at byte 4/,
    );
    assert.throws(
      () => ecdsaRs(Uint8Array.from([0x30, 0x09, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07, 0x00, 0x00, 0x00]), 32),
      /3 trailing bytes/,
    );
    assert.throws(
      () => ecdsaRs(Uint8Array.from([0x30, 0x07, 0x02, 0x02, 0x05, 0x05, 0x02, 0x01, 0x07]), 1),
      /longer than 1 bytes/,
    );
    assert.throws(
      () => ecdsaRs(Uint8Array.from([0x30, 0x82, 0x00, 0x00]), 32),
      /unsupported length form at byte 1/,
    );
  });
});
