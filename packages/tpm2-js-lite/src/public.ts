// TPMT_PUBLIC / TPM2B_PUBLIC for RSA and ECC objects (TPM 2.0 Part 2 §12.2), object names (Part 1 §16),
// and the TCG EK Credential Profile 2.0 low-range EK templates (§B.3.3).
import { ByteReader, ByteWriter, bytesEqual, fromHex } from './bytes.ts';
import { CURVE_BY_ID, HASH_BY_ALG, LIMITS, TPM_ALG, TPM_ECC_CURVE, TPMA } from './constants.ts';
import { Tpm2Error } from './errors.ts';

/** TPMT_SYM_DEF_OBJECT; keyBits and mode are absent when algorithm is TPM_ALG_NULL. */
export interface SymDefObject {
  algorithm: number;
  keyBits?: number;
  mode?: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME: hashAlg when the scheme has one, count for ECDAA. */
export interface SchemeDef {
  scheme: number;
  hashAlg?: number;
  count?: number;
}

interface PublicCommon {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  symmetric: SymDefObject;
  scheme: SchemeDef;
}

export interface RsaPublic extends PublicCommon {
  type: 'rsa';
  keyBits: number;
  /** 0 means the default 65537. */
  exponent: number;
  modulus: Uint8Array;
}

export interface EccPublic extends PublicCommon {
  type: 'ecc';
  curveId: number;
  kdf: SchemeDef;
  x: Uint8Array;
  y: Uint8Array;
}

export type TpmPublic = RsaPublic | EccPublic;

const RSA_SCHEMES_WITH_HASH = new Set<number>([TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP]);
const RSA_SCHEMES_BARE = new Set<number>([TPM_ALG.NULL, TPM_ALG.RSAES]);
const ECC_SCHEMES_WITH_HASH = new Set<number>([
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.SM2,
  TPM_ALG.ECMQV,
]);
const KDFS = new Set<number>([TPM_ALG.KDF1_SP800_56A, TPM_ALG.KDF2, TPM_ALG.KDF1_SP800_108, TPM_ALG.MGF1]);
const BLOCK_CIPHERS = new Set<number>([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);

function unsupported(r: ByteReader, what: string, at: number): never {
  throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `${r.what}: ${what} at byte ${at}`, at);
}

function readHashAlg(r: ByteReader, field: string, allowNull = false): number {
  const at = r.offset;
  const alg = r.u16(field);
  if (HASH_BY_ALG.has(alg) || (allowNull && alg === TPM_ALG.NULL)) return alg;
  return unsupported(r, `${field} 0x${alg.toString(16)} is not a supported hash`, at);
}

function readSymDef(r: ByteReader): SymDefObject {
  const at = r.offset;
  const algorithm = r.u16('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return { algorithm };
  if (!BLOCK_CIPHERS.has(algorithm)) unsupported(r, `symmetric algorithm 0x${algorithm.toString(16)}`, at);
  return { algorithm, keyBits: r.u16('symmetric.keyBits'), mode: r.u16('symmetric.mode') };
}

function readScheme(r: ByteReader, withHash: Set<number>, bare: Set<number>, field: string): SchemeDef {
  const at = r.offset;
  const scheme = r.u16(field);
  if (bare.has(scheme)) return { scheme };
  if (withHash.has(scheme)) return { scheme, hashAlg: readHashAlg(r, `${field}.hashAlg`) };
  if (scheme === TPM_ALG.ECDAA && withHash === ECC_SCHEMES_WITH_HASH) {
    return { scheme, hashAlg: readHashAlg(r, `${field}.hashAlg`), count: r.u16(`${field}.count`) };
  }
  return unsupported(r, `${field} 0x${scheme.toString(16)}`, at);
}

/** Reads one TPMT_PUBLIC at the reader's position (RSA or ECC; other types are UNSUPPORTED_ALGORITHM). */
export function readTpmtPublic(r: ByteReader): TpmPublic {
  const typeAt = r.offset;
  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC)
    unsupported(r, `object type 0x${type.toString(16)}`, typeAt);
  const nameAlg = readHashAlg(r, 'nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', LIMITS.digest);
  const symmetric = readSymDef(r);
  if (type === TPM_ALG.RSA) {
    const scheme = readScheme(r, RSA_SCHEMES_WITH_HASH, RSA_SCHEMES_BARE, 'scheme');
    const keyBits = r.u16('keyBits');
    const exponent = r.u32('exponent');
    const modulus = r.tpm2b('unique.rsa', LIMITS.rsaKey);
    return {
      type: 'rsa',
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      keyBits,
      exponent,
      modulus,
    };
  }
  const scheme = readScheme(r, ECC_SCHEMES_WITH_HASH, new Set([TPM_ALG.NULL]), 'scheme');
  const curveId = r.u16('curveID');
  const kdf = readScheme(r, KDFS, new Set([TPM_ALG.NULL]), 'kdf');
  const x = r.tpm2b('unique.ecc.x', LIMITS.eccParameter);
  const y = r.tpm2b('unique.ecc.y', LIMITS.eccParameter);
  return { type: 'ecc', nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveId, kdf, x, y };
}

/** A whole TPMT_PUBLIC (the contents of a TPM2B_PUBLIC); trailing bytes are MALFORMED. */
export function unmarshalTpmtPublic(bytes: Uint8Array): TpmPublic {
  const r = new ByteReader(bytes, 'TPMT_PUBLIC');
  const pub = readTpmtPublic(r);
  r.expectEnd();
  return pub;
}

/** A whole TPM2B_PUBLIC (size prefix, then TPMT_PUBLIC of exactly that size), as `tpm2_createak -u` writes it. */
export function unmarshalPublic(bytes: Uint8Array): TpmPublic {
  const r = new ByteReader(bytes, 'TPM2B_PUBLIC');
  const inner = r.tpm2b('TPM2B_PUBLIC', LIMITS.public);
  r.expectEnd();
  try {
    return unmarshalTpmtPublic(inner);
  } catch (err) {
    // Offsets are reported in the caller's bytes, past the size prefix.
    if (err instanceof Tpm2Error) throw new Tpm2Error(err.code, err.message, err.offset + 2, { cause: err });
    throw err;
  }
}

/**
 * TPM2B_PUBLIC or bare TPMT_PUBLIC: a leading u16 equal to the remaining length means TPM2B (a TPMT_PUBLIC
 * starts with its type, 0x0001 or 0x0023, which never equals the rest of a usable key's length).
 */
export function tpmtPublicBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length >= 2 && ((bytes[0]! << 8) | bytes[1]!) === bytes.length - 2) return bytes.subarray(2);
  return bytes;
}

