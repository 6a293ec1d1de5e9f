// The high-range ECC P-384 EK (TCG EK Credential Profile template H-3, certificate at NV 0x01C00016): its
// PolicyB authorization (PolicyOR of PolicySecret(endorsement) and PolicyAuthorizeNV), makeCredential for it, and
// ActivateCredential both ways against swtpm and tpm2-tools.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type Swtpm, startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { TpmResponseError } from '../src/client/errors.ts';
import { eccAkTemplate } from '../src/client/templates.ts';
import { type CreatedObject, Tpm, TPM_RH } from '../src/client/tpm.ts';
import {
  decodeTpm2ToolsCredential,
  ekKeyFromPublic,
  encodeTpm2ToolsCredential,
  makeCredential,
} from '../src/credential.ts';
import {
  EK_POLICY_A,
  EK_POLICY_B,
  EK_POLICY_C,
  ekPolicyFor,
  ekTemplateId,
  ekTemplateInfo,
} from '../src/ek-templates.ts';
import {
  marshalTpmtPublic,
  TCG_EK_POLICY,
  TCG_EK_POLICY_B_SHA384,
  unmarshalTpmtPublic,
} from '../src/public.ts';

const execP = promisify(execFile);

// ---- Policy digests recomputed from the TPM 2.0 Part 3 update rules (independent of src/ek-templates.ts) ----

type H = 'sha256' | 'sha384' | 'sha512';
const SIZE: Record<H, number> = { sha256: 32, sha384: 48, sha512: 64 };
const ALG: Record<H, number> = { sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };
const be = (n: number, bytes: number) => {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(n, 0, bytes);
  return b;
};
const h = (alg: H, ...parts: Uint8Array[]) => {
  const c = createHash(alg);
  for (const p of parts) c.update(p);
  return new Uint8Array(c.digest());
};

/** PolicySecret(TPM_RH_ENDORSEMENT): H(H(0… ‖ TPM_CC_PolicySecret ‖ name(handle)) ‖ policyRef=empty). */
function policyA(alg: H): Uint8Array {
  return h(alg, h(alg, Buffer.alloc(SIZE[alg]), be(0x151, 4), be(TPM_RH.ENDORSEMENT, 4)));
}

/** PolicyAuthorizeNV over the profile's policy index (TPMS_NV_PUBLIC as the profile defines it). */
function policyC(alg: H): Uint8Array {
  const index = { sha256: 0x01c07f01, sha384: 0x01c07f02, sha512: 0x01c07f03 }[alg];
  // TPMA_NV: POLICYWRITE(3) WRITEALL(12) PPREAD(16) OWNERREAD(17) AUTHREAD(18) POLICYREAD(19) NO_DA(25) WRITTEN(29)
  const attributes = [3, 12, 16, 17, 18, 19, 25, 29].reduce((a, bit) => a + 2 ** bit, 0);
  const a = policyA(alg);
  const nvPublic = Buffer.concat([
    be(index, 4),
    be(ALG[alg], 2),
    be(attributes, 4),
    be(a.length, 2),
    a,
    be(SIZE[alg] + 2, 2),
  ]);
  const nvName = Buffer.concat([be(ALG[alg], 2), h(alg, nvPublic)]);
  return h(alg, Buffer.alloc(SIZE[alg]), be(0x192, 4), nvName);
}

/** PolicyOR(PolicyA, PolicyC): H(0… ‖ TPM_CC_PolicyOR ‖ digests). */
function policyB(alg: H): Uint8Array {
  return h(alg, Buffer.alloc(SIZE[alg]), be(0x171, 4), policyA(alg), policyC(alg));
}

