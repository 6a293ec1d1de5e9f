// The HostGate health certificate profile: issue one for a host that passed attestation, and read
// one back. Profile and extension are documented in docs/health-cert.md.
import { createPublicKey, type KeyObject, randomBytes, randomFillSync } from 'node:crypto';
import {
  concatBytes,
  type DerElement,
  decodeDer,
  decodeStringContent,
  encodeExplicit,
  encodeImplicit,
  encodeInteger,
  encodeNamedBits,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeTime,
  encodeUtf8String,
  expectSequence,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  readString,
  TAG_CLASS_CONTEXT,
  TAG_IA5_STRING,
  TAG_UTF8_STRING,
} from './der.ts';
import {
  ID_INTEGER,
  ID_OCTET_STRING,
  ID_SEQUENCE,
  ID_SET,
  ID_UTF8_STRING,
  isPlainUtcTime,
  positiveIntegerLength,
  tlvLength,
  unsignedIntegerLength,
  writeHeader,
  writePositiveInteger,
  writeUnsignedInteger,
  writeUtcTime,
  writeUtf8,
  utf8Length,
} from './der-writer.ts';
import { HealthCertError } from './errors.ts';
import type { HealthCa } from './ca.ts';
import { fromPem, toPem } from './pem.ts';
import {
  type CertExtension,
  ecdsaWithSha256Algorithm,
  encodeExtension,
  KU_DIGITAL_SIGNATURE,
  keyIdentifier,
  MAX_SERIAL,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_COMMON_NAME,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_KP_CLIENT_AUTH,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_IDENTIFIER,
  parseCertificate,
  randomSerial,
  signEcdsaSha256,
  type UntrustedCertificate,
} from './x509.ts';

/**
 * HostGate's private OID arc: 2.25.<UUID c9389883-bc8d-4549-9439-23ee1881dfcd as an integer>
 * (ITU-T X.667 — a UUID-derived OID needs no registration and collides with nobody).
 */
export const HOSTGATE_OID_ARC = '2.25.267468689140349052810954370164254171085';
/** The health attestation extension (non-critical), version 1 of its content. */
export const OID_HOSTGATE_HEALTH = `${HOSTGATE_OID_ARC}.1`;
export const HEALTH_EXTENSION_VERSION = 1;
export const HOST_URI_PREFIX = 'urn:hostgate:host:';

export const DEFAULT_VALIDITY_SECONDS = 3600;
/** Health certificates are short-lived by design; a week is far beyond any re-attestation interval. */
export const MAX_VALIDITY_SECONDS = 7 * 86_400;

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const MAX_LABEL_CHARS = 128;
const MIN_PCR_DIGEST_BYTES = 20; // SHA-1 bank
const MAX_PCR_DIGEST_BYTES = 64; // SHA-512 bank
const MAX_HEALTH_EXTENSION_BYTES = 1024;

/** What the attestation decided, carried in the health extension. */
export interface HealthAttestation {
  readonly policyClass: string;
  readonly policyVersion: number;
  readonly verdictId: string;
  /** The quote's PCR digest, lowercase hex. */
  readonly pcrDigest: string;
}

export interface IssueHealthCertOptions extends HealthAttestation {
  readonly ca: HealthCa;
  readonly hostId: string;
  /**
   * The TPM-resident key (RSA or ECC) the host proved with TPM2_Certify, as SPKI DER or a
   * KeyObject (a private one is reduced to its public half). Verifying the Certify evidence is
   * the caller's job.
   */
  readonly subjectPublicKey: Uint8Array | KeyObject;
  /** Default: now, truncated to the second. */
  readonly notBefore?: Date;
  /** Default 3600, at most 7 days. */
  readonly validitySeconds?: number;
  /** Default: 127 random bits. */
  readonly serial?: bigint;
}

