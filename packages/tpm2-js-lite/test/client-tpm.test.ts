import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type Swtpm, startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { decodeTpm2ToolsCredential, makeCredential } from '../src/credential.ts';
import { TpmResponseError } from '../src/client/errors.ts';
import { eccAkTemplate, rsaAkTemplate } from '../src/client/templates.ts';
import { Tpm, TPM_RH } from '../src/client/tpm.ts';

const execP = promisify(execFile);
const skip = swtpmMissing();

function tpm2b(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + b.length);
  new DataView(out.buffer).setUint16(0, b.length);
  out.set(b, 2);
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** One swtpm per suite; the client and tpm2-tools take turns on its single command connection. */
function withSwtpm(opts: { ekCert?: boolean } = {}) {
  const ctx = {} as { swtpm: Swtpm; dir: string };
  before(async () => {
    if (skip) return;
    ctx.swtpm = await startSwtpm(opts);
    ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-client-'));
  });
  after(async () => {
    await ctx.swtpm?.stop();
    if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
  });
  const tool = async (name: string, args: string[]) => {
    const { stdout } = await execP(name, args, {
      cwd: ctx.dir,
      env: ctx.swtpm.env,
      timeout: 30_000,
      encoding: 'buffer',
    });
    return stdout;
  };
  /** Runs `fn` on a fresh client connection and closes it so tpm2-tools can connect next. */
  const client = async <T>(fn: (tpm: Tpm) => Promise<T>): Promise<T> => {
    const tpm = Tpm.open(ctx.swtpm.address, { timeoutMs: 20_000 });
    try {
      return await fn(tpm);
    } finally {
      await tpm.close();
    }
  };
  const file = (name: string) => path.join(ctx.dir, name);
  return { ctx, tool, client, file };
}

