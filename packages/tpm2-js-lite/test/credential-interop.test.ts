import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import {
  type CredentialEkKey,
  decodeTpm2ToolsCredential,
  ekKeyFromPublic,
  encodeTpm2ToolsCredential,
  makeCredentialFor,
} from '../src/credential.ts';

const execP = promisify(execFile);
const skip = swtpmMissing();

/** The EK as tpm2_createek -f pem writes it, with the TCG template's fixed parameters (SHA-256, AES-128). */
function ekFromPem(pem: string): CredentialEkKey {
  const jwk = createPublicKey(pem).export({ format: 'jwk' });
  const b = (s: string | undefined) => new Uint8Array(Buffer.from(s ?? '', 'base64url'));
  if (jwk.kty === 'RSA') {
    const e = b(jwk.e);
    return {
      type: 'rsa',
      nameAlg: 'sha256',
      symmetricKeyBits: 128,
      modulus: b(jwk.n),
      // TPMS_RSA_PARMS writes the default exponent 65537 as 0.
      exponent: ((n) => (n === 65537 ? 0 : n))(e.reduce((n, x) => n * 256 + x, 0)),
    };
  }
  assert.equal(jwk.crv, 'P-256');
  return { type: 'ecc', nameAlg: 'sha256', symmetricKeyBits: 128, curve: 'P-256', x: b(jwk.x), y: b(jwk.y) };
}

for (const alg of ['rsa', 'ecc'] as const) {
  describe(`makeCredential → tpm2_activatecredential (${alg} EK)`, { timeout: 90_000 }, () => {
    test('the TPM releases the secret to the AK named in the credential', { skip }, async () => {
      const tpm = await startSwtpm();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-cred-'));
      const tool = async (name: string, args: string[]) => {
        const { stdout } = await execP(name, args, { cwd: dir, env: tpm.env, timeout: 30_000 });
        return stdout;
      };
      // Without a resource manager transient objects pile up between tool runs: flush after each.
      const flush = () => tool('tpm2_flushcontext', ['-t']);
      try {
        await tool('tpm2_createek', ['-c', 'ek.ctx', '-G', alg, '-u', 'ek.pub']);
        await flush();
        await tool('tpm2_readpublic', ['-c', 'ek.ctx', '-o', 'ek.pem', '-f', 'pem']);
        await flush();
        const sigScheme = alg === 'rsa' ? 'rsassa' : 'ecdsa';
        await tool('tpm2_createak', [
          '-C',
          'ek.ctx',
          '-c',
          'ak.ctx',
          '-G',
          alg,
          '-g',
          'sha256',
          '-s',
          sigScheme,
          '-u',
          'ak.pub',
          '-n',
          'ak.name',
        ]);
        await flush();
        // The EK as the TPM returned it (TPM2B_PUBLIC), and independently as OpenSSL reads its PEM.
        const ekTpm2b = new Uint8Array(await readFile(path.join(dir, 'ek.pub')));
        const ek = ekKeyFromPublic(ekTpm2b.subarray(2));
        assert.deepEqual(ek, ekFromPem(await readFile(path.join(dir, 'ek.pem'), 'utf8')));
        const akName = new Uint8Array(await readFile(path.join(dir, 'ak.name')));
        const secret = new Uint8Array(Buffer.from('hostgate enrollment secret 32B!!'));
        const made = makeCredentialFor(ek, akName, secret);
        const file = encodeTpm2ToolsCredential(made);
        assert.deepEqual(decodeTpm2ToolsCredential(file), made);
        await writeFile(path.join(dir, 'cred.bin'), file);

        const activate = async (credFile: string) => {
          await tool('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
          try {
            await tool('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
            await tool('tpm2_activatecredential', [
              '-c',
              'ak.ctx',
              '-C',
              'ek.ctx',
              '-i',
              credFile,
              '-o',
              'recovered.bin',
              '-P',
              'session:session.ctx',
            ]);
          } finally {
            await tool('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
            await flush();
          }
          return new Uint8Array(await readFile(path.join(dir, 'recovered.bin')));
        };
        assert.deepEqual(await activate('cred.bin'), secret);

        // Bound to the AK's name: the same credential made for another name must be refused by the TPM.
        const otherName = akName.slice();
        otherName[otherName.length - 1] = otherName[otherName.length - 1]! ^ 1;
        await writeFile(
          path.join(dir, 'other.bin'),
          encodeTpm2ToolsCredential(makeCredentialFor(ek, otherName, secret)),
        );
        await assert.rejects(activate('other.bin'), /integrity/i);
      } finally {
        await tpm.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
