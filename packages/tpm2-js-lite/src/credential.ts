// TPM 2.0 Part 1 §24 (credential protection) and §11.4.10 (KDFa, KDFe), as TPM2_MakeCredential does it.
import {
  constants,
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { concatBytes as concat } from './bytes.ts';
import { CURVE_BY_ID, HASH_BY_ALG, TPM_ALG } from './constants.ts';
import { Tpm2Error } from './errors.ts';
import { type TpmPublic, unmarshalTpmtPublic } from './public.ts';

export type CredentialHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const DIGEST_SIZE: Record<CredentialHash, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export class CredentialError extends Error {
  readonly code:
    | 'CREDENTIAL_EK_UNSUPPORTED'
    | 'CREDENTIAL_SECRET_SIZE'
    | 'CREDENTIAL_NAME'
    | 'CREDENTIAL_EK_KEY'
    | 'CREDENTIAL_EK_MALFORMED';
  /** Byte offset in the EK's TPMT_PUBLIC for CREDENTIAL_EK_MALFORMED / _UNSUPPORTED, else 0. */
  readonly offset: number;
  constructor(code: CredentialError['code'], message: string, offset = 0) {
    super(message);
    this.name = 'CredentialError';
    this.code = code;
    this.offset = offset;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

function u16Prefixed(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + data.length);
  new DataView(out.buffer).setUint16(0, data.length);
  out.set(data, 2);
  return out;
}

/** The label as the KDFs hash it: its bytes followed by one zero octet (unless already present). */
function labelBytes(label: string): Uint8Array {
  const bytes = new TextEncoder().encode(label);
  return bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes : concat(bytes, new Uint8Array(1));
}

function truncateToBits(out: Uint8Array, bits: number): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const result = out.slice(0, bytes);
  // Part 1 §11.4.10.2: when bits is not a multiple of 8, the unused high-order bits of the first octet are zeroed.
  if (bits % 8 !== 0) result[0] = result[0]! & ((1 << (bits % 8)) - 1);
  return result;
}

/** KDFa (SP 800-108 counter mode with HMAC): HMAC(key, [i]32 ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]32). */
export function kdfa(
  hash: CredentialHash,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  if (!Number.isInteger(bits) || bits <= 0 || bits > 65_536)
    throw new RangeError(`kdfa: bad bit count ${bits}`);
  const digestSize = DIGEST_SIZE[hash];
  const blocks = Math.ceil(bits / 8 / digestSize);
  const fixed = concat(labelBytes(label), contextU, contextV, u32(bits));
  const out = new Uint8Array(blocks * digestSize);
  for (let i = 1; i <= blocks; i++) {
    const mac = createHmac(hash, key).update(u32(i)).update(fixed).digest();
    out.set(mac, (i - 1) * digestSize);
  }
  return truncateToBits(out, bits);
}

/** KDFe (SP 800-56A concatenation KDF): H([i]32 ‖ Z ‖ label ‖ 0x00 ‖ partyUInfo ‖ partyVInfo). */
export function kdfe(
  hash: CredentialHash,
  z: Uint8Array,
  label: string,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Uint8Array {
  if (!Number.isInteger(bits) || bits <= 0 || bits > 65_536)
    throw new RangeError(`kdfe: bad bit count ${bits}`);
  const digestSize = DIGEST_SIZE[hash];
  const blocks = Math.ceil(bits / 8 / digestSize);
  const fixed = concat(labelBytes(label), partyUInfo, partyVInfo);
  const out = new Uint8Array(blocks * digestSize);
  for (let i = 1; i <= blocks; i++) {
    const digest = createHash(hash).update(u32(i)).update(z).update(fixed).digest();
    out.set(digest, (i - 1) * digestSize);
  }
  return truncateToBits(out, bits);
}

/** The parts of an EK's TPMT_PUBLIC that MakeCredential depends on. */
export type CredentialEkKey =
  | {
      type: 'rsa';
      nameAlg: CredentialHash;
      /** AES key size of the EK's symmetric definition (128 for the TCG templates). */
      symmetricKeyBits: number;
      modulus: Uint8Array;
      /** 0 means the default 65537, as in TPMS_RSA_PARMS. */
      exponent: number;
    }
  | {
      type: 'ecc';
      nameAlg: CredentialHash;
      symmetricKeyBits: number;
      curve: 'P-256' | 'P-384' | 'P-521';
      x: Uint8Array;
      y: Uint8Array;
    };

export interface MadeCredential {
  /** Marshaled TPM2B_ID_OBJECT (size prefix included): integrityHMAC ‖ encIdentity. */
  credentialBlob: Uint8Array;
  /** Marshaled TPM2B_ENCRYPTED_SECRET (size prefix included): the seed protected to the EK. */
  encryptedSecret: Uint8Array;
}

const CURVES = {
  'P-256': { openssl: 'prime256v1', size: 32 },
  'P-384': { openssl: 'secp384r1', size: 48 },
  'P-521': { openssl: 'secp521r1', size: 66 },
} as const;

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  return concat(new Uint8Array(size - bytes.length), bytes);
}

/** Seed generation and its protection to the EK (Part 1 Annex B.10.4 for RSA OAEP, C.6.4 for ECDH). */
function protectSeed(ek: CredentialEkKey): { seed: Uint8Array; encryptedSeed: Uint8Array } {
  const digestBits = DIGEST_SIZE[ek.nameAlg] * 8;
  if (ek.type === 'rsa') {
    if (ek.modulus.length < 128)
      throw new CredentialError('CREDENTIAL_EK_KEY', 'RSA EK modulus is too short');
    const seed = new Uint8Array(randomBytes(DIGEST_SIZE[ek.nameAlg]));
    const exponent = ek.exponent === 0 ? 65537 : ek.exponent;
    let e = new Uint8Array(4);
    new DataView(e.buffer).setUint32(0, exponent);
    while (e.length > 1 && e[0] === 0) e = e.subarray(1);
    let encryptedSeed: Uint8Array;
    try {
      const key = createPublicKey({
        key: { kty: 'RSA', n: b64url(ek.modulus), e: b64url(e) },
        format: 'jwk',
      });
      encryptedSeed = publicEncrypt(
        {
          key,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: ek.nameAlg,
          oaepLabel: labelBytes('IDENTITY'),
        },
        seed,
      );
    } catch (err) {
      throw new CredentialError(
        'CREDENTIAL_EK_KEY',
        `RSA EK public key is unusable: ${(err as Error).message}`,
      );
    }
    return { seed, encryptedSeed: new Uint8Array(encryptedSeed) };
  }
  const curve = CURVES[ek.curve];
  if (curve === undefined)
    throw new CredentialError('CREDENTIAL_EK_UNSUPPORTED', `unsupported curve ${ek.curve}`);
  const ekX = leftPad(ek.x, curve.size);
  const ekY = leftPad(ek.y, curve.size);
  if (ekX.length !== curve.size || ekY.length !== curve.size) {
    throw new CredentialError('CREDENTIAL_EK_KEY', 'EK point coordinates are larger than the curve');
  }
  const ecdh = createECDH(curve.openssl);
  const ephemeral = new Uint8Array(ecdh.generateKeys());
  let z: Uint8Array;
  try {
    z = new Uint8Array(ecdh.computeSecret(concat(Uint8Array.of(4), ekX, ekY)));
  } catch (err) {
    throw new CredentialError(
      'CREDENTIAL_EK_KEY',
      `EK point is not on ${ek.curve}: ${(err as Error).message}`,
    );
  }
  const ephX = ephemeral.subarray(1, 1 + curve.size);
  const ephY = ephemeral.subarray(1 + curve.size);
  // partyUInfo is the ephemeral key's x, partyVInfo the EK's x, both as the TPM holds them.
  const seed = kdfe(ek.nameAlg, z, 'IDENTITY', ephX, ek.x, digestBits);
  return { seed, encryptedSeed: concat(u16Prefixed(ephX), u16Prefixed(ephY)) };
}

/**
 * TPM2_MakeCredential in software: protects `secret` so that only the TPM holding the EK, and only
 * for an object named `akName` loaded in it, can recover it with TPM2_ActivateCredential.
 */
export function makeCredentialFor(
  ek: CredentialEkKey,
  akName: Uint8Array,
  secret: Uint8Array,
): MadeCredential {
  const digestSize = DIGEST_SIZE[ek.nameAlg];
  if (digestSize === undefined)
    throw new CredentialError('CREDENTIAL_EK_UNSUPPORTED', `nameAlg ${ek.nameAlg}`);
  if (secret.length === 0 || secret.length > digestSize) {
    throw new CredentialError(
      'CREDENTIAL_SECRET_SIZE',
      `secret must be 1..${digestSize} bytes for an EK with ${ek.nameAlg}, got ${secret.length}`,
    );
  }
  if (akName.length < 2)
    throw new CredentialError('CREDENTIAL_NAME', 'AK name must be algorithm id ‖ digest');
  if (![128, 192, 256].includes(ek.symmetricKeyBits)) {
    throw new CredentialError('CREDENTIAL_EK_UNSUPPORTED', `EK symmetric key of ${ek.symmetricKeyBits} bits`);
  }
  const { seed, encryptedSeed } = protectSeed(ek);
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', akName, new Uint8Array(0), ek.symmetricKeyBits);
  const cipher = createCipheriv(`aes-${ek.symmetricKeyBits}-cfb`, symKey, new Uint8Array(16));
  // The credential is encrypted as a TPM2B_DIGEST, size prefix included (Part 1 §24.4).
  const encIdentity = new Uint8Array(Buffer.concat([cipher.update(u16Prefixed(secret)), cipher.final()]));
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), digestSize * 8);
  const outerHmac = createHmac(ek.nameAlg, hmacKey).update(encIdentity).update(akName).digest();
  return {
    credentialBlob: u16Prefixed(concat(u16Prefixed(outerHmac), encIdentity)),
    encryptedSecret: u16Prefixed(encryptedSeed),
  };
}

