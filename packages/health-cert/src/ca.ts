// The health-certificate CA: an ECDSA P-256 key and its self-signed certificate.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import {
  decodeDer,
  encodeBoolean,
  encodeExplicit,
  encodeImplicit,
  encodeInteger,
  encodeNamedBits,
  encodeOctetString,
  encodeSequence,
  encodeTime,
  readBitString,
  readBoolean,
  readOctetString,
} from './der.ts';
import { HealthCertError } from './errors.ts';
import { fromPem, toPem } from './pem.ts';
import {
  bytesEqual,
  ecdsaWithSha256Algorithm,
  encodeExtension,
  encodeName,
  findExtension,
  KU_CRL_SIGN,
  KU_KEY_CERT_SIGN,
  keyIdentifier,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_COMMON_NAME,
  OID_KEY_USAGE,
  OID_ORGANIZATION,
  OID_SUBJECT_KEY_IDENTIFIER,
  parseCertificate,
  randomSerial,
  signEcdsaSha256,
} from './x509.ts';

/** A loaded CA: what issuing and revoking need. Holds the private key — keep it in process. */
export interface HealthCa {
  readonly certificateDer: Uint8Array;
  readonly certificatePem: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The CA's subject Name, DER — every certificate and CRL it signs carries it as issuer. */
  readonly subject: Uint8Array;
  /** subjectKeyIdentifier, reused as authorityKeyIdentifier in what it signs. */
  readonly keyIdentifier: Uint8Array;
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface CreateCaOptions {
  readonly commonName: string;
  /** Default 3650 days. */
  readonly validityDays?: number;
  /** Default: now, truncated to the second. */
  readonly notBefore?: Date;
  /** Default `HostGate`. */
  readonly organization?: string;
  /** An existing P-256 private key to certify; default a fresh one. */
  readonly privateKey?: KeyObject;
}

const MAX_NAME_CHARS = 64; // RFC 5280 ub-common-name

function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function checkP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new HealthCertError('CA_INVALID', `${what} must be an ECDSA P-256 key`);
  }
}

/** Creates a self-signed development CA (ECDSA P-256, basicConstraints CA with pathLen 0). */
export function createCa(options: CreateCaOptions): HealthCa {
  const { commonName } = options;
  const organization = options.organization ?? 'HostGate';
  const validityDays = options.validityDays ?? 3650;
  for (const [what, value] of [
    ['commonName', commonName],
    ['organization', organization],
  ] as const) {
    if (
      typeof value !== 'string' ||
      value.length === 0 ||
      value.length > MAX_NAME_CHARS ||
      !value.isWellFormed()
    ) {
      throw new HealthCertError('ARGUMENT_INVALID', `${what} must be 1-${MAX_NAME_CHARS} characters`);
    }
  }
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > 36500) {
    throw new HealthCertError('ARGUMENT_INVALID', 'validityDays must be an integer from 1 to 36500');
  }
  const notBefore = wholeSeconds(options.notBefore ?? new Date());
  if (Number.isNaN(notBefore.getTime()))
    throw new HealthCertError('ARGUMENT_INVALID', 'notBefore is not a date');
  const notAfter = new Date(notBefore.getTime() + validityDays * 86_400_000);
  const privateKey = options.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  if (privateKey.type !== 'private')
    throw new HealthCertError('CA_INVALID', 'the CA key must be a private key');
  checkP256(privateKey, 'the CA key');
  const publicKey = createPublicKey(privateKey);
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const ski = keyIdentifier(spki);
  const name = encodeName([
    [OID_ORGANIZATION, organization],
    [OID_COMMON_NAME, commonName],
  ]);
  const extensions = encodeSequence(
    // cA TRUE, pathLenConstraint 0: this CA signs end-entity health certificates only.
    encodeExtension(OID_BASIC_CONSTRAINTS, true, encodeSequence(encodeBoolean(true), encodeInteger(0))),
    encodeExtension(OID_KEY_USAGE, true, encodeNamedBits([KU_KEY_CERT_SIGN, KU_CRL_SIGN])),
    encodeExtension(OID_SUBJECT_KEY_IDENTIFIER, false, encodeOctetString(ski)),
    encodeExtension(OID_AUTHORITY_KEY_IDENTIFIER, false, encodeSequence(encodeImplicit(0, ski))),
  );
  const tbs = encodeSequence(
    encodeExplicit(0, encodeInteger(2)),
    encodeInteger(randomSerial((n) => new Uint8Array(randomBytes(n)))),
    ecdsaWithSha256Algorithm(),
    name,
    encodeSequence(encodeTime(notBefore), encodeTime(notAfter)),
    name,
    spki,
    encodeExplicit(3, extensions),
  );
  const certificateDer = signEcdsaSha256(tbs, privateKey);
  return {
    certificateDer,
    certificatePem: toPem('CERTIFICATE', certificateDer),
    privateKey,
    publicKey,
    subject: name,
    keyIdentifier: ski,
    commonName,
    notBefore,
    notAfter,
  };
}

export interface CaPem {
  readonly certificatePem: string;
  /** PKCS#8, unencrypted. */
  readonly privateKeyPem: string;
}

export function exportCaPem(ca: HealthCa): CaPem {
  return {
    certificatePem: ca.certificatePem,
    privateKeyPem: String(ca.privateKey.export({ type: 'pkcs8', format: 'pem' })),
  };
}

/**
 * Loads a CA from PEM: the certificate must be a v3 ECDSA P-256 CA certificate with
 * keyCertSign and cRLSign, and the private key must be its key.
 */
export function loadCa(pem: CaPem): HealthCa {
  const certificateDer = fromPem(pem.certificatePem, 'CERTIFICATE');
  const cert = parseCertificate(certificateDer);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem.privateKeyPem, format: 'pem' });
  } catch (cause) {
    throw new HealthCertError('CA_INVALID', 'the CA private key cannot be read', 0, { cause });
  }
  checkP256(privateKey, 'the CA key');
  const publicKey = createPublicKey(privateKey);
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  if (!bytesEqual(spki, cert.subjectPublicKeyInfo)) {
    throw new HealthCertError('CA_KEY_MISMATCH', 'the private key does not belong to the CA certificate');
  }
  const bc = findExtension(cert, OID_BASIC_CONSTRAINTS);
  const bcSeq = bc && decodeDer(bc.value, { baseOffset: bc.valueOffset });
  if (!bcSeq || bcSeq.children.length === 0 || !readBoolean(bcSeq.children[0], 'cA')) {
    throw new HealthCertError('CA_INVALID', 'the certificate is not a CA (basicConstraints cA)');
  }
  const ku = findExtension(cert, OID_KEY_USAGE);
  const kuBits = ku && readBitString(decodeDer(ku.value, { baseOffset: ku.valueOffset }), 'keyUsage').bytes;
  if (!kuBits || ((kuBits[0] ?? 0) & 0x06) !== 0x06) {
    throw new HealthCertError('CA_INVALID', 'the CA certificate lacks keyCertSign and cRLSign');
  }
  const skiExt = findExtension(cert, OID_SUBJECT_KEY_IDENTIFIER);
  const ski = skiExt
    ? readOctetString(decodeDer(skiExt.value, { baseOffset: skiExt.valueOffset }), 'subjectKeyIdentifier')
    : keyIdentifier(spki);
  const commonName = cert.subjectAttributes.find((a) => a.oid === OID_COMMON_NAME)?.value ?? '';
  return {
    certificateDer,
    certificatePem: toPem('CERTIFICATE', certificateDer),
    privateKey,
    publicKey,
    subject: cert.subject,
    keyIdentifier: new Uint8Array(ski),
    commonName,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