describe('EK policies (TCG EK Credential Profile PolicyA / PolicyC / PolicyB)', () => {
  for (const alg of ['sha256', 'sha384', 'sha512'] as const) {
    test(`${alg}: the constants are the digests the policy commands produce`, () => {
      assert.deepEqual(EK_POLICY_A[alg], policyA(alg));
      assert.deepEqual(EK_POLICY_C[alg], policyC(alg));
      assert.deepEqual(EK_POLICY_B[alg], policyB(alg));
      assert.deepEqual(ekPolicyFor(policyB(alg), alg)?.orBranches, [policyA(alg), policyC(alg)]);
      assert.equal(ekPolicyFor(policyA(alg), alg)?.orBranches, undefined);
    });
  }

  test('templates: low range uses PolicyA (SHA-256), ecc-p384 uses PolicyB (SHA-384) with its OR branches', () => {
    assert.deepEqual(EK_POLICY_A.sha256, TCG_EK_POLICY);
    assert.deepEqual(EK_POLICY_B.sha384, TCG_EK_POLICY_B_SHA384);
    const p384 = ekTemplateInfo('ecc-p384');
    assert.equal(p384.certIndex, 0x01c00016);
    assert.equal(p384.tcgName, 'H-3');
    assert.deepEqual(p384.template.authPolicy, policyB('sha384'));
    assert.deepEqual(unmarshalTpmtPublic(p384.marshaled).authPolicy, policyB('sha384'));
    assert.equal(p384.policy.hash, 'sha384');
    assert.deepEqual(p384.policy.orBranches, [policyA('sha384'), policyC('sha384')]);
    for (const id of ['rsa2048', 'ecc-p256'] as const) {
      assert.deepEqual(ekTemplateInfo(id).template.authPolicy, policyA('sha256'));
      assert.equal(ekTemplateInfo(id).policy.orBranches, undefined);
    }
    assert.equal(ekTemplateId('ecc384'), 'ecc-p384');
    assert.equal(ekTemplateId('rsa'), 'rsa2048');
    assert.throws(() => ekTemplateId('ecc521' as 'ecc'), RangeError);
    assert.equal(ekPolicyFor(new Uint8Array(48), 'sha384'), undefined);
  });

  test('makeCredential for a P-384 EK: SHA-384 seed and HMAC, AES-256, secrets up to 48 bytes', () => {
    // Any P-384 point works for the software side; take one from a generated key.
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    const coord = (v: string | undefined) => new Uint8Array(Buffer.from(v ?? '', 'base64url'));
    const template = ekTemplateInfo('ecc-p384').template;
    assert.equal(template.type, 'ecc');
    const ek = ekKeyFromPublic(marshalTpmtPublic({ ...template, x: coord(jwk.x), y: coord(jwk.y) }));
    assert.deepEqual(
      [ek.nameAlg, ek.symmetricKeyBits, ek.type === 'ecc' && ek.curve],
      ['sha384', 256, 'P-384'],
    );
    const akName = new Uint8Array([0x00, 0x0b, ...new Uint8Array(32).fill(7)]);
    const made = makeCredential(ek, akName, new Uint8Array(48).fill(1));
    // TPM2B_ID_OBJECT = size ‖ TPM2B(48-byte HMAC) ‖ AES-CFB(TPM2B(secret)); TPM2B_ENCRYPTED_SECRET = two 48-byte coords.
    assert.equal(made.credentialBlob.length, 2 + 2 + 48 + 2 + 48);
    assert.equal(made.encryptedSecret.length, 2 + 2 + 48 + 2 + 48);
    assert.throws(() => makeCredential(ek, akName, new Uint8Array(49)), { code: 'CREDENTIAL_SECRET_SIZE' });
  });
});

// ---- Against swtpm (its swtpm_setup certifies a P-384 EK at 0x01C00016) and tpm2-tools ----

const skip = swtpmMissing();
const SECRET = new Uint8Array(Buffer.from('hostgate p384 enrollment secret, 48 bytes long!!'));

