import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  constants,
  randomBytes,
} from 'node:crypto';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { eccAkTemplate, eccEkTemplate, rsaEkTemplate } from '../src/client/templates.ts';
import {
  type CredentialEkKey,
  CredentialError,
  CredentialFileError,
  decodeTpm2ToolsCredential,
  ekKeyFromPublic,
  encodeTpm2ToolsCredential,
  kdfa,
  kdfe,
  makeCredential,
  makeCredentialFor,
} from '../src/credential.ts';

const execP = promisify(execFile);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

async function openssl(args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await execP('openssl', args, { timeout: 10_000 });
    return stdout.trim().replaceAll(':', '').toLowerCase();
  } catch {
    return undefined;
  }
}

const noOpensslKdf =
  (await openssl(['kdf', '-keylen', '4', '-kdfopt', 'digest:SHA256', '-kdfopt', 'hexkey:00', 'SSKDF'])) ===
  undefined
    ? 'openssl 3 kdf command (KBKDF/SSKDF) not available'
    : undefined;

describe('KDFa and KDFe against OpenSSL', { skip: noOpensslKdf }, () => {
  // KDFa is SP 800-108 counter-mode HMAC; OpenSSL's KBKDF adds the 0x00 separator between label and context.
  const kdfaCases = [
    {
      hash: 'sha256',
      key: '000102030405060708090a0b0c0d0e0f',
      label: 'STORAGE',
      u: '000b1122',
      v: '',
      bits: 128,
    },
    { hash: 'sha256', key: 'ff'.repeat(32), label: 'INTEGRITY', u: '', v: '', bits: 256 },
    { hash: 'sha1', key: 'aa'.repeat(20), label: 'STORAGE', u: '0004' + 'bb'.repeat(20), v: '', bits: 520 },
    { hash: 'sha384', key: '01'.repeat(48), label: 'ATH', u: 'cc', v: 'dd', bits: 384 },
  ] as const;
  for (const c of kdfaCases) {
    test(`kdfa ${c.hash} ${c.label} ${c.bits} bits`, async () => {
      const ours = kdfa(c.hash, h(c.key), c.label, h(c.u), h(c.v), c.bits);
      const theirs = await openssl([
        'kdf',
        '-keylen',
        String(c.bits / 8),
        '-kdfopt',
        `digest:${c.hash.toUpperCase()}`,
        '-kdfopt',
        'mac:HMAC',
        '-kdfopt',
        `hexkey:${c.key}`,
        '-kdfopt',
        `salt:${c.label}`,
        '-kdfopt',
        `hexinfo:${c.u}${c.v}`,
        'KBKDF',
      ]);
      assert.equal(hex(ours), theirs);
    });
  }
  // KDFe is the SP 800-56A one-step KDF: H(counter ‖ Z ‖ OtherInfo), OtherInfo = label ‖ 0x00 ‖ U ‖ V.
  const kdfeCases = [
    { hash: 'sha256', z: '00112233', u: 'aabb', v: 'ccdd', bits: 256 },
    { hash: 'sha256', z: '42'.repeat(32), u: '01'.repeat(32), v: '02'.repeat(32), bits: 512 },
    { hash: 'sha384', z: '42'.repeat(48), u: '01'.repeat(48), v: '02'.repeat(48), bits: 384 },
  ] as const;
  for (const c of kdfeCases) {
    test(`kdfe ${c.hash} ${c.bits} bits`, async () => {
      const ours = kdfe(c.hash, h(c.z), 'IDENTITY', h(c.u), h(c.v), c.bits);
      const info = Buffer.from('IDENTITY\0').toString('hex') + c.u + c.v;
      const theirs = await openssl([
        'kdf',
        '-keylen',
        String(c.bits / 8),
        '-kdfopt',
        `digest:${c.hash.toUpperCase()}`,
        '-kdfopt',
        `hexkey:${c.z}`,
        '-kdfopt',
        `hexinfo:${info}`,
        'SSKDF',
      ]);
      assert.equal(hex(ours), theirs);
    });
  }
  test('odd bit counts zero the unused high bits of the first octet', () => {
    // [bits]32 is part of the HMAC input, so only the shape can be compared across bit counts.
    for (let key = 0; key < 64; key++) {
      const odd = kdfa('sha256', Uint8Array.of(key), 'X', h(''), h(''), 12);
      assert.equal(odd.length, 2);
      assert.ok(odd[0]! < 16);
    }
  });
  test('a label already ending in NUL is not given a second one', () => {
    assert.deepEqual(
      kdfa('sha256', h('01'), 'STORAGE\0', h(''), h(''), 128),
      kdfa('sha256', h('01'), 'STORAGE', h(''), h(''), 128),
    );
  });
});