export interface IssuedHealthCert {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly serial: bigint;
  readonly hostId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A health certificate's contents as read from its bytes. */
export interface HealthCertInfo extends HealthAttestation {
  readonly hostId: string;
  readonly serial: bigint;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Issuer Name, DER. */
  readonly issuer: Uint8Array;
  readonly authorityKeyIdentifier: Uint8Array | null;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly subjectPublicKey: KeyObject;
  readonly certificate: UntrustedCertificate;
}

function argument(message: string): HealthCertError {
  return new HealthCertError('ARGUMENT_INVALID', message);
}

function checkLabel(value: unknown, what: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > MAX_LABEL_CHARS ||
    !value.isWellFormed()
  ) {
    throw argument(`${what} must be 1-${MAX_LABEL_CHARS} characters`);
  }
  if (/\p{Cc}/u.test(value)) throw argument(`${what} contains control characters`);
  return value;
}

function checkHostId(value: unknown): string {
  if (typeof value !== 'string' || !HOST_ID.test(value)) {
    throw argument('hostId must be 1-64 characters of [A-Za-z0-9_.:-], starting with a letter or digit');
  }
  return value;
}

function checkPcrDigest(value: unknown): Uint8Array {
  if (typeof value !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(value)) {
    throw argument('pcrDigest must be hex');
  }
  const bytes = new Uint8Array(Buffer.from(value, 'hex'));
  if (bytes.length < MIN_PCR_DIGEST_BYTES || bytes.length > MAX_PCR_DIGEST_BYTES) {
    throw argument(`pcrDigest must be ${MIN_PCR_DIGEST_BYTES}-${MAX_PCR_DIGEST_BYTES} bytes`);
  }
  return bytes;
}

function checkPolicyVersion(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw argument('policyVersion must be a non-negative integer');
  }
  return value;
}

/** RSA of 2048 bits or more, or ECC on P-256/P-384/P-521 — what TPM 2.0 keys can be. */
function checkSubjectKey(key: KeyObject, offset: number): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  if (type === 'rsa') {
    const bits = details?.modulusLength ?? 0;
    if (bits < 2048 || bits > 16384) {
      throw new HealthCertError('SUBJECT_KEY_UNSUPPORTED', `RSA key of ${bits} bits`, offset);
    }
    return;
  }
  if (type === 'ec') {
    const curve = details?.namedCurve;
    if (curve !== 'prime256v1' && curve !== 'secp384r1' && curve !== 'secp521r1') {
      throw new HealthCertError('SUBJECT_KEY_UNSUPPORTED', `EC curve ${curve}`, offset);
    }
    return;
  }
  throw new HealthCertError('SUBJECT_KEY_UNSUPPORTED', `key type ${type}`, offset);
}

interface SubjectKey {
  key: KeyObject;
  spki: Uint8Array;
  /** The subjectKeyIdentifier extension (a SHA-1 of the key), encoded once per key. */
  skiExtension: Uint8Array;
}

/**
 * Public KeyObjects already checked, with their SPKI and subjectKeyIdentifier: a caller that keeps
 * a host's KeyObject pays the export, the check and the hash once.
 */
const checkedKeys = new WeakMap<KeyObject, SubjectKey>();

function subjectKeyFromArgument(input: Uint8Array | KeyObject): SubjectKey {
  if (!(input instanceof Uint8Array) && input !== null && typeof input === 'object') {
    const known = checkedKeys.get(input);
    if (known !== undefined) return known;
  }
  let key: KeyObject;
  try {
    if (input instanceof Uint8Array) {
      key = createPublicKey({ key: Buffer.from(input), format: 'der', type: 'spki' });
    } else if (
      input !== null &&
      typeof input === 'object' &&
      (input.type === 'public' || input.type === 'private')
    ) {
      key = input.type === 'public' ? input : createPublicKey(input);
    } else {
      throw new TypeError('not an SPKI or asymmetric KeyObject');
    }
  } catch (cause) {
    throw new HealthCertError('SUBJECT_KEY_INVALID', 'subjectPublicKey is not a public key', 0, { cause });
  }
  checkSubjectKey(key, 0);
  const spki = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
  const skiExtension = encodeExtension(
    OID_SUBJECT_KEY_IDENTIFIER,
    false,
    encodeOctetString(keyIdentifier(spki)),
  );
  const subject = { key, spki, skiExtension };
  if (key === input) checkedKeys.set(key, subject);
  return subject;
}

