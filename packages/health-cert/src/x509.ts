// The parts of RFC 5280 certificates and CRLs shared by the CA, the health profile and the CRL.
import { createHash, type KeyObject, sign } from 'node:crypto';
import {
  type DerElement,
  decodeDer,
  encodeBoolean,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeSetOf,
  encodeUtf8String,
  expectSequence,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  readString,
  readTime,
  TAG_CLASS_CONTEXT,
  TAG_CLASS_UNIVERSAL,
  TAG_IA5_STRING,
  TAG_PRINTABLE_STRING,
  TAG_SET,
  TAG_UTF8_STRING,
} from './der.ts';
import { ID_BIT_STRING, ID_SEQUENCE, tlvLength, writeHeader } from './der-writer.ts';
import { DerError, HealthCertError } from './errors.ts';

export const OID_COMMON_NAME = '2.5.4.3';
export const OID_ORGANIZATION = '2.5.4.10';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_P256 = '1.2.840.10045.3.1.7';
export const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const OID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_CRL_NUMBER = '2.5.29.20';
export const OID_CRL_REASON = '2.5.29.21';
export const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
export const OID_EXT_KEY_USAGE = '2.5.29.37';
export const OID_KP_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** RFC 5280 §4.1.2.2: conforming serials are positive and at most 20 octets. */
export const MAX_SERIAL = (1n << 159n) - 1n;
/** Largest certificate or CRL this package reads. A health certificate with an RSA-4096 key is ~1.3 KiB. */
export const MAX_CERT_BYTES = 16 * 1024;
export const MAX_CRL_BYTES = 4 * 1024 * 1024;

// keyUsage bit positions (RFC 5280 §4.2.1.3).
export const KU_DIGITAL_SIGNATURE = 0;
export const KU_KEY_CERT_SIGN = 5;
export const KU_CRL_SIGN = 6;

export interface NameAttribute {
  readonly oid: string;
  /** Decoded text for UTF8String, PrintableString and IA5String; null for other string types. */
  readonly value: string | null;
}

export function encodeName(attributes: readonly (readonly [oid: string, value: string])[]): Uint8Array {
  return encodeSequence(
    ...attributes.map(([oid, value]) => encodeSetOf(encodeSequence(encodeOid(oid), encodeUtf8String(value)))),
  );
}

export function ecdsaWithSha256Algorithm(): Uint8Array {
  // RFC 5758 §3.2: the parameters field is absent.
  return encodeSequence(encodeOid(OID_ECDSA_WITH_SHA256));
}

export function encodeExtension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? encodeSequence(encodeOid(oid), encodeBoolean(true), encodeOctetString(value))
    : encodeSequence(encodeOid(oid), encodeOctetString(value));
}

const SIGNATURE_ALGORITHM_TLV = ecdsaWithSha256Algorithm();

/** SIGNED{ToBeSigned}: the ToBeSigned, ecdsa-with-SHA256 and the signature as a BIT STRING. */
export function signEcdsaSha256(tbs: Uint8Array, privateKey: KeyObject): Uint8Array {
  // A bare KeyObject, not { key, dsaEncoding: 'der' } (DER is the default for ECDSA): node tells an
  // options object from a key by two throwing brand checks, ~5 % of the issuer's CPU per certificate.
  const signature = sign('sha256', tbs, privateKey);
  // Written in one buffer: the same bytes as encodeSequence(tbs, algorithm, encodeBitString(signature)).
  const bitString = signature.length + 1;
  const content = tbs.length + SIGNATURE_ALGORITHM_TLV.length + tlvLength(bitString);
  const out = new Uint8Array(tlvLength(content));
  let p = writeHeader(out, 0, ID_SEQUENCE, content);
  out.set(tbs, p);
  p += tbs.length;
  out.set(SIGNATURE_ALGORITHM_TLV, p);
  p += SIGNATURE_ALGORITHM_TLV.length;
  p = writeHeader(out, p, ID_BIT_STRING, bitString);
  out[p++] = 0; // no unused bits
  out.set(signature, p);
  return out;
}

/** The subjectPublicKey bits of an SPKI. */
export function spkiPublicKeyBits(spki: Uint8Array, baseOffset = 0): Uint8Array {
  const root = expectSequence(decodeDer(spki, { baseOffset }), 'SubjectPublicKeyInfo');
  if (root.children.length !== 2) {
    throw new DerError('DER_UNEXPECTED_TAG', 'SubjectPublicKeyInfo must have two fields', root.offset);
  }
  expectSequence(root.children[0], 'AlgorithmIdentifier');
  const bits = readBitString(root.children[1], 'subjectPublicKey');
  if (bits.unusedBits !== 0) {
    throw new DerError(
      'DER_BIT_STRING_INVALID',
      'subjectPublicKey has unused bits',
      root.children[1]!.offset,
    );
  }
  return bits.bytes;
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(spkiPublicKeyBits(spki)).digest());
}