const TPM2_TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de;

/** The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i` reads. */
export function encodeTpm2ToolsCredential(made: MadeCredential): Uint8Array {
  return concat(u32(TPM2_TOOLS_CREDENTIAL_MAGIC), u32(1), made.credentialBlob, made.encryptedSecret);
}

export class CredentialFileError extends Error {
  readonly code = 'CREDENTIAL_FILE_MALFORMED';
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = 'CredentialFileError';
    this.offset = offset;
  }
}

/** Reads a `tpm2_makecredential -o` file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
export function decodeTpm2ToolsCredential(file: Uint8Array): MadeCredential {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 8) throw new CredentialFileError('file shorter than its 8-byte header', file.length);
  if (view.getUint32(0) !== TPM2_TOOLS_CREDENTIAL_MAGIC) throw new CredentialFileError('bad magic', 0);
  if (view.getUint32(4) !== 1) throw new CredentialFileError(`unsupported version ${view.getUint32(4)}`, 4);
  let at = 8;
  const sized = (what: string, max: number): Uint8Array => {
    if (file.length - at < 2) throw new CredentialFileError(`${what} size missing`, at);
    const size = view.getUint16(at);
    if (size > max) throw new CredentialFileError(`${what} of ${size} bytes exceeds ${max}`, at);
    if (file.length - at - 2 < size) throw new CredentialFileError(`${what} runs past the end`, at);
    const whole = file.slice(at, at + 2 + size);
    at += 2 + size;
    return whole;
  };
  // Caps from TPM 2.0 Part 2: TPM2B_ID_OBJECT ≤ sizeof(TPMS_ID_OBJECT), TPM2B_ENCRYPTED_SECRET ≤ sizeof(TPMU_ENCRYPTED_SECRET).
  const credentialBlob = sized('TPM2B_ID_OBJECT', 2 + 64 + 2 + 64);
  const encryptedSecret = sized('TPM2B_ENCRYPTED_SECRET', 512);
  if (at !== file.length) throw new CredentialFileError(`${file.length - at} trailing bytes`, at);
  return { credentialBlob, encryptedSecret };
}

const TPMA_RESTRICTED = 0x00010000;
const TPMA_DECRYPT = 0x00020000;

/**
 * Reads what MakeCredential needs from an EK's TPMT_PUBLIC (the contents of a TPM2B_PUBLIC) with the shared
 * bounds-checked parser. The EK must be a restricted decryption key with an AES-CFB symmetric definition.
 */
