// hostgate quote verify, spawned as an operator would run it, on files made by tpm2-tools on swtpm and on
// files written from a software AK (so the contract is exercised even where swtpm is absent).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type Swtpm, startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { marshalPublic, parsePcrList, serializePcrs } from '@hostgate/tpm2-js-lite';
import { samplePcrs, softwareAk, softwareQuote } from '@hostgate/tpm2-js-lite/testing';
import { assertUsageError } from './usage-error.ts';

const execP = promisify(execFile);
const bin = path.resolve(import.meta.dirname, '../bin/hostgate');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function hostgate(args: string[], cwd: string) {
  return spawnSync(bin, ['quote', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-cli-quote-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('hostgate quote verify on software-AK files', () => {
  const ak = softwareAk('p256');
  const nonce = new Uint8Array(randomBytes(20));
  const pcrs = samplePcrs('sha256', [0, 1, 7]);
  const q = softwareQuote({ ak, nonce, pcrs });
  const selection = parsePcrList('sha256:0,1,7');
  const args = [
    'verify',
    '--ak',
    'sw.pub',
    '--attest',
    'sw.msg',
    '--signature',
    'sw.sig',
    '--pcrs',
    'sw.pcrs',
    '--nonce',
    hex(nonce),
  ];
  before(async () => {
    await writeFile(path.join(dir, 'sw.pub'), marshalPublic(ak.public));
    await writeFile(path.join(dir, 'sw.pem'), ak.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(path.join(dir, 'sw.msg'), q.attest);
    await writeFile(path.join(dir, 'sw.sig'), q.signature);
    await writeFile(path.join(dir, 'sw.pcrs'), serializePcrs(selection, pcrs));
    await writeFile(
      path.join(dir, 'sw.vals'),
      Buffer.concat([0, 1, 7].map((i) => pcrs.get('sha256')!.get(i)!)),
    );
  });

  test('valid: exit 0 and the JSON contract', () => {
    const r = hostgate([...args, '--json'], dir);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.valid, true);
    assert.equal(out.clock, 123456789);
    assert.equal(out.resetCount, 3);
    assert.equal(out.restartCount, 1);
    assert.equal(out.safe, true);
    assert.equal(out.firmwareVersion, '0x2019082700000001');
    assert.equal(out.pcrs.sha256['7'], createHash('sha256').update('pcr7').digest('hex'));
    assert.deepEqual(Object.keys(out.pcrs.sha256), ['0', '1', '7']);
  });
  test('PEM AK and the values form with --pcr-list', () => {
    const pem = args.map((a) => (a === 'sw.pub' ? 'sw.pem' : a === 'sw.pcrs' ? 'sw.vals' : a));
    const r = hostgate([...pem, '--pcr-list', 'sha256:0,1,7'], dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^valid: quote over sha256:0,1,7/);
  });
  test('refusals: exit 1 with the reason code on stderr', () => {
    const nonceAt = args.indexOf('--nonce') + 1;
    const other = args.slice();
    other[nonceAt] = `${hex(nonce)}00`;
    let r = hostgate(other, dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^hostgate quote: NONCE_MISMATCH: /);
    r = hostgate([...args, '--pcr-list', 'sha256:0,1,7,8'], dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PCR_SELECTION_MISMATCH/);
    r = hostgate(
      args.map((a) => (a === 'sw.sig' ? 'sw.pcrs' : a)),
      dir,
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /: (UNSUPPORTED_ALGORITHM|MALFORMED): /);
    r = hostgate(
      args.map((a) => (a === 'sw.msg' ? 'missing.msg' : a)),
      dir,
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /FILE_UNREADABLE/);
    r = hostgate([...args.map((a) => (a === 'sw.pcrs' ? 'sw.vals' : a)), '--json'], dir);
    assert.equal(r.status, 1, 'a values file without --pcr-list is not the serialized form');
    assert.equal(JSON.parse(r.stdout).valid, false);
  });
  test('usage errors exit 2', () => {
    assertUsageError(hostgate(['verify', '--ak', 'sw.pub'], dir), 'quote', 'missing flags');
    assertUsageError(hostgate([...args.slice(0, -1), 'xyz'], dir), 'quote', 'bad nonce');
    assertUsageError(hostgate([...args, '--bogus'], dir), 'quote', '--bogus');
    assertUsageError(hostgate([...args, '--pcr-list', 'sha256:'], dir), 'quote', 'bad --pcr-list');
    assertUsageError(hostgate(['frob'], dir), 'quote', 'quote frob');
    assertUsageError(hostgate([...args, '--json', '--bogus'], dir), 'quote', '--json --bogus');
    assert.equal(hostgate(['verify', '--help'], dir).status, 0);
  });
});

describe('hostgate quote verify on tpm2-tools files (swtpm)', {
  skip: swtpmMissing(),
  timeout: 90_000,
}, () => {
  let swtpm: Swtpm;
  const tool = async (...a: string[]) => {
    await execP(a[0]!, a.slice(1), { cwd: dir, env: swtpm.env, timeout: 30_000 });
    await execP('tpm2_flushcontext', ['-t'], { env: swtpm.env, timeout: 30_000 });
  };
  before(async () => {
    swtpm = await startSwtpm();
    await tool('tpm2_createek', '-G', 'rsa', '-c', 'ek.ctx');
  });
  after(async () => swtpm?.stop());
  /** `hostgate quote verify` of these four files, `rest` (nonce, PCR list, --json) after them. */
  const verify = (ak: string, attest: string, signature: string, pcrs: string, ...rest: string[]) =>
    hostgate(
      ['verify', '--ak', ak, '--attest', attest, '--signature', signature, '--pcrs', pcrs, ...rest],
      dir,
    );

  for (const [G, s] of [
    ['rsa2048', 'rsassa'],
    ['ecc256', 'ecdsa'],
  ] as const) {
    test(`${G} AK: serialized and values PCR files verify; a changed PCR file is PCR_DIGEST_MISMATCH`, async () => {
      await tool(
        'tpm2_createak',
        '-C',
        'ek.ctx',
        '-c',
        `${G}.ctx`,
        '-G',
        G,
        '-s',
        s,
        '-g',
        'sha256',
        '-u',
        `${G}.pub`,
      );
      await tool('tpm2_readpublic', '-c', `${G}.ctx`, '-f', 'pem', '-o', `${G}.pem`);
      const quote = (msg: string, sig: string, pcrs: string, ...format: string[]) =>
        tool(
          'tpm2_quote',
          '-c',
          `${G}.ctx`,
          '-l',
          'sha256:0,1,2,3',
          '-q',
          'c0ffee',
          '-m',
          msg,
          '-s',
          sig,
          '-o',
          pcrs,
          ...format,
          '-g',
          'sha256',
        );
      await quote(`${G}.msg`, `${G}.sig`, `${G}.pcrs`);
      await quote(`${G}-v.msg`, `${G}-v.sig`, `${G}.vals`, '-F', 'values');
      let r = verify(`${G}.pub`, `${G}.msg`, `${G}.sig`, `${G}.pcrs`, '--nonce', 'c0ffee', '--json');
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(Object.keys(JSON.parse(r.stdout).pcrs.sha256), ['0', '1', '2', '3']);
      r = verify(
        `${G}.pem`,
        `${G}-v.msg`,
        `${G}-v.sig`,
        `${G}.vals`,
        '--pcr-list',
        'sha256:0,1,2,3',
        '--nonce',
        'c0ffee',
      );
      assert.equal(r.status, 0, r.stderr);
      await writeFile(path.join(dir, `${G}.bad`), Buffer.alloc(128, 1));
      r = verify(
        `${G}.pem`,
        `${G}-v.msg`,
        `${G}-v.sig`,
        `${G}.bad`,
        '--pcr-list',
        'sha256:0,1,2,3',
        '--nonce',
        'c0ffee',
      );
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^hostgate quote: PCR_DIGEST_MISMATCH: /);
      r = verify(`${G}.pub`, `${G}.msg`, `${G}-v.sig`, `${G}.pcrs`, '--nonce', 'c0ffee');
      assert.equal(r.status, 1);
      assert.match(r.stderr, /SIGNATURE_INVALID/);
    });
  }
});