export interface CertExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
  /** Offset of `value` in the certificate, for errors found while reading it. */
  readonly valueOffset: number;
}

/** A certificate's fields as read from its bytes. Nothing in it is trusted until its signature is checked. */
export interface UntrustedCertificate {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly serial: bigint;
  readonly signatureAlgorithm: string;
  readonly issuer: Uint8Array;
  readonly issuerAttributes: readonly NameAttribute[];
  readonly subject: Uint8Array;
  readonly subjectAttributes: readonly NameAttribute[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly CertExtension[];
  readonly signature: Uint8Array;
}

function structure(message: string, element: DerElement | undefined, fallback: number): HealthCertError {
  return new HealthCertError('CERT_STRUCTURE', message, element?.offset ?? fallback);
}

export function parseName(element: DerElement | undefined, what: string): NameAttribute[] {
  const name = expectSequence(element, what);
  const out: NameAttribute[] = [];
  for (const rdn of name.children) {
    if (rdn.tagClass !== TAG_CLASS_UNIVERSAL || rdn.tagNumber !== TAG_SET || rdn.children.length === 0) {
      throw new HealthCertError('CERT_NAME', `${what}: a relative name must be a non-empty SET`, rdn.offset);
    }
    for (const atv of rdn.children) {
      expectSequence(atv, `${what} attribute`);
      if (atv.children.length !== 2) {
        throw new HealthCertError('CERT_NAME', `${what}: attribute must be type and value`, atv.offset);
      }
      const oid = readOid(atv.children[0], `${what} attribute type`);
      const v = atv.children[1]!;
      const textual =
        v.tagClass === TAG_CLASS_UNIVERSAL &&
        (v.tagNumber === TAG_UTF8_STRING ||
          v.tagNumber === TAG_PRINTABLE_STRING ||
          v.tagNumber === TAG_IA5_STRING);
      const value = textual
        ? readString(v, `${what} attribute value`, [TAG_UTF8_STRING, TAG_PRINTABLE_STRING, TAG_IA5_STRING])
        : null;
      out.push({ oid, value });
    }
  }
  return out;
}

/** AlgorithmIdentifier whose parameters must be absent (ECDSA) — returns the OID. */
export function readSignatureAlgorithm(
  element: DerElement | undefined,
  what: string,
  fallback: number,
): string {
  const alg = expectSequence(element, what, fallback);
  if (alg.children.length !== 1) {
    throw new HealthCertError(
      'CERT_ALGORITHM',
      `${what}: only ecdsa-with-SHA256 without parameters`,
      alg.offset,
    );
  }
  const oid = readOid(alg.children[0], `${what} algorithm`);
  if (oid !== OID_ECDSA_WITH_SHA256) {
    throw new HealthCertError('CERT_ALGORITHM', `${what}: ${oid} is not ecdsa-with-SHA256`, alg.offset);
  }
  return oid;
}

export function readSerial(element: DerElement | undefined, fallback: number): bigint {
  if (element === undefined) throw structure('serialNumber is missing', element, fallback);
  const serial = readInteger(element, 'serialNumber');
  if (serial <= 0n || serial > MAX_SERIAL) {
    throw new HealthCertError(
      'CERT_SERIAL',
      'serialNumber must be positive and at most 20 octets',
      element.offset,
    );
  }
  return serial;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, each OID at most once (RFC 5280 §4.2). */
export function parseExtensions(element: DerElement, what: string): CertExtension[] {
  const list = expectSequence(element, what);
  if (list.children.length === 0)
    throw new HealthCertError('CERT_EXTENSION', `${what} is empty`, list.offset);
  const seen = new Set<string>();
  const out: CertExtension[] = [];
  for (const ext of list.children) {
    expectSequence(ext, 'Extension');
    const n = ext.children.length;
    if (n !== 2 && n !== 3)
      throw new HealthCertError('CERT_EXTENSION', 'Extension has a wrong field count', ext.offset);
    const oid = readOid(ext.children[0], 'extnID');
    let critical = false;
    if (n === 3) {
      critical = readBoolean(ext.children[1], 'critical');
      // DER: a DEFAULT value is never encoded.
      if (!critical)
        throw new HealthCertError('CERT_EXTENSION', `${oid}: critical FALSE is encoded`, ext.offset);
    }
    const valueElement = ext.children[n - 1];
    const value = readOctetString(valueElement, 'extnValue');
    if (seen.has(oid))
      throw new HealthCertError('CERT_EXTENSION_DUPLICATE', `${oid} appears twice`, ext.offset);
    seen.add(oid);
    out.push({ oid, critical, value, valueOffset: valueElement!.offset + valueElement!.headerLength });
  }
  return out;
}

/** Parses an X.509 v3 certificate signed with ecdsa-with-SHA256. Grants no trust. */
export function parseCertificate(der: Uint8Array): UntrustedCertificate {
  const root = expectSequence(decodeDer(der, { maxInputBytes: MAX_CERT_BYTES }), 'Certificate');
  if (root.children.length !== 3) throw structure('Certificate must have three fields', root, 0);
  const [tbsEl, algEl, sigEl] = root.children as [DerElement, DerElement, DerElement];
  const tbs = expectSequence(tbsEl, 'TBSCertificate');
  const f = tbs.children;
  const v = f[0];
  if (v === undefined || v.tagClass !== TAG_CLASS_CONTEXT || v.tagNumber !== 0 || !v.constructed) {
    throw new HealthCertError(
      'CERT_VERSION',
      'only v3 certificates (explicit version) are read',
      v?.offset ?? tbs.offset,
    );
  }
  if (v.children.length !== 1 || readInteger(v.children[0], 'version') !== 2n) {
    throw new HealthCertError('CERT_VERSION', 'version must be v3', v.offset);
  }
  const serial = readSerial(f[1], tbs.offset);
  const signatureAlgorithm = readSignatureAlgorithm(f[2], 'signature', tbs.offset);
  const issuerAttributes = parseName(f[3], 'issuer');
  const validity = expectSequence(f[4], 'validity', tbs.offset);
  if (validity.children.length !== 2)
    throw new HealthCertError('CERT_VALIDITY', 'validity needs two times', validity.offset);
  const notBefore = readTime(validity.children[0], 'notBefore');
  const notAfter = readTime(validity.children[1], 'notAfter');
  if (notAfter.getTime() < notBefore.getTime()) {
    throw new HealthCertError('CERT_VALIDITY', 'notAfter is before notBefore', validity.offset);
  }
  const subjectAttributes = parseName(f[5], 'subject');
  const spki = expectSequence(f[6], 'subjectPublicKeyInfo', tbs.offset);
  let extensions: CertExtension[] = [];
  let next = 7;
  const maybeExt = f[7];
  if (maybeExt !== undefined && maybeExt.tagClass === TAG_CLASS_CONTEXT && maybeExt.tagNumber === 3) {
    if (!maybeExt.constructed || maybeExt.children.length !== 1) {
      throw new HealthCertError('CERT_EXTENSION', 'extensions must be [3] EXPLICIT', maybeExt.offset);
    }
    extensions = parseExtensions(maybeExt.children[0]!, 'extensions');
    next = 8;
  }
  if (f.length !== next) {
    // issuerUniqueID/subjectUniqueID (RFC 5280 §4.1.2.8: CAs MUST NOT generate them) or junk.
    throw structure('unexpected field in TBSCertificate', f[next], tbs.offset);
  }
  const outerAlgorithm = readSignatureAlgorithm(algEl, 'signatureAlgorithm', root.offset);
  if (outerAlgorithm !== signatureAlgorithm) {
    throw new HealthCertError(
      'CERT_ALGORITHM',
      'signatureAlgorithm differs from tbs signature',
      algEl.offset,
    );
  }
  const sig = readBitString(sigEl, 'signatureValue');
  if (sig.unusedBits !== 0) throw structure('signatureValue has unused bits', sigEl, root.offset);
  return {
    der,
    tbs: tbs.encoded,
    serial,
    signatureAlgorithm,
    issuer: f[3]!.encoded,
    issuerAttributes,
    subject: f[5]!.encoded,
    subjectAttributes,
    notBefore,
    notAfter,
    subjectPublicKeyInfo: spki.encoded,
    extensions,
    signature: sig.bytes,
  };
}

export function findExtension(
  cert: { extensions: readonly CertExtension[] },
  oid: string,
): CertExtension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function randomSerial(randomBytes: (n: number) => Uint8Array): bigint {
  // 16 random octets with the top bit cleared: positive, 127 bits of entropy, well under 20 octets.
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v === 0n ? 1n : v;
}
