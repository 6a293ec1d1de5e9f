// The only module of the verifier half that touches node:crypto: hashing, key import and signature checks.
// A browser build swaps this file for a WebCrypto one (which would make verification async).
import { createHash, createPublicKey, type JsonWebKey, type KeyObject, constants, verify } from 'node:crypto';
import { concatBytes } from './bytes.ts';
import { HASH_BY_ALG, TPM_ALG } from './constants.ts';
import { Tpm2Error } from './errors.ts';
import { curveOf, marshalTpmtPublic, type TpmPublic } from './public.ts';
import type { TpmtSignature } from './signature.ts';

export function hashName(alg: number): 'sha1' | 'sha256' | 'sha384' | 'sha512' {
  const info = HASH_BY_ALG.get(alg);
  if (info === undefined) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `hash 0x${alg.toString(16)}`);
  return info.name;
}

export function digest(alg: number, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(hashName(alg));
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** An incremental hash: update() with each part, then digest(). */
export function digester(alg: number): { update(part: Uint8Array): void; digest(): Uint8Array } {
  const h = createHash(hashName(alg));
  return {
    update: (part) => {
      h.update(part);
    },
    digest: () => new Uint8Array(h.digest()),
  };
}

/** TPM object name (Part 1 §16): nameAlg ‖ H_nameAlg(marshaled TPMT_PUBLIC). */
export function objectName(pub: Uint8Array | TpmPublic): Uint8Array {
  const bytes = pub instanceof Uint8Array ? pub : marshalTpmtPublic(pub);
  if (bytes.length < 4)
    throw new Tpm2Error('MALFORMED', 'TPMT_PUBLIC shorter than its type and nameAlg', bytes.length);
  const nameAlg = (bytes[2]! << 8) | bytes[3]!;
  if (!HASH_BY_ALG.has(nameAlg))
    throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `nameAlg 0x${nameAlg.toString(16)}`, 2);
  return concatBytes(bytes.subarray(2, 4), digest(nameAlg, bytes));
}

/** A public key ready for signature checks. */
export interface VerifyKey {
  kind: 'rsa' | 'ecc';
  keyObject: KeyObject;
  /** Modulus bits (RSA) or curve coordinate bytes (ECC). */
  bits: number;
  /** ECC coordinate size in bytes; 0 for RSA. */
  coordinateSize: number;
}

const b64url = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

const SUPPORTED_RSA_BITS = new Set([2048, 3072, 4096]);
const SUPPORTED_CURVES = new Set(['P-256', 'P-384', 'P-521']);

/** Imports an RSA or ECC TPMT_PUBLIC as a verification key (MALFORMED when its unique field is not a key). */
export function keyFromTpmPublic(p: TpmPublic): VerifyKey {
  if (p.type === 'rsa') {
    if (!SUPPORTED_RSA_BITS.has(p.keyBits)) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `RSA-${p.keyBits}`);
    if (p.modulus.length * 8 !== p.keyBits || (p.modulus[0]! & 0x80) === 0) {
      throw new Tpm2Error(
        'MALFORMED',
        `RSA modulus of ${p.modulus.length} bytes is not a ${p.keyBits}-bit key`,
      );
    }
    const e = new Uint8Array(4);
    new DataView(e.buffer).setUint32(0, p.exponent === 0 ? 65537 : p.exponent);
    return fromJwk({ kty: 'RSA', n: b64url(p.modulus), e: b64url(stripZeros(e)) });
  }
  const curve = curveOf(p);
  if (p.x.length > curve.size || p.y.length > curve.size) {
    throw new Tpm2Error('MALFORMED', `ECC point coordinates longer than ${curve.name}`);
  }
  const pad = (b: Uint8Array) => concatBytes(new Uint8Array(curve.size - b.length), b);
  return fromJwk({ kty: 'EC', crv: curve.name, x: b64url(pad(p.x)), y: b64url(pad(p.y)) });
}

function describe(keyObject: KeyObject): VerifyKey {
  const d = keyObject.asymmetricKeyDetails ?? {};
  if (keyObject.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (!SUPPORTED_RSA_BITS.has(bits)) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `RSA-${bits}`);
    return { kind: 'rsa', keyObject, bits, coordinateSize: 0 };
  }
  if (keyObject.asymmetricKeyType === 'ec') {
    const size = { prime256v1: 32, secp384r1: 48, secp521r1: 66 }[d.namedCurve ?? ''];
    if (size === undefined) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `curve ${d.namedCurve}`);
    return { kind: 'ecc', keyObject, bits: size * 8, coordinateSize: size };
  }
  throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `key type ${keyObject.asymmetricKeyType}`);
}

