// EK certificates (TCG EK Credential Profile 2.0): read from NV, chained to configured roots, and matched
// against the EK the TPM actually presents. X.509 parsing and signature checks are node:crypto's.
import { type JsonWebKey, type KeyObject, X509Certificate } from 'node:crypto';
import { bytesEqual, concatBytes } from './bytes.ts';
import { Tpm2Error } from './errors.ts';
import { curveOf, type TpmPublic, tpmtPublicBytes, unmarshalTpmtPublic } from './public.ts';

/**
 * NV indices of EK certificates (EK Credential Profile 2.0 §2.2.1.5): low-range RSA 2048 and ECC P-256, and
 * the high-range ECC P-384 one (template H-3), which is where swtpm_setup stores its ECC EK certificate.
 */
export const EK_CERT_NV_INDEX = { rsa: 0x01c00002, ecc: 0x01c0000a, ecc384: 0x01c00016 } as const;

/** tcg-kp-EKCertificate, the extended key usage EK certificates carry. */
export const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';

/** An X.509 EK certificate is capped: NV indices of real TPMs hold at most a few KiB. */
const MAX_CERT_BYTES = 16 * 1024;

export interface EkCertificate {
  der: Uint8Array;
  x509: X509Certificate;
  publicKey: KeyObject;
  keyType: 'rsa' | 'ecc';
  /** From the subjectAltName directoryName (tcg-at-tpmManufacturer / tpmModel / tpmVersion), when present. */
  tpmManufacturer?: string;
  tpmModel?: string;
  tpmVersion?: string;
  /** Whether the extended key usage names tcg-kp-EKCertificate. */
  hasEkUsage: boolean;
}

/**
 * The DER certificate at the start of `bytes`: NV indices are often larger than the certificate and padded,
 * so the length comes from the outer SEQUENCE header (checked against what is there).
 */
export function derCertificateBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 2 || bytes[0] !== 0x30) throw new Tpm2Error('CERT_MALFORMED', 'not a DER SEQUENCE', 0);
  const first = bytes[1]!;
  let length: number;
  let header: number;
  if (first < 0x80) {
    length = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw new Tpm2Error('CERT_MALFORMED', `DER length of ${n} octets`, 1);
    if (bytes.length < 2 + n) throw new Tpm2Error('CERT_MALFORMED', 'DER length truncated', bytes.length);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[2 + i]!;
    header = 2 + n;
  }
  if (header + length > MAX_CERT_BYTES)
    throw new Tpm2Error('CERT_MALFORMED', `certificate of ${header + length} bytes`, 1);
  if (header + length > bytes.length) {
    throw new Tpm2Error(
      'CERT_MALFORMED',
      `certificate needs ${header + length} bytes, ${bytes.length} present`,
      1,
    );
  }
  return bytes.subarray(0, header + length);
}

function sanAttribute(san: string | undefined, name: string): string | undefined {
  if (san === undefined) return undefined;
  const m = new RegExp(`${name}=([^,"\\\\]*)`).exec(san);
  return m?.[1];
}

/** Parses an EK certificate from DER (trailing NV padding ignored) or PEM. */
export function parseEkCertificate(input: Uint8Array | string): EkCertificate {
  const der = typeof input === 'string' ? undefined : derCertificateBytes(input);
  let x509: X509Certificate;
  let publicKey: KeyObject;
  let san: string | undefined;
  let usages: string[];
  try {
    x509 = new X509Certificate(der ?? input);
    // The getters parse lazily and can throw on odd certificates (e.g. an unknown key algorithm).
    publicKey = x509.publicKey;
    san = x509.subjectAltName;
    usages = x509.keyUsage ?? [];
  } catch (err) {
    throw new Tpm2Error('CERT_MALFORMED', `not a usable X.509 certificate: ${(err as Error).message}`, 0, {
      cause: err,
    });
  }
  const type = publicKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec')
    throw new Tpm2Error('CERT_MALFORMED', `EK certificate holds a ${type} key`);
  const cert: EkCertificate = {
    der: der ?? new Uint8Array(x509.raw),
    x509,
    publicKey,
    keyType: type === 'rsa' ? 'rsa' : 'ecc',
    hasEkUsage: usages.includes(TCG_KP_EK_CERTIFICATE),
  };
  const manufacturer = sanAttribute(san, 'tcg-at-tpmManufacturer');
  const model = sanAttribute(san, 'tcg-at-tpmModel');
  const version = sanAttribute(san, 'tcg-at-tpmVersion');
  if (manufacturer !== undefined) cert.tpmManufacturer = manufacturer;
  if (model !== undefined) cert.tpmModel = model;
  if (version !== undefined) cert.tpmVersion = version;
  return cert;
}

function toX509(pemOrDer: string | Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(pemOrDer);
  } catch (err) {
    throw new Tpm2Error('CERT_MALFORMED', `${what} is not an X.509 certificate`, 0, { cause: err });
  }
}

