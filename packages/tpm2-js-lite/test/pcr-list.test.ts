// parsePcrList speaks tpm2-tools' PCR list syntax as its man pages define it
// ("<BANK>:<PCR>[,<PCR>] or <BANK>:all", banks joined by '+', indices parsed by strtoul),
// so `hostgate quote verify --pcr-list` takes what was given to `tpm2_quote -l`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePcrList } from '../src/pcr.ts';

// TPM_ALG_ID values from the TCG algorithm registry, and selection bitmaps built by hand.
const SHA1 = 0x0004;
const SHA256 = 0x000b;

test('<bank>:all selects PCRs 0-23', () => {
  const sels = parsePcrList('sha256:all+sha1:0');
  assert.equal(sels.length, 2);
  assert.equal(sels[0]!.hashAlg, SHA256);
  assert.deepEqual([...sels[0]!.select], [0xff, 0xff, 0xff]);
  assert.equal(sels[1]!.hashAlg, SHA1);
  assert.deepEqual([...sels[1]!.select], [0x01, 0x00, 0x00]);
});

test('indices may be hex (0x) as well as decimal, mixed in one list', () => {
  const [sel] = parsePcrList('sha1:0x7,16,0x0A');
  assert.equal(sel!.hashAlg, SHA1);
  // PCR 7 -> byte 0 bit 7; PCR 10 -> byte 1 bit 2; PCR 16 -> byte 2 bit 0.
  assert.deepEqual([...sel!.select], [0x80, 0x04, 0x01]);
});

test('still refused: empty lists, ranges, unknown banks, out-of-range PCRs, all mixed with indices', () => {
  for (const bad of [
    'sha256:',
    'sha256:0-7',
    'md5:1',
    'sha256:0x',
    'sha256:all,1',
    'sha256:1+',
    'sha256:999',
  ])
    assert.throws(() => parsePcrList(bad), RangeError, bad);
});
