// `hostgate quote verify` reads at most 1 MiB of each input: a device or pipe named as an
// input (/dev/zero) is refused with FILE_UNREADABLE instead of being read until memory runs out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');

function verify(files: { ak: string; attest: string; signature: string; pcrs: string }) {
  return spawnSync(
    bin,
    [
      'quote',
      'verify',
      '--ak',
      files.ak,
      '--attest',
      files.attest,
      '--signature',
      files.signature,
      '--pcrs',
      files.pcrs,
      '--nonce',
      '00',
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, HOSTGATE_NODE: process.execPath },
      timeout: 20_000,
    },
  );
}

test('an endless device as an input is refused at the 1 MiB cap, exit 1, one line', {
  skip: existsSync('/dev/zero') ? false : 'no /dev/zero on this system',
}, (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-quote-input-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const small = path.join(dir, 'small.bin');
  writeFileSync(small, new Uint8Array([0, 1, 2, 3]));
  for (const flag of ['ak', 'signature'] as const) {
    const files = { ak: small, attest: small, signature: small, pcrs: small, [flag]: '/dev/zero' };
    const r = verify(files);
    assert.equal(r.signal, null, `--${flag}: the command must end by itself`);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `hostgate quote: FILE_UNREADABLE: --${flag} /dev/zero: larger than 1 MiB\n`);
  }
});

test('a regular file just over 1 MiB is refused; exactly 1 MiB is read and judged on content', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-quote-input-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const small = path.join(dir, 'small.bin');
  const big = path.join(dir, 'big.bin');
  const edge = path.join(dir, 'edge.bin');
  writeFileSync(small, new Uint8Array([0, 1, 2, 3]));
  writeFileSync(big, new Uint8Array((1 << 20) + 1));
  writeFileSync(edge, new Uint8Array(1 << 20));
  const over = verify({ ak: big, attest: small, signature: small, pcrs: small });
  assert.equal(over.status, 1);
  assert.match(over.stderr, /^hostgate quote: FILE_UNREADABLE: --ak .*big\.bin: larger than 1 MiB\n$/);
  const at = verify({ ak: edge, attest: small, signature: small, pcrs: small });
  assert.equal(at.status, 1);
  assert.doesNotMatch(at.stderr, /FILE_UNREADABLE/);
  assert.equal(at.stderr.split('\n').length, 2, at.stderr);
});