describe('Tpm client against swtpm', { timeout: 120_000 }, () => {
  const { tool, client, file } = withSwtpm();

  test('GetRandom, PCR_Extend and PCR_Read agree with tpm2_pcrread', { skip }, async () => {
    const measured = createHash('sha256').update('hostgate').digest();
    const values = await client(async (tpm) => {
      await tpm.startup();
      const random = await tpm.getRandom(100);
      assert.equal(random.length, 100);
      assert.notDeepEqual(random, await tpm.getRandom(100));
      await tpm.pcrExtend(16, [{ hash: 'sha256', digest: measured }]);
      return tpm.pcrRead([{ hash: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16] }]);
    });
    const bank = values.values.get('sha256')!;
    assert.equal(bank.size, 11, 'more than 8 PCRs need several PCR_Read calls');
    const expected16 = createHash('sha256').update(new Uint8Array(32)).update(measured).digest();
    assert.equal(hex(bank.get(16)!), hex(expected16));
    const fromTools = await tool('tpm2_pcrread', ['sha256:0,16', '-o', 'pcrs.bin']);
    assert.ok(fromTools.length > 0);
    const raw = await readFile(file('pcrs.bin'));
    assert.equal(hex(raw), hex(bank.get(0)!) + hex(bank.get(16)!));
  });

  for (const alg of ['rsa', 'ecc'] as const) {
    test(`CreatePrimary with the TCG ${alg} EK template equals tpm2_createek`, { skip }, async () => {
      const ours = await client(async (tpm) => {
        const ek = await tpm.createEk(alg);
        await tpm.flushContext(ek.handle);
        return ek;
      });
      await tool('tpm2_createek', ['-G', alg, '-c', `ek-${alg}.ctx`, '-u', `ek-${alg}.pub`]);
      await tool('tpm2_flushcontext', ['-t']);
      const theirs = new Uint8Array(await readFile(file(`ek-${alg}.pub`)));
      assert.equal(hex(tpm2b(ours.public)), hex(theirs));
      // The name is nameAlg ‖ SHA-256(TPMT_PUBLIC): recomputing it checks the bytes we returned.
      assert.equal(hex(ours.name), '000b' + createHash('sha256').update(ours.public).digest('hex'));
    });

    test(`a ${alg} AK quote made by the client verifies with tpm2_checkquote`, { skip }, async () => {
      const nonce = new Uint8Array(Buffer.from('hostgate-nonce-' + alg));
      const pcrs = [0, 1, 2, 16];
      const { ak, quote, values } = await client(async (tpm) => {
        const ak = await tpm.createPrimary(
          TPM_RH.ENDORSEMENT,
          alg === 'rsa' ? rsaAkTemplate() : eccAkTemplate(),
        );
        try {
          const values = await tpm.pcrRead([{ hash: 'sha256', pcrs }]);
          const quote = await tpm.quote(ak.handle, nonce, [{ hash: 'sha256', pcrs }]);
          return { ak, quote, values };
        } finally {
          await tpm.flushContext(ak.handle);
        }
      });
      const bank = values.values.get('sha256')!;
      await writeFile(file('ak.pub'), tpm2b(ak.public));
      await writeFile(file('quote.msg'), quote.attest);
      await writeFile(file('quote.sig'), quote.signature);
      await writeFile(file('pcrs.values'), Buffer.concat(pcrs.map((p) => bank.get(p)!)));
      const check = (qualification: string) =>
        tool('tpm2_checkquote', [
          '-u',
          'ak.pub',
          '-m',
          'quote.msg',
          '-s',
          'quote.sig',
          '-f',
          'pcrs.values',
          '-l',
          'sha256:' + pcrs.join(','),
          '-g',
          'sha256',
          '-q',
          qualification,
        ]);
      await check(hex(nonce));
      // The peer must be able to say no: another nonce is refused.
      await assert.rejects(check(hex(nonce) + '00'));
    });

    test(`ActivateCredential (${alg} EK, AK created under the EK) accepts tpm2_makecredential output`, {
      skip,
    }, async () => {
      const secret = new Uint8Array(Buffer.from('0123456789abcdef0123456789abcdef'));
      // Phase 1: EK and an AK under it (the EK's policy authorizes the parent for Create and Load).
      const made = await client(async (tpm) => {
        const ek = await tpm.createEk(alg);
        const parentAuth = { kind: 'policy', session: await tpm.ekPolicySession() } as const;
        const akBlob = await tpm.create(ek.handle, alg === 'rsa' ? rsaAkTemplate() : eccAkTemplate(), {
          parentAuth,
        });
        const ak = await tpm.load(ek.handle, akBlob.private, akBlob.public, {
          kind: 'policy',
          session: await tpm.ekPolicySession(),
        });
        return { ek, ak };
      });
      const { ek, ak } = made;
      try {
        await writeFile(file('ek.pub'), tpm2b(ek.public));
        await writeFile(file('secret.bin'), secret);
        await tool('tpm2_makecredential', [
          '-T',
          'none',
          '-u',
          'ek.pub',
          '-s',
          'secret.bin',
          '-n',
          hex(ak.name),
          '-o',
          'cred.bin',
        ]);
        const cred = decodeTpm2ToolsCredential(new Uint8Array(await readFile(file('cred.bin'))));
        await client(async (tpm) => {
          const recovered = await tpm.activateCredentialWithEk(
            ak.handle,
            ek.handle,
            cred.credentialBlob,
            cred.encryptedSecret,
          );
          assert.equal(hex(recovered), hex(secret));

          // A flipped bit in the encrypted identity fails the outer HMAC.
          const tampered = cred.credentialBlob.slice();
          tampered[tampered.length - 1]! ^= 1;
          await assert.rejects(
            tpm.activateCredentialWithEk(ak.handle, ek.handle, tampered, cred.encryptedSecret),
            (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_INTEGRITY',
          );
          // The EK does not accept a password: only its policy (PolicySecret on the endorsement hierarchy).
          await assert.rejects(
            tpm.activateCredential(ak.handle, ek.handle, cred.credentialBlob, cred.encryptedSecret, {
              activate: { kind: 'password' },
              key: { kind: 'password' },
            }),
            (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_AUTH_UNAVAILABLE',
          );
        });
      } finally {
        await client(async (tpm) => {
          await tpm.flushContext(ak.handle);
          await tpm.flushContext(ek.handle);
        });
      }
    });
  }

  for (const alg of ['rsa', 'ecc'] as const) {
    test(`enrollment round trip (${alg}): makeCredential for the client's EK and AK, ActivateCredential`, {
      skip,
    }, async () => {
      await client(async (tpm) => {
        const ek = await tpm.createEk(alg);
        const ak = await tpm.createPrimary(
          TPM_RH.ENDORSEMENT,
          alg === 'rsa' ? rsaAkTemplate() : eccAkTemplate(),
        );
        const other = await tpm.createPrimary(
          TPM_RH.OWNER,
          alg === 'rsa' ? rsaAkTemplate() : eccAkTemplate(),
        );
        try {
          const secret = await tpm.getRandom(32);
          const made = makeCredential(ek.public, ak.name, secret);
          const recovered = await tpm.activateCredentialWithEk(
            ak.handle,
            ek.handle,
            made.credentialBlob,
            made.encryptedSecret,
          );
          assert.equal(hex(recovered), hex(secret));
          // A key other than the named AK cannot claim the credential (the name feeds the HMAC and the key derivation).
          await assert.rejects(
            tpm.activateCredentialWithEk(other.handle, ek.handle, made.credentialBlob, made.encryptedSecret),
            (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_INTEGRITY',
          );
        } finally {
          for (const h of [other.handle, ak.handle, ek.handle]) await tpm.flushContext(h);
        }
      });
    });
  }

  test('Certify: the AK attests a signing key in the same TPM', { skip }, async () => {
    await client(async (tpm) => {
      const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, eccAkTemplate());
      const { eccSigningKeyTemplate } = await import('../src/client/templates.ts');
      const key = await tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
      try {
        const nonce = new Uint8Array(16).fill(7);
        const { attest, signature } = await tpm.certify(key.handle, ak.handle, nonce);
        // TPMS_ATTEST: magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_CERTIFY.
        assert.equal(hex(attest.subarray(0, 6)), 'ff54434780' + '17');
        assert.ok(
          Buffer.from(attest).includes(Buffer.from(key.name)),
          'certified name is in the attestation',
        );
        assert.equal(hex(signature.subarray(0, 4)), '0018000b', 'ECDSA with SHA-256');
      } finally {
        await tpm.flushContext(key.handle);
        await tpm.flushContext(ak.handle);
      }
    });
  });

  test('TPM errors are decoded to names', { skip }, async () => {
    await client(async (tpm) => {
      await assert.rejects(tpm.flushContext(0x80ffffff), (e: unknown) => {
        assert.ok(e instanceof TpmResponseError);
        assert.match(e.rcName, /^TPM_RC_(HANDLE|VALUE|REFERENCE_H0)$/);
        assert.match(e.message, /TPM2_FlushContext failed: TPM_RC_/);
        return true;
      });
    });
  });
});

describe('EK certificate in NV (swtpm_setup with the local CA)', { timeout: 120_000 }, () => {
  const { ctx, tool, client } = withSwtpm({ ekCert: true });

  test('NV_Read of the RSA EK certificate equals tpm2_nvread; the certificate holds the EK', {
    skip,
  }, async () => {
    const { der, ek, ecc } = await client(async (tpm) => {
      const der = await tpm.readEkCertificate('rsa');
      const ek = await tpm.createEk('rsa');
      await tpm.flushContext(ek.handle);
      return { der, ek, ecc: await tpm.readEkCertificate('ecc') };
    });
    assert.ok(der);
    const theirs = await tool('tpm2_nvread', ['-C', 'o', '0x1c00002']);
    assert.equal(hex(der), hex(theirs));
    const cert = new X509Certificate(der);
    assert.ok(cert.verify(new X509Certificate(ctx.swtpm.ca!.issuerCertPem).publicKey));
    const jwk = cert.publicKey.export({ format: 'jwk' });
    // TPMT_PUBLIC of an RSA EK ends with the 256-byte modulus.
    assert.equal(
      Buffer.from(jwk.n!, 'base64url').toString('hex'),
      hex(ek.public.subarray(ek.public.length - 256)),
    );
    // swtpm 0.7 stores its ECC EK certificate (P-384) in the high range, not at 0x01c0000a.
    assert.equal(ecc, undefined);
  });
});