describe('P-384 EK (high range, PolicyB) on swtpm', { skip, timeout: 120_000 }, () => {
  let swtpm: Swtpm;
  let tpm: Tpm | undefined;
  let ek: CreatedObject;
  let ak: CreatedObject;
  let dir: string;
  const tool = async (name: string, args: string[]) => {
    const { stdout } = await execP(name, args, { cwd: dir, env: swtpm.env, timeout: 30_000 });
    return stdout;
  };
  before(async () => {
    swtpm = await startSwtpm({ ekCert: true });
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-ek384-'));
    const client = Tpm.open(swtpm.address, { timeoutMs: 20_000 });
    tpm = client;
    ek = await client.createEk('ecc-p384');
    // The AK needs no EK authorization: a restricted signing primary in the owner hierarchy is enough for the
    // credential to be bound to its name.
    ak = await client.createPrimary(TPM_RH.OWNER, eccAkTemplate());
  });
  /** The client, while it holds swtpm's single command connection. */
  const client = (): Tpm => {
    assert.ok(tpm, 'client connection is open');
    return tpm;
  };
  after(async () => {
    await tpm?.close();
    await swtpm?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the EK is the one swtpm certified at NV 0x01C00016', async () => {
    const der = await client().readEkCertificate('ecc-p384');
    assert.ok(der, 'swtpm_setup stored a certificate at 0x01C00016');
    // X509Certificate wants the DER alone: NV may carry padding after it (outer SEQUENCE with a 2-byte length).
    assert.equal(der[0], 0x30);
    assert.equal(der[1], 0x82);
    const cert = new X509Certificate(Buffer.from(der.subarray(0, 4 + ((der[2]! << 8) | der[3]!))));
    const jwk = cert.publicKey.export({ format: 'jwk' });
    assert.equal(jwk.crv, 'P-384');
    const pub = unmarshalTpmtPublic(ek.public);
    assert.equal(pub.type, 'ecc');
    if (pub.type !== 'ecc') return;
    assert.equal(Buffer.from(pub.x).toString('base64url'), jwk.x);
    assert.equal(Buffer.from(pub.y).toString('base64url'), jwk.y);
    assert.deepEqual(pub.authPolicy, policyB('sha384'));
    // The TPM's name for the EK is SHA-384 over the public area it returned.
    assert.deepEqual(ek.name, new Uint8Array([0x00, 0x0c, ...h('sha384', ek.public)]));
  });

  test('findEkCertificate picks the certified template in preference order', async () => {
    // swtpm_setup certifies the RSA 2048 EK and the P-384 EK, not the P-256 one.
    const first = await client().findEkCertificate();
    assert.equal(first?.ekTemplate, 'rsa2048');
    const ecc = await client().findEkCertificate(['ecc-p256', 'ecc-p384']);
    assert.equal(ecc?.ekTemplate, 'ecc-p384');
    assert.deepEqual(ecc?.certificate, await client().nvRead(0x01c00016));
    assert.equal(await client().findEkCertificate(['ecc-p256']), undefined);
  });

  test("the client's policy session reaches the EK's authPolicy (PolicyGetDigest)", async () => {
    const session = await client().ekPolicySession(undefined, 'ecc-p384');
    try {
      assert.deepEqual(await client().policyGetDigest(session), policyB('sha384'));
    } finally {
      await client().flushContext(session);
    }
    // A SHA-256 PolicyA session (the low-range policy) is not what this EK asks for.
    const low = await client().ekPolicySession();
    try {
      assert.deepEqual(await client().policyGetDigest(low), policyA('sha256'));
    } finally {
      await client().flushContext(low);
    }
    assert.deepEqual((await client().ekPolicyOf(ek.handle)).orBranches, [
      policyA('sha384'),
      policyC('sha384'),
    ]);
  });

  test('makeCredential (ours) → ActivateCredential (ours) recovers the secret', async () => {
    const made = makeCredential(ek.public, ak.name, SECRET);
    // The policy from the EK's public area, and from the template id.
    assert.deepEqual(
      await client().activateCredentialWithEk(
        ak.handle,
        ek.handle,
        made.credentialBlob,
        made.encryptedSecret,
      ),
      SECRET,
    );
    const again = makeCredential(ek.public, ak.name, SECRET.subarray(0, 16));
    assert.deepEqual(
      await client().activateCredentialWithEk(
        ak.handle,
        ek.handle,
        again.credentialBlob,
        again.encryptedSecret,
        undefined,
        { ekTemplate: 'ecc-p384' },
      ),
      SECRET.subarray(0, 16),
    );
  });

  test('the low-range SHA-256 EK policy is refused for this EK with TPM_RC_POLICY_FAIL', async () => {
    const made = makeCredential(ek.public, ak.name, SECRET);
    await assert.rejects(
      client().activateCredentialWithEk(
        ak.handle,
        ek.handle,
        made.credentialBlob,
        made.encryptedSecret,
        undefined,
        {
          ekTemplate: 'ecc-p256',
        },
      ),
      (err: unknown) => err instanceof TpmResponseError && err.rcName === 'TPM_RC_POLICY_FAIL',
    );
  });

  test('a credential for another AK name, or with another seed, fails with TPM_RC_INTEGRITY', async () => {
    const otherName = ak.name.slice();
    otherName[otherName.length - 1]! ^= 1;
    const forOther = makeCredential(ek.public, otherName, SECRET);
    const isIntegrity = (err: unknown) =>
      err instanceof TpmResponseError && err.rcName === 'TPM_RC_INTEGRITY';
    await assert.rejects(
      client().activateCredentialWithEk(
        ak.handle,
        ek.handle,
        forOther.credentialBlob,
        forOther.encryptedSecret,
      ),
      isIntegrity,
    );
    const a = makeCredential(ek.public, ak.name, SECRET);
    const b = makeCredential(ek.public, ak.name, SECRET);
    await assert.rejects(
      client().activateCredentialWithEk(ak.handle, ek.handle, a.credentialBlob, b.encryptedSecret),
      isIntegrity,
    );
    // The client left no session behind: a later activation still works.
    assert.deepEqual(
      await client().activateCredentialWithEk(ak.handle, ek.handle, a.credentialBlob, a.encryptedSecret),
      SECRET,
    );
  });

  test('low-range EKs keep working: the policy is read from the EK (SHA-256 PolicyA)', async () => {
    for (const id of ['rsa2048', 'ecc-p256'] as const) {
      const low = await client().createEk(id);
      try {
        assert.deepEqual((await client().ekPolicyOf(low.handle)).orBranches, undefined);
        const made = makeCredential(low.public, ak.name, SECRET.subarray(0, 32));
        assert.deepEqual(
          await client().activateCredentialWithEk(
            ak.handle,
            low.handle,
            made.credentialBlob,
            made.encryptedSecret,
          ),
          SECRET.subarray(0, 32),
        );
        // The high-range policy is refused by a low-range EK.
        const again = makeCredential(low.public, ak.name, SECRET.subarray(0, 32));
        await assert.rejects(
          client().activateCredentialWithEk(
            ak.handle,
            low.handle,
            again.credentialBlob,
            again.encryptedSecret,
            undefined,
            { ekTemplate: 'ecc-p384' },
          ),
          (err: unknown) => err instanceof TpmResponseError && err.rcName === 'TPM_RC_POLICY_FAIL',
        );
      } finally {
        await client().flushContext(low.handle);
      }
    }
  });

  test('tpm2_makecredential output → ActivateCredential (ours)', async () => {
    // tpm2_makecredential -T none: the tool's software MakeCredential, given the EK as TPM2B_PUBLIC.
    await writeFile(path.join(dir, 'ek.pub'), Buffer.concat([be(ek.public.length, 2), ek.public]));
    await writeFile(path.join(dir, 'ak.name'), ak.name);
    await writeFile(path.join(dir, 'secret.bin'), SECRET);
    await execP(
      'tpm2_makecredential',
      [
        '-T',
        'none',
        '-u',
        'ek.pub',
        '-s',
        'secret.bin',
        '-n',
        Buffer.from(ak.name).toString('hex'),
        '-o',
        'cred.bin',
      ],
      { cwd: dir, timeout: 30_000 },
    );
    const made = decodeTpm2ToolsCredential(new Uint8Array(await readFile(path.join(dir, 'cred.bin'))));
    assert.equal(made.encryptedSecret.length, 2 + 2 + 48 + 2 + 48, 'an ephemeral P-384 point');
    assert.deepEqual(
      await client().activateCredentialWithEk(
        ak.handle,
        ek.handle,
        made.credentialBlob,
        made.encryptedSecret,
      ),
      SECRET,
    );
  });

  test('makeCredential (ours) → tpm2_activatecredential with a SHA-384 PolicySecret + PolicyOR session', async () => {
    // swtpm serves one command connection at a time: hand it to tpm2-tools (our transient objects stay loaded).
    await client().close();
    tpm = undefined;
    // tpm2_createek 5.x only knows the low-range templates, so the tools make the same EK with tpm2_createprimary.
    await writeFile(path.join(dir, 'policyB.bin'), policyB('sha384'));
    await writeFile(path.join(dir, 'policyA.bin'), policyA('sha384'));
    await writeFile(path.join(dir, 'policyC.bin'), policyC('sha384'));
    const flush = () => tool('tpm2_flushcontext', ['-t']);
    await tool('tpm2_createprimary', [
      '-C',
      'e',
      '-g',
      'sha384',
      '-G',
      'ecc384:null:aes256cfb',
      '-a',
      'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|decrypt',
      '-L',
      'policyB.bin',
      '-c',
      'ek.ctx',
    ]);
    await flush();
    await tool('tpm2_readpublic', ['-c', 'ek.ctx', '-o', 'ek-tools.pub']);
    await flush();
    const toolsEk = new Uint8Array(await readFile(path.join(dir, 'ek-tools.pub'))).subarray(2);
    assert.deepEqual(toolsEk, ek.public, 'tpm2_createprimary made the same EK as template ecc-p384');
    await tool('tpm2_createprimary', [
      '-C',
      'o',
      '-G',
      'ecc256:ecdsa-sha256:null',
      '-c',
      'ak.ctx',
      '-a',
      'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign',
    ]);
    await flush();
    await tool('tpm2_readpublic', ['-c', 'ak.ctx', '-n', 'ak-tools.name']);
    await flush();
    const akName = new Uint8Array(await readFile(path.join(dir, 'ak-tools.name')));
    const activate = async (made: ReturnType<typeof makeCredential>) => {
      await writeFile(path.join(dir, 'ours.bin'), encodeTpm2ToolsCredential(made));
      await tool('tpm2_startauthsession', ['--policy-session', '-g', 'sha384', '-S', 'session.ctx']);
      try {
        await tool('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
        await tool('tpm2_policyor', ['-S', 'session.ctx', '-l', 'sha384:policyA.bin,policyC.bin']);
        await tool('tpm2_activatecredential', [
          '-c',
          'ak.ctx',
          '-C',
          'ek.ctx',
          '-i',
          'ours.bin',
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
    assert.deepEqual(await activate(makeCredential(ek.public, akName, SECRET)), SECRET);
    const otherName = akName.slice();
    otherName[otherName.length - 1]! ^= 1;
    await assert.rejects(activate(makeCredential(ek.public, otherName, SECRET)), /integrity/i);
  });
});