function checkValidity(cert: X509Certificate, at: Date, what: string): void {
  if (at < new Date(cert.validFrom) || at > new Date(cert.validTo)) {
    throw new Tpm2Error(
      'CERT_CHAIN_INVALID',
      `${what} (${cert.subject}) is not valid at ${at.toISOString()}`,
    );
  }
}

export interface ChainOptions {
  /** Trust anchors (PEM or DER), e.g. the TPM vendors' EK root CAs. */
  roots: (string | Uint8Array)[];
  /** Intermediate CA certificates that may appear between the EK certificate and a root. */
  intermediates?: (string | Uint8Array)[];
  /** Validity is checked at this time (default now). */
  at?: Date;
}

/** Builds and checks the chain EK cert → intermediates → root; returns it (leaf first). */
export function verifyEkCertificateChain(cert: EkCertificate, opts: ChainOptions): X509Certificate[] {
  try {
    return buildChain(cert, opts);
  } catch (err) {
    if (err instanceof Tpm2Error) throw err;
    // node:crypto throws on keys it cannot use for a check: the chain does not verify.
    throw new Tpm2Error('CERT_CHAIN_INVALID', `chain check failed: ${(err as Error).message}`, 0, {
      cause: err,
    });
  }
}

function buildChain(cert: EkCertificate, opts: ChainOptions): X509Certificate[] {
  const at = opts.at ?? new Date();
  const roots = opts.roots.map((r) => toX509(r, 'root'));
  const intermediates = (opts.intermediates ?? []).map((c) => toX509(c, 'intermediate'));
  if (roots.length === 0) throw new Tpm2Error('CERT_CHAIN_INVALID', 'no trusted roots configured');
  const chain = [cert.x509];
  checkValidity(cert.x509, at, 'EK certificate');
  let current = cert.x509;
  for (let depth = 0; depth < 8; depth++) {
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root !== undefined) {
      checkValidity(root, at, 'root');
      chain.push(root);
      return chain;
    }
    const next = intermediates.find(
      (c) => c.ca && !chain.includes(c) && current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (next === undefined) {
      throw new Tpm2Error(
        'CERT_CHAIN_INVALID',
        `no trusted issuer for '${current.subject}' (issuer '${current.issuer}')`,
      );
    }
    checkValidity(next, at, 'intermediate');
    chain.push(next);
    current = next;
  }
  throw new Tpm2Error('CERT_CHAIN_INVALID', 'chain longer than 8 certificates');
}

const fromB64 = (s: string | undefined) => new Uint8Array(Buffer.from(s ?? '', 'base64url'));
const stripZeros = (b: Uint8Array) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/** Throws CERT_KEY_MISMATCH unless the certificate's public key is the key in the EK's TPMT_PUBLIC. */
export function checkEkCertificateKey(cert: EkCertificate, ekPublic: Uint8Array | TpmPublic): TpmPublic {
  const ek = ekPublic instanceof Uint8Array ? unmarshalTpmtPublic(tpmtPublicBytes(ekPublic)) : ekPublic;
  let jwk: JsonWebKey;
  try {
    jwk = cert.publicKey.export({ format: 'jwk' });
  } catch (err) {
    throw new Tpm2Error(
      'CERT_MALFORMED',
      `certificate key cannot be compared: ${(err as Error).message}`,
      0,
      { cause: err },
    );
  }
  let same: boolean;
  if (ek.type === 'rsa') {
    const e = new Uint8Array(4);
    new DataView(e.buffer).setUint32(0, ek.exponent === 0 ? 65537 : ek.exponent);
    same =
      jwk.kty === 'RSA' &&
      bytesEqual(stripZeros(fromB64(jwk.n)), stripZeros(ek.modulus)) &&
      bytesEqual(stripZeros(fromB64(jwk.e)), stripZeros(e));
  } else {
    const curve = curveOf(ek);
    const pad = (b: Uint8Array) => concatBytes(new Uint8Array(Math.max(0, curve.size - b.length)), b);
    same =
      jwk.kty === 'EC' &&
      jwk.crv === curve.name &&
      bytesEqual(fromB64(jwk.x), pad(ek.x)) &&
      bytesEqual(fromB64(jwk.y), pad(ek.y));
  }
  if (!same) throw new Tpm2Error('CERT_KEY_MISMATCH', "the certificate's key is not the EK's public key");
  return ek;
}

/** Parse, chain to the roots, and match the EK: the three checks enrollment needs, in that order. */
export function verifyEkCertificate(
  opts: ChainOptions & { certificate: Uint8Array | string; ekPublic: Uint8Array | TpmPublic },
): {
  certificate: EkCertificate;
  chain: X509Certificate[];
  ekPublic: TpmPublic;
} {
  const certificate = parseEkCertificate(opts.certificate);
  const chain = verifyEkCertificateChain(certificate, opts);
  const ekPublic = checkEkCertificateKey(certificate, opts.ekPublic);
  return { certificate, chain, ekPublic };
}
