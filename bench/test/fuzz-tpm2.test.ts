// CI's slice of the tpm2-js-lite fuzzer: ~20k mutated inputs through every unmarshal function and the
// verifiers; the full ≥1,000,000 run is `npm run fuzz:tpm2 -w bench`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzTpm2 } from '../src/fuzz-tpm2.ts';

test('20k mutated TPM structures raise only Tpm2Error, and most are rejected', () => {
  const seed = Number(process.env['FUZZ_SEED'] ?? Date.now() % 0xffffffff);
  const r = fuzzTpm2({ count: 20_000, seed });
  assert.equal(r.iterations, 20_000);
  assert.equal(Object.keys(r.perTarget).length, 13, 'every target ran');
  // A fuzzer whose mutations are all accepted would be testing nothing.
  assert.ok(r.typedErrors > r.iterations / 2, `seed ${seed}: ${r.typedErrors} typed errors`);
});