// What every health certificate carries the same, encoded once (the encoders copy what they embed).
const TBS_VERSION_3 = encodeExplicit(0, encodeInteger(2));
const SIGNATURE_ALGORITHM = ecdsaWithSha256Algorithm();
// An empty basicConstraints (cA FALSE) so no verifier ever treats a host key as a CA.
const EXTENSION_BASIC_CONSTRAINTS = encodeExtension(OID_BASIC_CONSTRAINTS, true, encodeSequence());
const EXTENSION_KEY_USAGE = encodeExtension(OID_KEY_USAGE, true, encodeNamedBits([KU_DIGITAL_SIGNATURE]));
const EXTENSION_EXT_KEY_USAGE = encodeExtension(
  OID_EXT_KEY_USAGE,
  false,
  encodeSequence(encodeOid(OID_KP_CLIENT_AUTH)),
);

/** The authorityKeyIdentifier extension of what a CA signs, by the CA's key identifier. */
const authorityKeyIds = new WeakMap<Uint8Array, Uint8Array>();

function authorityKeyIdExtension(ca: HealthCa): Uint8Array {
  let ext = authorityKeyIds.get(ca.keyIdentifier);
  if (ext === undefined) {
    ext = encodeExtension(
      OID_AUTHORITY_KEY_IDENTIFIER,
      false,
      encodeSequence(encodeImplicit(0, ca.keyIdentifier)),
    );
    authorityKeyIds.set(ca.keyIdentifier, ext);
  }
  return ext;
}

/**
 * Random octets for serials, drawn from a pool the CSPRNG refills 4 KiB at a time: one call into
 * OpenSSL per 256 certificates instead of one each (~1 % of the issuer's CPU).
 */
const randomPool = new Uint8Array(4096);
let randomPoolAt = randomPool.length;

