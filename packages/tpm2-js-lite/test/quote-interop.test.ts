// verifyQuote / verifyCertify against quotes made by tpm2-tools on swtpm, this client's quotes against
// tpm2_checkquote, and the real vTPM quotes of the shared corpus.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type Swtpm, startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { unmarshalAttest } from '../src/attest.ts';
import { eccAkTemplate, rsaAkTemplate } from '../src/client/templates.ts';
import { Tpm, TPM_RH } from '../src/client/tpm.ts';
import { TPM_ALG } from '../src/constants.ts';
import { objectName } from '../src/crypto.ts';
import { Tpm2Error } from '../src/errors.ts';
import { type PcrValueMap, parsePcrList, pcrSelection } from '../src/pcr.ts';
import { tpmtPublicBytes } from '../src/public.ts';
import { parsePcrValues, parseSerializedPcrs, serializePcrs } from '../src/tpm2-tools-files.ts';
import { verifyCertify, verifyQuote } from '../src/verify.ts';

const execP = promisify(execFile);
const skip = swtpmMissing();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const read = async (f: string) => new Uint8Array(await readFile(f));

describe('quotes made by tpm2-tools on swtpm', { skip, timeout: 120_000 }, () => {
  let swtpm: Swtpm;
  let dir: string;
  const f = (n: string) => path.join(dir, n);
  /** Runs a tool, then flushes transient objects: swtpm has no resource manager. */
  const tool = async (...args: string[]) => {
    const { stdout } = await execP(args[0]!, args.slice(1), { cwd: dir, env: swtpm.env, timeout: 30_000 });
    await execP('tpm2_flushcontext', ['-t'], { env: swtpm.env, timeout: 30_000 });
    return stdout;
  };
  before(async () => {
    swtpm = await startSwtpm();
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-quote-'));
    await tool('tpm2_pcrextend', `16:sha256=${createHash('sha256').update('hostgate').digest('hex')}`);
    await tool('tpm2_createek', '-G', 'rsa', '-c', 'ek.ctx', '-u', 'ek.pub');
  });
  after(async () => {
    await swtpm?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const variants = [
    { name: 'RSA-2048 RSASSA', G: 'rsa2048', s: 'rsassa', g: 'sha256', sigAlg: TPM_ALG.RSASSA },
    { name: 'RSA-2048 RSAPSS', G: 'rsa2048', s: 'rsapss', g: 'sha256', sigAlg: TPM_ALG.RSAPSS },
    { name: 'RSA-3072 RSASSA', G: 'rsa3072', s: 'rsassa', g: 'sha384', sigAlg: TPM_ALG.RSASSA },
    { name: 'ECC P-256 ECDSA', G: 'ecc256', s: 'ecdsa', g: 'sha256', sigAlg: TPM_ALG.ECDSA },
    { name: 'ECC P-384 ECDSA', G: 'ecc384', s: 'ecdsa', g: 'sha384', sigAlg: TPM_ALG.ECDSA },
  ];
  for (const v of variants) {
    test(`${v.name}: tpm2_quote output verifies; tampered variants are rejected with the right code`, async () => {
      const id = `${v.G}-${v.s}`;
      await tool(
        'tpm2_createak',
        '-C',
        'ek.ctx',
        '-c',
        `${id}.ctx`,
        '-G',
        v.G,
        '-g',
        v.g,
        '-s',
        v.s,
        '-u',
        `${id}.pub`,
        '-n',
        `${id}.name`,
      );
      await tool('tpm2_readpublic', '-c', `${id}.ctx`, '-f', 'pem', '-o', `${id}.pem`);
      const nonceHex = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
      const list = 'sha256:0,1,2,7,16+sha1:16';
      const scheme = ['--scheme', v.s];
      await tool(
        'tpm2_quote',
        '-c',
        `${id}.ctx`,
        '-l',
        list,
        '-q',
        nonceHex,
        '-m',
        `${id}.msg`,
        '-s',
        `${id}.sig`,
        '-o',
        `${id}.pcrs`,
        '-g',
        v.g,
        ...scheme,
      );
      await tool(
        'tpm2_quote',
        '-c',
        `${id}.ctx`,
        '-l',
        'sha256:0,16',
        '-q',
        nonceHex,
        '-m',
        `${id}-v.msg`,
        '-s',
        `${id}-v.sig`,
        '-o',
        `${id}-v.vals`,
        '-F',
        'values',
        '-g',
        v.g,
        ...scheme,
      );
      const akPublic = await read(f(`${id}.pub`));
      // Names: ours from the public area, theirs from tpm2_createak -n.
      assert.equal(hex(objectName(tpmtPublicBytes(akPublic))), hex(await read(f(`${id}.name`))));
      const attest = await read(f(`${id}.msg`));
      const signature = await read(f(`${id}.sig`));
      const { selection, pcrs } = parseSerializedPcrs(await read(f(`${id}.pcrs`)));
      const nonce = Buffer.from(nonceHex, 'hex');
      const good = { akPublic, attest, signature, nonce, pcrs };
      const facts = verifyQuote(good);
      assert.equal(facts.signature.kind !== 'null' && facts.signature.sigAlg, v.sigAlg);
      assert.deepEqual([...facts.pcrs.get('sha256')!.keys()], [0, 1, 2, 7, 16]);
      assert.deepEqual([...facts.pcrs.get('sha1')!.keys()], [16]);
      assert.equal(
        hex(facts.pcrs.get('sha256')!.get(16)!),
        createHash('sha256')
          .update(new Uint8Array(32))
          .update(createHash('sha256').update('hostgate').digest())
          .digest('hex'),
      );
      assert.ok(facts.resetCount >= 0 && facts.clock > 0n);
      assert.equal(selection.length, 2);
      // The PEM form of the AK verifies the same quote.
      verifyQuote({ ...good, akPublic: await readFile(f(`${id}.pem`), 'utf8') });
      // `-F values` with the PCR list.
      const valuesSel = parsePcrList('sha256:0,16');
      verifyQuote({
        akPublic,
        attest: await read(f(`${id}-v.msg`)),
        signature: await read(f(`${id}-v.sig`)),
        nonce,
        pcrs: parsePcrValues(await read(f(`${id}-v.vals`)), valuesSel),
        pcrSelection: valuesSel,
      });

      const rejects = (input: Parameters<typeof verifyQuote>[0], code: string) =>
        assert.throws(
          () => verifyQuote(input),
          (e: unknown) => e instanceof Tpm2Error && e.code === code,
        );
      const flipped = attest.slice();
      // clockInfo.clock's low byte: 6 (magic, type) + TPM2B_NAME + TPM2B_DATA + 7.
      const clockLow = 6 + 2 + 34 + 2 + nonce.length + 7;
      flipped[clockLow]! ^= 0x01;
      rejects({ ...good, attest: flipped }, 'SIGNATURE_INVALID');
      rejects({ ...good, nonce: Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f91', 'hex') }, 'NONCE_MISMATCH');
      const changed: PcrValueMap = new Map([...pcrs].map(([h, b]) => [h, new Map(b)]));
      const pcr7 = changed.get('sha256')!.get(7)!.slice();
      pcr7[0]! ^= 0x80;
      changed.get('sha256')!.set(7, pcr7);
      rejects({ ...good, pcrs: changed }, 'PCR_DIGEST_MISMATCH');
      rejects({ ...good, pcrSelection: parsePcrList('sha256:0,1,2,3') }, 'PCR_SELECTION_MISMATCH');
      // A signature from another AK of the same shape over the same message is not this AK's.
      await tool(
        'tpm2_createak',
        '-C',
        'ek.ctx',
        '-c',
        `${id}-2.ctx`,
        '-G',
        v.G,
        '-g',
        v.g,
        '-s',
        v.s,
        '-u',
        `${id}-2.pub`,
      );
      await tool(
        'tpm2_quote',
        '-c',
        `${id}-2.ctx`,
        '-l',
        list,
        '-q',
        nonceHex,
        '-m',
        `${id}-2.msg`,
        '-s',
        `${id}-2.sig`,
        '-g',
        v.g,
        ...scheme,
      );
      rejects({ ...good, signature: await read(f(`${id}-2.sig`)) }, 'SIGNATURE_INVALID');
      rejects({ ...good, akPublic: await read(f(`${id}-2.pub`)) }, 'SIGNATURE_INVALID');
    });
  }

  test('tpm2_certify of an owner-hierarchy key verifies with verifyCertify; another key is NAME_MISMATCH', async () => {
    await tool(
      'tpm2_createak',
      '-C',
      'ek.ctx',
      '-c',
      'cak.ctx',
      '-G',
      'ecc256',
      '-g',
      'sha256',
      '-s',
      'ecdsa',
      '-u',
      'cak.pub',
    );
    await tool('tpm2_createprimary', '-C', 'o', '-G', 'ecc256', '-c', 'key.ctx');
    await tool('tpm2_readpublic', '-c', 'key.ctx', '-o', 'key.pub');
    // tpm2_certify 5.4 has no qualification option: it always qualifies with 00ff55aa.
    await tool(
      'tpm2_certify',
      '-c',
      'key.ctx',
      '-C',
      'cak.ctx',
      '-g',
      'sha256',
      '-o',
      'cert.att',
      '-s',
      'cert.sig',
    );
    const input = {
      akPublic: await read(f('cak.pub')),
      attest: await read(f('cert.att')),
      signature: await read(f('cert.sig')),
      certifiedPublic: await read(f('key.pub')),
      nonce: Uint8Array.of(0x00, 0xff, 0x55, 0xaa),
    };
    const facts = verifyCertify(input);
    assert.equal(facts.certifiedPublic.type, 'ecc');
    assert.throws(() => verifyCertify({ ...input, certifiedPublic: input.akPublic }), {
      code: 'NAME_MISMATCH',
    });
    assert.throws(() => verifyCertify({ ...input, nonce: Uint8Array.of(1) }), { code: 'NONCE_MISMATCH' });
    assert.throws(() => verifyQuote({ ...input, pcrs: {} }), { code: 'WRONG_TYPE' });
  });

  for (const alg of ['rsa', 'ecc'] as const) {
    test(`a ${alg} quote by this client verifies with verifyQuote and with tpm2_checkquote on a serialized PCR file`, async () => {
      const nonce = Uint8Array.from(Buffer.from(`client-nonce-${alg}`));
      const pcrs = [0, 1, 7, 16];
      const tpm = Tpm.open(swtpm.address, { timeoutMs: 20_000 });
      let ak: Awaited<ReturnType<Tpm['createPrimary']>>;
      let quote: Awaited<ReturnType<Tpm['quote']>>;
      let values: Awaited<ReturnType<Tpm['pcrRead']>>;
      try {
        ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, alg === 'rsa' ? rsaAkTemplate() : eccAkTemplate());
        try {
          values = await tpm.pcrRead([{ hash: 'sha256', pcrs }]);
          quote = await tpm.quote(ak.handle, nonce, [{ hash: 'sha256', pcrs }]);
        } finally {
          await tpm.flushContext(ak.handle);
        }
      } finally {
        await tpm.close();
      }
      verifyQuote({
        akPublic: ak.public,
        attest: quote.attest,
        signature: quote.signature,
        nonce,
        pcrs: values.values,
      });
      const selection = [pcrSelection('sha256', pcrs)];
      await writeFile(
        f(`c-${alg}.pub`),
        Uint8Array.from([ak.public.length >> 8, ak.public.length & 0xff, ...ak.public]),
      );
      await writeFile(f(`c-${alg}.msg`), quote.attest);
      await writeFile(f(`c-${alg}.sig`), quote.signature);
      await writeFile(f(`c-${alg}.pcrs`), serializePcrs(selection, values.values));
      const check = (q: string) =>
        tool(
          'tpm2_checkquote',
          '-u',
          `c-${alg}.pub`,
          '-m',
          `c-${alg}.msg`,
          '-s',
          `c-${alg}.sig`,
          '-f',
          `c-${alg}.pcrs`,
          '-g',
          'sha256',
          '-q',
          q,
        );
      await check(hex(nonce));
      await assert.rejects(check(`${hex(nonce)}00`));
      // Our serialized file reads back to the same values.
      assert.deepEqual(parseSerializedPcrs(serializePcrs(selection, values.values)).pcrs, values.values);
    });
  }
});

const corpus = path.resolve(import.meta.dirname, '../../../../shared/corpus/quotes');
const corpusSkip = existsSync(path.join(corpus, 'MANIFEST.tsv')) ? undefined : `no corpus at ${corpus}`;

describe('real vTPM quotes from the shared corpus', { skip: corpusSkip }, () => {
  const manifest = async () => {
    const lines = (await readFile(path.join(corpus, 'MANIFEST.tsv'), 'utf8')).trim().split('\n').slice(1);
    return lines.map((l) => l.split('\t')).map((c) => ({ file: c[0]!, sha256: c[6]! }));
  };
  const load = async (name: string) => {
    const entries = await manifest();
    const entry = entries.find((e) => e.file === name);
    if (entry === undefined) return undefined;
    const raw = await readFile(path.join(corpus, name));
    assert.equal(
      createHash('sha256').update(raw).digest('hex'),
      entry.sha256,
      `${name} matches its MANIFEST digest`,
    );
    return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  };
  type Quote = { message: string; signature: string; pcrs: string[] };
  const pcrMap = (q: Quote): PcrValueMap =>
    new Map([['sha256', new Map(q.pcrs.map((p, i) => [i, Uint8Array.from(Buffer.from(p, 'hex'))]))]]);
  const rsassa = (q: Quote) => ({
    kind: 'rsa' as const,
    sigAlg: TPM_ALG.RSASSA,
    hashAlg: TPM_ALG.SHA256,
    sig: Uint8Array.from(Buffer.from(q.signature, 'hex')),
  });

  test('the Azure SEV-SNP vTPM quote verifies with the HCL AK (JWK) and the nonce "challenge"', async (t) => {
    const evidence = await load('trustee-az-snp-vtpm-evidence-v1.json');
    if (evidence === undefined) return t.skip('not in MANIFEST');
    const q = evidence['tpm_quote'] as Quote;
    const hcl = Buffer.from(String(evidence['hcl_report']), 'base64url');
    const at = hcl.indexOf('{"keys"');
    assert.ok(at > 4, 'the HCL report carries runtime data JSON');
    const json = hcl
      .subarray(at, at + hcl.readUInt32LE(at - 4))
      .toString('utf8')
      .replace(/\0+$/, '');
    const keys = (JSON.parse(json) as { keys: { kid: string }[] }).keys;
    const akJwk = keys.find((k) => k.kid === 'HCLAkPub');
    assert.ok(akJwk);
    const attest = Uint8Array.from(Buffer.from(q.message, 'hex'));
    const nonce = new TextEncoder().encode('challenge');
    const facts = verifyQuote({ akPublic: akJwk, attest, signature: rsassa(q), nonce, pcrs: pcrMap(q) });
    assert.equal(facts.pcrs.get('sha256')!.size, 24);
    assert.throws(
      () =>
        verifyQuote({
          akPublic: akJwk,
          attest,
          signature: rsassa(q),
          nonce: new TextEncoder().encode('challengf'),
          pcrs: pcrMap(q),
        }),
      {
        code: 'NONCE_MISMATCH',
      },
    );
    const pcrs = pcrMap(q);
    pcrs.get('sha256')!.set(4, new Uint8Array(32));
    assert.throws(() => verifyQuote({ akPublic: akJwk, attest, signature: rsassa(q), nonce, pcrs }), {
      code: 'PCR_DIGEST_MISMATCH',
    });
  });

  test('the quote-only corpus file parses and its PCR digest is SHA-256 of the 24 PCRs', async (t) => {
    const q = (await load('trustee-az-snp-vtpm-tpm-quote-v1.json')) as Quote | undefined;
    if (q === undefined) return t.skip('not in MANIFEST');
    const attest = unmarshalAttest(Uint8Array.from(Buffer.from(q.message, 'hex')));
    assert.equal(new TextDecoder().decode(attest.extraData), 'challenge');
    assert.ok(attest.attested.kind === 'quote');
    const h = createHash('sha256');
    for (const p of q.pcrs) h.update(Buffer.from(p, 'hex'));
    assert.equal(hex(attest.attested.pcrDigest), h.digest('hex'));
  });
});