describe('makeCredentialFor (RSA EK), opened with the EK private key', () => {
  test('seed, symmetric wrap and outer HMAC follow Part 1 §24', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const ek: CredentialEkKey = {
      type: 'rsa',
      nameAlg: 'sha256',
      symmetricKeyBits: 128,
      modulus: new Uint8Array(Buffer.from(jwk.n!, 'base64url')),
      exponent: 0,
    };
    const name = h('000b' + 'ab'.repeat(32));
    const secret = new Uint8Array(randomBytes(32));
    const made = makeCredentialFor(ek, name, secret);
    // What TPM2_ActivateCredential does, step by step, with the private key standing in for the TPM.
    const encSeed = made.encryptedSecret.subarray(2);
    assert.equal(new DataView(made.encryptedSecret.buffer).getUint16(0), encSeed.length);
    const seed = privateDecrypt(
      {
        key: privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
        oaepLabel: Buffer.from('IDENTITY\0'),
      },
      encSeed,
    );
    assert.equal(seed.length, 32);
    const blob = made.credentialBlob;
    assert.equal(new DataView(blob.buffer).getUint16(0), blob.length - 2);
    const hmacSize = new DataView(blob.buffer).getUint16(2);
    assert.equal(hmacSize, 32);
    const integrity = blob.subarray(4, 4 + hmacSize);
    const encIdentity = blob.subarray(4 + hmacSize);
    const hmacKey = kdfa('sha256', seed, 'INTEGRITY', h(''), h(''), 256);
    assert.equal(
      hex(createHmac('sha256', hmacKey).update(encIdentity).update(name).digest()),
      hex(integrity),
    );
    const symKey = kdfa('sha256', seed, 'STORAGE', name, h(''), 128);
    const plain = createDecipheriv('aes-128-cfb', symKey, new Uint8Array(16)).update(encIdentity);
    assert.equal(plain.readUInt16BE(0), 32);
    assert.equal(hex(plain.subarray(2)), hex(secret));
  });

  test('rejects secrets larger than the name digest, empty names and unsupported EKs', () => {
    const ek: CredentialEkKey = {
      type: 'ecc',
      nameAlg: 'sha256',
      symmetricKeyBits: 128,
      curve: 'P-256',
      x: h('00'),
      y: h('00'),
    };
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof CredentialError);
        return e.code;
      }
      return 'no error';
    };
    assert.equal(
      code(() => makeCredentialFor(ek, h('000b00'), new Uint8Array(33))),
      'CREDENTIAL_SECRET_SIZE',
    );
    assert.equal(
      code(() => makeCredentialFor(ek, h('00'), new Uint8Array(16))),
      'CREDENTIAL_NAME',
    );
    assert.equal(
      code(() => makeCredentialFor({ ...ek, symmetricKeyBits: 64 }, h('000b00'), new Uint8Array(16))),
      'CREDENTIAL_EK_UNSUPPORTED',
    );
    // A point not on the curve must not yield a credential (invalid-curve attacks on the ephemeral ECDH).
    assert.equal(
      code(() => makeCredentialFor(ek, h('000b00'), new Uint8Array(16))),
      'CREDENTIAL_EK_KEY',
    );
  });
});

describe('tpm2-tools credential file', () => {
  test('round-trips and rejects hostile input with typed errors only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          const d = decodeTpm2ToolsCredential(bytes);
          assert.deepEqual(encodeTpm2ToolsCredential(d), bytes);
        } catch (e) {
          if (!(e instanceof CredentialFileError)) throw e;
        }
      }),
      { numRuns: 5000 },
    );
    const good = encodeTpm2ToolsCredential({ credentialBlob: h('0003010203'), encryptedSecret: h('0001ff') });
    assert.deepEqual(decodeTpm2ToolsCredential(good).credentialBlob, h('0003010203'));
    const mutants: [Uint8Array, number][] = [
      [good.subarray(0, 7), 7],
      [Uint8Array.of(0, ...good.subarray(1)), 0],
      [good.subarray(0, good.length - 1), 13],
      [Uint8Array.of(...good, 0), good.length],
    ];
    for (const [bytes, offset] of mutants) {
      assert.throws(
        () => decodeTpm2ToolsCredential(bytes),
        (e: unknown) => e instanceof CredentialFileError && e.offset === offset,
      );
    }
  });
});

describe('ekKeyFromPublic', () => {
  test('reads the TCG EK templates', () => {
    const rsa = ekKeyFromPublic(rsaEkTemplate());
    assert.equal(rsa.type, 'rsa');
    assert.equal(rsa.nameAlg, 'sha256');
    assert.equal(rsa.symmetricKeyBits, 128);
    const ecc = ekKeyFromPublic(eccEkTemplate());
    assert.equal(ecc.type === 'ecc' && ecc.curve, 'P-256');
  });
  test('refuses keys that cannot receive a credential', () => {
    // The templates' unique fields are zero: structurally an EK, but no usable public key.
    for (const template of [rsaEkTemplate(), eccEkTemplate()]) {
      assert.throws(
        () => makeCredential(template, h('000b' + '00'.repeat(32)), new Uint8Array(16)),
        (e: unknown) => e instanceof CredentialError && e.code === 'CREDENTIAL_EK_KEY',
      );
    }
    assert.throws(
      () => ekKeyFromPublic(eccAkTemplate()),
      (e: unknown) => e instanceof CredentialError && e.code === 'CREDENTIAL_EK_UNSUPPORTED',
    );
  });
  test('hostile bytes and mutated templates raise only CredentialError, with an offset inside the input', () => {
    const seeds = [rsaEkTemplate(), eccEkTemplate()];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc
            .tuple(fc.nat(1), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(400))
            .map(([which, pos, byte, cut]) => {
              const seed = seeds[which]!.slice();
              seed[pos % seed.length] = byte;
              return seed.subarray(0, Math.max(0, seed.length - (cut % 8 === 0 ? cut % 300 : 0)));
            }),
        ),
        (bytes) => {
          try {
            ekKeyFromPublic(bytes);
          } catch (e) {
            if (!(e instanceof CredentialError)) throw e;
            assert.ok(e.offset >= 0 && e.offset <= bytes.length);
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