function pooledRandomBytes(n: number): Uint8Array {
  if (n > randomPool.length) return new Uint8Array(randomBytes(n));
  if (randomPoolAt + n > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  const out = randomPool.slice(randomPoolAt, randomPoolAt + n);
  randomPoolAt += n;
  return out;
}

export function encodeHealthExtension(attestation: HealthAttestation): Uint8Array {
  return encodeSequence(
    encodeInteger(HEALTH_EXTENSION_VERSION),
    encodeUtf8String(checkLabel(attestation.policyClass, 'policyClass')),
    encodeInteger(checkPolicyVersion(attestation.policyVersion)),
    encodeUtf8String(checkLabel(attestation.verdictId, 'verdictId')),
    encodeOctetString(checkPcrDigest(attestation.pcrDigest)),
  );
}

/**
 * What every certificate a CA issues carries the same, encoded once per CA: the TBS part from the
 * signature algorithm through the issuer Name, and the authorityKeyIdentifier extension.
 */
interface CaParts {
  readonly subject: Uint8Array;
  readonly keyIdentifier: Uint8Array;
  /** signature AlgorithmIdentifier, then the issuer Name. */
  readonly algorithmAndIssuer: Uint8Array;
  readonly authorityKeyId: Uint8Array;
}

const caParts = new WeakMap<HealthCa, CaParts>();

function partsOf(ca: HealthCa): CaParts {
  const known = caParts.get(ca);
  if (known !== undefined && known.subject === ca.subject && known.keyIdentifier === ca.keyIdentifier) {
    return known;
  }
  const algorithmAndIssuer = new Uint8Array(SIGNATURE_ALGORITHM.length + ca.subject.length);
  algorithmAndIssuer.set(SIGNATURE_ALGORITHM, 0);
  algorithmAndIssuer.set(ca.subject, SIGNATURE_ALGORITHM.length);
  const parts = {
    subject: ca.subject,
    keyIdentifier: ca.keyIdentifier,
    algorithmAndIssuer,
    authorityKeyId: authorityKeyIdExtension(ca),
  };
  caParts.set(ca, parts);
  return parts;
}

/** The three extensions every health certificate starts with, in order. */
const FIXED_EXTENSIONS = concatBytes([
  EXTENSION_BASIC_CONSTRAINTS,
  EXTENSION_KEY_USAGE,
  EXTENSION_EXT_KEY_USAGE,
]);
/** Attribute types and fixed fields, encoded once. */
const OID_COMMON_NAME_TLV = encodeOid(OID_COMMON_NAME);
const OID_SUBJECT_ALT_NAME_TLV = encodeOid(OID_SUBJECT_ALT_NAME);
const OID_HOSTGATE_HEALTH_TLV = encodeOid(OID_HOSTGATE_HEALTH);
/** HostGateHealth's version field, INTEGER 1. */
const HEALTH_VERSION_TLV = encodeInteger(HEALTH_EXTENSION_VERSION);
const ID_IMPLICIT_URI = 0x86; // [6] IMPLICIT IA5String: GeneralName uniformResourceIdentifier
const ID_EXPLICIT_EXTENSIONS = 0xa3; // [3] EXPLICIT Extensions

/** A checked attestation, as the health extension writes it. */
interface HealthFields {
  readonly policyClass: string;
  readonly policyClassBytes: number;
  readonly policyVersion: number;
  readonly policyVersionBytes: number;
  readonly verdictId: string;
  readonly verdictIdBytes: number;
  readonly pcrDigest: Uint8Array;
  /** Content length of the HostGateHealth SEQUENCE. */
  readonly content: number;
}

function healthFields(attestation: HealthAttestation): HealthFields {
  // The checks in the order encodeHealthExtension makes them (same error for the same input).
  const policyClass = checkLabel(attestation.policyClass, 'policyClass');
  const policyVersion = checkPolicyVersion(attestation.policyVersion);
  const verdictId = checkLabel(attestation.verdictId, 'verdictId');
  const pcrDigest = checkPcrDigest(attestation.pcrDigest);
  const policyClassBytes = utf8Length(policyClass);
  const policyVersionBytes = unsignedIntegerLength(policyVersion);
  const verdictIdBytes = utf8Length(verdictId);
  return {
    policyClass,
    policyClassBytes,
    policyVersion,
    policyVersionBytes,
    verdictId,
    verdictIdBytes,
    pcrDigest,
    content:
      HEALTH_VERSION_TLV.length +
      tlvLength(policyClassBytes) +
      tlvLength(policyVersionBytes) +
      tlvLength(verdictIdBytes) +
      tlvLength(pcrDigest.length),
  };
}

function writeHealthExtensionContent(out: Uint8Array, at: number, h: HealthFields): number {
  let p = writeHeader(out, at, ID_SEQUENCE, h.content);
  out.set(HEALTH_VERSION_TLV, p);
  p += HEALTH_VERSION_TLV.length;
  p = writeUtf8(
    out,
    writeHeader(out, p, ID_UTF8_STRING, h.policyClassBytes),
    h.policyClass,
    h.policyClassBytes,
  );
  p = writeUnsignedInteger(
    out,
    writeHeader(out, p, ID_INTEGER, h.policyVersionBytes),
    h.policyVersion,
    h.policyVersionBytes,
  );
  p = writeUtf8(out, writeHeader(out, p, ID_UTF8_STRING, h.verdictIdBytes), h.verdictId, h.verdictIdBytes);
  p = writeHeader(out, p, ID_OCTET_STRING, h.pcrDigest.length);
  out.set(h.pcrDigest, p);
  return p + h.pcrDigest.length;
}

/** Validity's content: two UTCTimes when both dates allow it, else encodeTime's encodings. */
function validityTimes(notBefore: Date, notAfter: Date): Uint8Array | null {
  return isPlainUtcTime(notBefore) && isPlainUtcTime(notAfter)
    ? null
    : concatBytes([encodeTime(notBefore), encodeTime(notAfter)]);
}

/**
 * Issues a health certificate for a host whose attestation passed. The TBSCertificate is written in
 * one pass into one buffer (lengths first), from parts encoded once per CA and per subject key:
 * the same bytes the der.ts encoders build (test/cert-builder.test.ts compares them).
 */
export function issueHealthCert(options: IssueHealthCertOptions): IssuedHealthCert {
  const { ca } = options;
  const hostId = checkHostId(options.hostId);
  const health = healthFields(options);
  const validitySeconds = options.validitySeconds ?? DEFAULT_VALIDITY_SECONDS;
  if (!Number.isInteger(validitySeconds) || validitySeconds < 1 || validitySeconds > MAX_VALIDITY_SECONDS) {
    throw argument(`validitySeconds must be an integer from 1 to ${MAX_VALIDITY_SECONDS}`);
  }
  const start = options.notBefore ?? new Date();
  if (!(start instanceof Date) || Number.isNaN(start.getTime())) throw argument('notBefore is not a date');
  const notBefore = new Date(Math.floor(start.getTime() / 1000) * 1000);
  const notAfter = new Date(notBefore.getTime() + validitySeconds * 1000);
  if (notAfter.getTime() > ca.notAfter.getTime()) throw argument('the certificate would outlive its CA');
  const serial = options.serial ?? randomSerial(pooledRandomBytes);
  if (typeof serial !== 'bigint' || serial < 1n || serial > MAX_SERIAL) {
    throw argument('serial must be a positive bigint of at most 20 octets');
  }
  const { spki, skiExtension } = subjectKeyFromArgument(options.subjectPublicKey);
  const parts = partsOf(ca);
  const otherTimes = validityTimes(notBefore, notAfter);

  // Lengths, innermost first. hostId is ASCII (checkHostId): its UTF-8 length is its length.
  const serialHex = serial.toString(16);
  const serialBytes = positiveIntegerLength(serialHex);
  const validityContent = otherTimes === null ? 30 : otherTimes.length;
  const cnAttribute = OID_COMMON_NAME_TLV.length + tlvLength(hostId.length);
  const cnSet = tlvLength(cnAttribute);
  const subjectName = tlvLength(cnSet);
  const uriBytes = HOST_URI_PREFIX.length + hostId.length;
  const sanNames = tlvLength(uriBytes);
  const sanValue = tlvLength(sanNames);
  const sanExtension = OID_SUBJECT_ALT_NAME_TLV.length + tlvLength(sanValue);
  const healthValue = tlvLength(health.content);
  const healthExtension = OID_HOSTGATE_HEALTH_TLV.length + tlvLength(healthValue);
  const extensionList =
    FIXED_EXTENSIONS.length +
    tlvLength(sanExtension) +
    skiExtension.length +
    parts.authorityKeyId.length +
    tlvLength(healthExtension);
  const extensionsField = tlvLength(extensionList);
  const tbsContent =
    TBS_VERSION_3.length +
    tlvLength(serialBytes) +
    parts.algorithmAndIssuer.length +
    tlvLength(validityContent) +
    tlvLength(subjectName) +
    spki.length +
    tlvLength(extensionsField);

  const tbs = new Uint8Array(tlvLength(tbsContent));
  let p = writeHeader(tbs, 0, ID_SEQUENCE, tbsContent);
  tbs.set(TBS_VERSION_3, p);
  p += TBS_VERSION_3.length;
  p = writePositiveInteger(tbs, writeHeader(tbs, p, ID_INTEGER, serialBytes), serialHex, serialBytes);
  tbs.set(parts.algorithmAndIssuer, p);
  p += parts.algorithmAndIssuer.length;
  p = writeHeader(tbs, p, ID_SEQUENCE, validityContent);
  if (otherTimes === null) {
    p = writeUtcTime(tbs, writeUtcTime(tbs, p, notBefore), notAfter);
  } else {
    tbs.set(otherTimes, p);
    p += otherTimes.length;
  }
  // subject: SEQUENCE { SET { SEQUENCE { commonName, UTF8String hostId } } }
  p = writeHeader(tbs, p, ID_SEQUENCE, subjectName);
  p = writeHeader(tbs, p, ID_SET, cnSet);
  p = writeHeader(tbs, p, ID_SEQUENCE, cnAttribute);
  tbs.set(OID_COMMON_NAME_TLV, p);
  p += OID_COMMON_NAME_TLV.length;
  p = writeUtf8(tbs, writeHeader(tbs, p, ID_UTF8_STRING, hostId.length), hostId, hostId.length);
  tbs.set(spki, p);
  p += spki.length;
  p = writeHeader(tbs, p, ID_EXPLICIT_EXTENSIONS, extensionsField);
  p = writeHeader(tbs, p, ID_SEQUENCE, extensionList);
  tbs.set(FIXED_EXTENSIONS, p);
  p += FIXED_EXTENSIONS.length;
  // subjectAltName (non-critical): OCTET STRING { SEQUENCE { [6] urn:hostgate:host:<hostId> } }
  p = writeHeader(tbs, p, ID_SEQUENCE, sanExtension);
  tbs.set(OID_SUBJECT_ALT_NAME_TLV, p);
  p += OID_SUBJECT_ALT_NAME_TLV.length;
  p = writeHeader(tbs, p, ID_OCTET_STRING, sanValue);
  p = writeHeader(tbs, p, ID_SEQUENCE, sanNames);
  p = writeHeader(tbs, p, ID_IMPLICIT_URI, uriBytes);
  p = writeUtf8(tbs, p, HOST_URI_PREFIX, HOST_URI_PREFIX.length);
  p = writeUtf8(tbs, p, hostId, hostId.length);
  tbs.set(skiExtension, p);
  p += skiExtension.length;
  tbs.set(parts.authorityKeyId, p);
  p += parts.authorityKeyId.length;
  // The health extension (non-critical).
  p = writeHeader(tbs, p, ID_SEQUENCE, healthExtension);
  tbs.set(OID_HOSTGATE_HEALTH_TLV, p);
  p += OID_HOSTGATE_HEALTH_TLV.length;
  p = writeHealthExtensionContent(tbs, writeHeader(tbs, p, ID_OCTET_STRING, healthValue), health);
  if (p !== tbs.length) throw new Error(`health certificate writer: wrote ${p} of ${tbs.length} bytes`);

  const der = signEcdsaSha256(tbs, ca.privateKey);
  // The PEM text only when asked for (the issuer stores and publishes the DER).
  let pem: string | undefined;
  return {
    der,
    get pem() {
      pem ??= toPem('CERTIFICATE', der);
      return pem;
    },
    serial,
    hostId,
    notBefore,
    notAfter,
  };
}

// ---------------------------------------------------------------------------------------------

function profile(message: string, offset: number): HealthCertError {
  return new HealthCertError('CERT_PROFILE', message, offset);
}

function healthError(message: string, offset: number): HealthCertError {
  return new HealthCertError('CERT_HEALTH_EXTENSION', message, offset);
}

function extensionValue(ext: CertExtension, maxInputBytes = 4096): DerElement {
  return decodeDer(ext.value, { baseOffset: ext.valueOffset, maxInputBytes, maxElements: 256 });
}

function readLabel(element: DerElement | undefined, what: string, fallback: number): string {
  if (element === undefined) throw healthError(`${what} is missing`, fallback);
  const value = readString(element, what, [TAG_UTF8_STRING]);
  if (value.length === 0 || value.length > MAX_LABEL_CHARS || /\p{Cc}/u.test(value)) {
    throw healthError(`${what} must be 1-${MAX_LABEL_CHARS} printable characters`, element.offset);
  }
  return value;
}

/** Reads the health extension's content (its extnValue). */
export function parseHealthExtension(value: Uint8Array, baseOffset = 0): HealthAttestation {
  const seq = expectSequence(
    decodeDer(value, { baseOffset, maxInputBytes: MAX_HEALTH_EXTENSION_BYTES, maxElements: 16 }),
    'HostGateHealth',
  );
  const f = seq.children;
  if (f.length < 1) throw healthError('HostGateHealth is empty', seq.offset);
  const version = readInteger(f[0], 'HostGateHealth version');
  if (version !== BigInt(HEALTH_EXTENSION_VERSION)) {
    throw healthError(`HostGateHealth version ${version} is not supported`, f[0]!.offset);
  }
  if (f.length !== 5) throw healthError('HostGateHealth v1 has five fields', seq.offset);
  const policyClass = readLabel(f[1], 'policyClass', seq.offset);
  const policyVersionValue = readInteger(f[2], 'policyVersion');
  if (policyVersionValue < 0n || policyVersionValue > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw healthError('policyVersion is out of range', f[2]!.offset);
  }
  const verdictId = readLabel(f[3], 'verdictId', seq.offset);
  const digest = readOctetString(f[4], 'pcrDigest');
  if (digest.length < MIN_PCR_DIGEST_BYTES || digest.length > MAX_PCR_DIGEST_BYTES) {
    throw healthError(`pcrDigest of ${digest.length} bytes`, f[4]!.offset);
  }
  return {
    policyClass,
    policyVersion: Number(policyVersionValue),
    verdictId,
    pcrDigest: Buffer.from(digest).toString('hex'),
  };
}

function readHostUri(ext: CertExtension): string {
  const names = expectSequence(extensionValue(ext), 'subjectAltName');
  const uris = names.children.filter((n) => n.tagClass === TAG_CLASS_CONTEXT && n.tagNumber === 6);
  if (uris.length !== 1 || uris[0]!.constructed) {
    throw profile('subjectAltName must hold exactly one URI', names.offset);
  }
  const uri = uris[0]!;
  return decodeStringContent(TAG_IA5_STRING, uri.content, uri.offset + uri.headerLength);
}

function readAuthorityKeyId(ext: CertExtension): Uint8Array | null {
  const aki = expectSequence(extensionValue(ext), 'authorityKeyIdentifier');
  const keyId = aki.children.find((c) => c.tagClass === TAG_CLASS_CONTEXT && c.tagNumber === 0);
  if (keyId === undefined) return null;
  if (keyId.constructed) throw profile('keyIdentifier must be primitive', keyId.offset);
  return keyId.content;
}

function checkKeyUsage(ext: CertExtension): void {
  const ku = readBitString(extensionValue(ext), 'keyUsage');
  if (((ku.bytes[0] ?? 0) & 0x80) === 0) throw profile('keyUsage lacks digitalSignature', ext.valueOffset);
}

function checkExtKeyUsage(ext: CertExtension): void {
  const seq = expectSequence(extensionValue(ext), 'extKeyUsage');
  const purposes = seq.children.map((c) => readOid(c, 'KeyPurposeId'));
  if (!purposes.includes(OID_KP_CLIENT_AUTH)) throw profile('extKeyUsage lacks clientAuth', seq.offset);
}

function checkNotCa(ext: CertExtension): void {
  const seq = expectSequence(extensionValue(ext), 'basicConstraints');
  if (seq.children.length > 0 && seq.children[0]!.tagNumber === 1 && readBoolean(seq.children[0], 'cA')) {
    throw profile('a health certificate must not be a CA', seq.offset);
  }
}

/**
 * Reads a health certificate (DER, or PEM text). Checks structure and profile only — it grants
 * no trust; use verifyHealthCert for signature, validity and revocation.
 * Throws DerError or HealthCertError, both carrying `code` and `offset`.
 */
export function parseHealthCert(input: Uint8Array | string): HealthCertInfo {
  const der = typeof input === 'string' ? fromPem(input, 'CERTIFICATE') : input;
  const certificate = parseCertificate(der);
  // Fields of `certificate` are views into `der`, so their position there locates an error.
  const at = (view: Uint8Array) => view.byteOffset - der.byteOffset;
  const subject = certificate.subjectAttributes;
  if (subject.length !== 1 || subject[0]!.oid !== OID_COMMON_NAME || subject[0]!.value === null) {
    throw new HealthCertError('CERT_NAME', 'subject must be exactly one commonName', at(certificate.subject));
  }
  const hostId = subject[0]!.value;
  if (!HOST_ID.test(hostId))
    throw new HealthCertError('CERT_NAME', 'subject commonName is not a host id', at(certificate.subject));

  let attestation: HealthAttestation | undefined;
  let hostUri: string | undefined;
  let authorityKeyIdentifier: Uint8Array | null = null;
  let keyUsageSeen = false;
  let extKeyUsageSeen = false;
  for (const ext of certificate.extensions) {
    switch (ext.oid) {
      case OID_HOSTGATE_HEALTH:
        attestation = parseHealthExtension(ext.value, ext.valueOffset);
        break;
      case OID_SUBJECT_ALT_NAME:
        hostUri = readHostUri(ext);
        break;
      case OID_AUTHORITY_KEY_IDENTIFIER:
        authorityKeyIdentifier = readAuthorityKeyId(ext);
        break;
      case OID_KEY_USAGE:
        checkKeyUsage(ext);
        keyUsageSeen = true;
        break;
      case OID_EXT_KEY_USAGE:
        checkExtKeyUsage(ext);
        extKeyUsageSeen = true;
        break;
      case OID_BASIC_CONSTRAINTS:
        checkNotCa(ext);
        break;
      case OID_SUBJECT_KEY_IDENTIFIER:
        readOctetString(extensionValue(ext), 'subjectKeyIdentifier');
        break;
      default:
        if (ext.critical) {
          throw new HealthCertError(
            'CERT_EXTENSION_CRITICAL_UNKNOWN',
            `unknown critical extension ${ext.oid}`,
            ext.valueOffset,
          );
        }
    }
  }
  if (attestation === undefined) throw healthError('the HostGate health extension is missing', 0);
  if (hostUri !== HOST_URI_PREFIX + hostId)
    throw profile(`subjectAltName URI must be ${HOST_URI_PREFIX}${hostId}`, 0);
  if (!keyUsageSeen) throw profile('keyUsage is missing', 0);
  if (!extKeyUsageSeen) throw profile('extKeyUsage is missing', 0);

  let subjectPublicKey: KeyObject;
  const spkiOffset = at(certificate.subjectPublicKeyInfo);
  try {
    subjectPublicKey = createPublicKey({
      key: Buffer.from(certificate.subjectPublicKeyInfo),
      format: 'der',
      type: 'spki',
    });
  } catch (cause) {
    throw new HealthCertError('SUBJECT_KEY_INVALID', 'subjectPublicKeyInfo is not a usable key', spkiOffset, {
      cause,
    });
  }
  checkSubjectKey(subjectPublicKey, spkiOffset);
  return {
    ...attestation,
    hostId,
    serial: certificate.serial,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    issuer: certificate.issuer,
    authorityKeyIdentifier,
    subjectPublicKeyInfo: certificate.subjectPublicKeyInfo,
    subjectPublicKey,
    certificate,
  };
}