export function writeTpmtPublic(w: ByteWriter, p: TpmPublic): ByteWriter {
  w.u16(p.type === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC)
    .u16(p.nameAlg)
    .u32(p.objectAttributes)
    .tpm2b(p.authPolicy);
  w.u16(p.symmetric.algorithm);
  if (p.symmetric.algorithm !== TPM_ALG.NULL)
    w.u16(p.symmetric.keyBits ?? 0).u16(p.symmetric.mode ?? TPM_ALG.NULL);
  const scheme = (s: SchemeDef) => {
    w.u16(s.scheme);
    if (s.hashAlg !== undefined) w.u16(s.hashAlg);
    if (s.count !== undefined) w.u16(s.count);
  };
  scheme(p.scheme);
  if (p.type === 'rsa') return w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
  w.u16(p.curveId);
  scheme(p.kdf);
  return w.tpm2b(p.x).tpm2b(p.y);
}

export function marshalTpmtPublic(p: TpmPublic): Uint8Array {
  return writeTpmtPublic(new ByteWriter(), p).finish();
}

export function marshalPublic(p: TpmPublic): Uint8Array {
  return new ByteWriter().tpm2b(marshalTpmtPublic(p)).finish();
}

/** Restricted signing key: the only kind whose signature over a TPMS_ATTEST proves the TPM produced it. */
export function isRestrictedSigningKey(p: TpmPublic): boolean {
  const want = TPMA.restricted | TPMA.sign;
  return (p.objectAttributes & want) === want && (p.objectAttributes & TPMA.decrypt) === 0;
}

/** PolicySecret(TPM_RH_ENDORSEMENT): the authPolicy of the low-range TCG EK templates. */
export const TCG_EK_POLICY = fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');

/** TPMA_OBJECT of the low-range EK templates. */
export const TCG_EK_ATTRIBUTES =
  TPMA.fixedTPM |
  TPMA.fixedParent |
  TPMA.sensitiveDataOrigin |
  TPMA.adminWithPolicy |
  TPMA.restricted |
  TPMA.decrypt;

