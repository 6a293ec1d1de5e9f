// The hash providers against node:crypto's createHash, for the input sizes replay and the digest
// checks use (empty, one PCR extend, whole event data) and for every byte value in the output.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { nodeHash } from '../src/hash-node.ts';
import { nobleHash } from '../src/index.ts';

const NAMES = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' } as const;

test('nodeHash and nobleHash equal createHash over split inputs, as plain Uint8Array', () => {
  for (const [bank, name] of Object.entries(NAMES))
    for (const size of [0, 1, 40, 64, 96, 128, 4096, 70_000]) {
      const data = new Uint8Array(randomBytes(size));
      const cut = Math.floor(size / 3);
      const expected = createHash(name).update(data).digest('hex');
      for (const provider of [nodeHash, nobleHash]) {
        const whole = provider.digest(bank, data);
        const split = provider.digest(bank, data.subarray(0, cut), data.subarray(cut));
        assert.equal(Object.getPrototypeOf(whole), Uint8Array.prototype);
        assert.equal(Buffer.from(whole).toString('hex'), expected, `${bank} of ${size} bytes`);
        assert.equal(Buffer.from(split).toString('hex'), expected, `${bank} of ${size} bytes in 2 parts`);
      }
    }
});

test('nodeHash keeps digest bytes above 0x7f intact', () => {
  // Latin-1 strings carry the digest; a UTF-8 round trip would mangle bytes 0x80-0xff.
  let seen = 0;
  for (let i = 0; i < 200; i++) {
    const data = new Uint8Array([i, i >> 8]);
    const d = nodeHash.digest('sha256', data);
    for (const b of d) if (b >= 0x80) seen++;
    assert.deepEqual(d, new Uint8Array(createHash('sha256').update(data).digest()));
  }
  assert.ok(seen > 1000);
});