export function ekKeyFromPublic(tpmtPublic: Uint8Array): CredentialEkKey {
  let pub: TpmPublic;
  try {
    pub = unmarshalTpmtPublic(tpmtPublic);
  } catch (err) {
    if (!(err instanceof Tpm2Error)) throw err;
    const code =
      err.code === 'UNSUPPORTED_ALGORITHM' ? 'CREDENTIAL_EK_UNSUPPORTED' : 'CREDENTIAL_EK_MALFORMED';
    throw new CredentialError(code, `EK ${err.message}`, err.offset);
  }
  const unsupported = (message: string): never => {
    throw new CredentialError('CREDENTIAL_EK_UNSUPPORTED', message);
  };
  const nameAlg = HASH_BY_ALG.get(pub.nameAlg)?.name ?? unsupported('EK nameAlg is not SHA-1/256/384/512');
  if ((pub.objectAttributes & (TPMA_RESTRICTED | TPMA_DECRYPT)) !== (TPMA_RESTRICTED | TPMA_DECRYPT)) {
    unsupported('EK is not a restricted decryption key');
  }
  if (pub.symmetric.algorithm !== TPM_ALG.AES) unsupported('EK symmetric algorithm is not AES');
  if (pub.symmetric.mode !== TPM_ALG.CFB) unsupported('EK symmetric mode is not CFB');
  if (pub.scheme.scheme !== TPM_ALG.NULL) unsupported('a storage EK has scheme TPM_ALG_NULL');
  const symmetricKeyBits = pub.symmetric.keyBits ?? 0;
  if (pub.type === 'rsa') {
    if (pub.modulus.length * 8 !== pub.keyBits) {
      // The unique field is the last one: its size prefix sits 2 + modulus bytes from the end.
      const at = tpmtPublic.length - pub.modulus.length - 2;
      throw new CredentialError(
        'CREDENTIAL_EK_MALFORMED',
        `EK TPMT_PUBLIC: modulus of ${pub.modulus.length} bytes for ${pub.keyBits} bits at byte ${at}`,
        at,
      );
    }
    return { type: 'rsa', nameAlg, symmetricKeyBits, modulus: pub.modulus, exponent: pub.exponent };
  }
  const curve = CURVE_BY_ID.get(pub.curveId)?.name ?? unsupported('EK curve is not NIST P-256/384/521');
  if (pub.kdf.scheme !== TPM_ALG.NULL) unsupported('EK KDF is not TPM_ALG_NULL');
  return { type: 'ecc', nameAlg, symmetricKeyBits, curve, x: pub.x, y: pub.y };
}

/**
 * TPM2_MakeCredential for an EK given as its TPMT_PUBLIC bytes (or already decoded), the AK's name
 * (nameAlg ‖ digest) and the secret to protect (at most the EK nameAlg's digest size).
 */
export function makeCredential(
  ekPublic: Uint8Array | CredentialEkKey,
  akName: Uint8Array,
  secret: Uint8Array,
): MadeCredential {
  return makeCredentialFor(
    ekPublic instanceof Uint8Array ? ekKeyFromPublic(ekPublic) : ekPublic,
    akName,
    secret,
  );
}