export function fromJwk(jwk: JsonWebKey): VerifyKey {
  if (jwk.kty === 'EC' && !SUPPORTED_CURVES.has(String(jwk.crv))) {
    throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `curve ${String(jwk.crv)}`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw new Tpm2Error('MALFORMED', `not a usable public key: ${(err as Error).message}`, 0, { cause: err });
  }
  return describe(keyObject);
}

/** A SubjectPublicKeyInfo PEM (`tpm2_createak -f pem`, `openssl pkey -pubout`). */
export function keyFromPem(pem: string): VerifyKey {
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Tpm2Error('MALFORMED', `not a PEM public key: ${(err as Error).message}`, 0, { cause: err });
  }
  return describe(keyObject);
}

export function keyFromKeyObject(keyObject: KeyObject): VerifyKey {
  return describe(keyObject.type === 'private' ? createPublicKey(keyObject) : keyObject);
}

/**
 * Checks a TPMT_SIGNATURE over `message` (RSASSA, RSAPSS, ECDSA). Throws SCHEME_MISMATCH when the
 * signature's algorithm does not fit the key, UNSUPPORTED_ALGORITHM for other schemes; returns validity.
 */
export function verifyTpmSignature(key: VerifyKey, sig: TpmtSignature, message: Uint8Array): boolean {
  if (sig.kind === 'rsa') {
    if (key.kind !== 'rsa') throw new Tpm2Error('SCHEME_MISMATCH', 'RSA signature for an ECC key');
    if (sig.sig.length !== key.bits / 8) return false;
    try {
      // A bare KeyObject means PKCS#1 v1.5, and is markedly faster in node than an options object.
      if (sig.sigAlg === TPM_ALG.RSASSA)
        return verify(hashName(sig.hashAlg), message, key.keyObject, sig.sig);
      const options = {
        key: key.keyObject,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_AUTO,
      };
      return verify(hashName(sig.hashAlg), message, options, sig.sig);
    } catch {
      return false;
    }
  }
  if (sig.kind === 'ecc') {
    if (sig.sigAlg !== TPM_ALG.ECDSA) {
      throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `signature scheme 0x${sig.sigAlg.toString(16)}`);
    }
    if (key.kind !== 'ecc') throw new Tpm2Error('SCHEME_MISMATCH', 'ECDSA signature for an RSA key');
    const r = stripZeros(sig.r);
    const s = stripZeros(sig.s);
    if (r.length > key.coordinateSize || s.length > key.coordinateSize) return false;
    try {
      // DER rather than dsaEncoding: 'ieee-p1363': node verifies DER without an options object, which is faster.
      return verify(hashName(sig.hashAlg), message, key.keyObject, ecdsaDer(r, s));
    } catch {
      return false;
    }
  }
  throw new Tpm2Error(
    'UNSUPPORTED_ALGORITHM',
    `signature algorithm 0x${sig.sigAlg.toString(16)} cannot attest`,
  );
}

/** ASN.1 DER of ECDSA-Sig-Value { r INTEGER, s INTEGER } from unsigned big-endian r and s (each ≤ 66 bytes). */
function ecdsaDer(r: Uint8Array, s: Uint8Array): Uint8Array {
  const rPad = (r[0]! & 0x80) !== 0 ? 1 : 0;
  const sPad = (s[0]! & 0x80) !== 0 ? 1 : 0;
  const body = 2 + rPad + r.length + 2 + sPad + s.length;
  const long = body >= 0x80;
  const out = new Uint8Array((long ? 3 : 2) + body);
  let at = 0;
  out[at++] = 0x30;
  if (long) out[at++] = 0x81;
  out[at++] = body;
  out[at++] = 0x02;
  out[at++] = r.length + rPad;
  at += rPad;
  out.set(r, at);
  at += r.length;
  out[at++] = 0x02;
  out[at++] = s.length + sPad;
  at += sPad;
  out.set(s, at);
  return out;
}