/** PolicyB for SHA-384 (EK Credential Profile 2.0, high-range templates): the authPolicy of the high-range P-384 template H-3. */
export const TCG_EK_POLICY_B_SHA384 = fromHex(
  'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
);

/** TPMA_OBJECT of the high-range EK templates: the low-range set plus userWithAuth. */
export const TCG_EK_ATTRIBUTES_HIGH = TCG_EK_ATTRIBUTES | TPMA.userWithAuth;

export type EkTemplateName = 'L-1 (RSA 2048)' | 'L-2 (ECC NIST P-256)' | 'H-3 (ECC NIST P-384)';

/**
 * Which TCG EK template (EK Credential Profile 2.0: low range L-1/L-2, high range H-3) this public area was created
 * from, ignoring the unique field of the low-range ones; undefined if none.
 */
export function ekTemplateOf(p: TpmPublic): EkTemplateName | undefined {
  if (
    p.type === 'ecc' &&
    p.nameAlg === TPM_ALG.SHA384 &&
    p.objectAttributes === TCG_EK_ATTRIBUTES_HIGH &&
    bytesEqual(p.authPolicy, TCG_EK_POLICY_B_SHA384) &&
    p.symmetric.algorithm === TPM_ALG.AES &&
    p.symmetric.keyBits === 256 &&
    p.symmetric.mode === TPM_ALG.CFB &&
    p.scheme.scheme === TPM_ALG.NULL &&
    p.curveId === TPM_ECC_CURVE.NIST_P384 &&
    p.kdf.scheme === TPM_ALG.NULL
  ) {
    return 'H-3 (ECC NIST P-384)';
  }
  const common =
    p.nameAlg === TPM_ALG.SHA256 &&
    p.objectAttributes === TCG_EK_ATTRIBUTES &&
    bytesEqual(p.authPolicy, TCG_EK_POLICY) &&
    p.symmetric.algorithm === TPM_ALG.AES &&
    p.symmetric.keyBits === 128 &&
    p.symmetric.mode === TPM_ALG.CFB &&
    p.scheme.scheme === TPM_ALG.NULL;
  if (!common) return undefined;
  if (p.type === 'rsa') return p.keyBits === 2048 && p.exponent === 0 ? 'L-1 (RSA 2048)' : undefined;
  return p.curveId === TPM_ECC_CURVE.NIST_P256 && p.kdf.scheme === TPM_ALG.NULL
    ? 'L-2 (ECC NIST P-256)'
    : undefined;
}

/**
 * The EK template itself: 'rsa' = L-1 and 'ecc' = L-2 (unique zero-filled as the profile requires),
 * 'ecc384' = H-3 (empty unique), the one swtpm_setup certifies at NV 0x01c00016 (H-4 is P-521, 0x01c00018).
 */
export function ekTemplate(type: 'rsa' | 'ecc' | 'ecc384'): TpmPublic {
  if (type === 'ecc384') {
    return {
      type: 'ecc',
      nameAlg: TPM_ALG.SHA384,
      objectAttributes: TCG_EK_ATTRIBUTES_HIGH,
      authPolicy: TCG_EK_POLICY_B_SHA384.slice(),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB },
      scheme: { scheme: TPM_ALG.NULL },
      curveId: TPM_ECC_CURVE.NIST_P384,
      kdf: { scheme: TPM_ALG.NULL },
      x: new Uint8Array(0),
      y: new Uint8Array(0),
    };
  }
  const common = {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TCG_EK_ATTRIBUTES,
    authPolicy: TCG_EK_POLICY.slice(),
    symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
    scheme: { scheme: TPM_ALG.NULL },
  };
  if (type === 'rsa') return { type, ...common, keyBits: 2048, exponent: 0, modulus: new Uint8Array(256) };
  return {
    type,
    ...common,
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
    x: new Uint8Array(32),
    y: new Uint8Array(32),
  };
}

/** Curve name and coordinate size for an ECC public area, or UNSUPPORTED_ALGORITHM. */
export function curveOf(p: EccPublic): { name: 'P-256' | 'P-384' | 'P-521'; size: number } {
  const curve = CURVE_BY_ID.get(p.curveId);
  if (curve === undefined) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `curve 0x${p.curveId.toString(16)}`);
  return curve;
}
