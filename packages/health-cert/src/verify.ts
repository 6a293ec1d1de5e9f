// Verification a relying party (a scheduler, the issuer's CheckHost) does with only the CA bundle.
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { decodeDer, readOctetString } from './der.ts';
import { HealthCertError } from './errors.ts';
import type { HealthCa } from './ca.ts';
import { parseCrl, type UntrustedCrl } from './crl.ts';
import { type HealthCertInfo, parseHealthCert } from './health-cert.ts';
import { fromPemAll } from './pem.ts';
import {
  bytesEqual,
  findExtension,
  OID_SUBJECT_KEY_IDENTIFIER,
  parseCertificate,
  type UntrustedCertificate,
} from './x509.ts';

/** Trusted CA certificates: PEM text with one or more CERTIFICATE blocks, DER certificates, or a loaded CA. */
export type TrustAnchors = string | Uint8Array | readonly Uint8Array[] | HealthCa;

export interface VerifyHealthCertOptions {
  readonly trusted: TrustAnchors;
  /** Default: now. */
  readonly at?: Date;
  /** A CRL from the same CA (DER or PEM). When given it must be signed by that CA and current at `at`. */
  readonly crl?: Uint8Array | string;
  /** Tolerated difference between the issuer's clock and ours, in seconds (default 0, at most 600). */
  readonly clockSkewSeconds?: number;
}

interface Anchor {
  readonly cert: UntrustedCertificate;
  readonly key: KeyObject;
  readonly keyIdentifier: Uint8Array | null;
}

function anchorsOf(trusted: TrustAnchors): Anchor[] {
  let ders: readonly Uint8Array[];
  if (typeof trusted === 'string') ders = fromPemAll(trusted, 'CERTIFICATE');
  else if (trusted instanceof Uint8Array) ders = [trusted];
  else if (Array.isArray(trusted)) ders = trusted as readonly Uint8Array[];
  else ders = [(trusted as HealthCa).certificateDer];
  return ders.map((der) => {
    const cert = parseCertificate(der);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(cert.subjectPublicKeyInfo), format: 'der', type: 'spki' });
    } catch (cause) {
      throw new HealthCertError('CA_INVALID', 'a trusted CA key cannot be read', 0, { cause });
    }
    const ski = findExtension(cert, OID_SUBJECT_KEY_IDENTIFIER);
    const keyIdentifier = ski
      ? readOctetString(decodeDer(ski.value, { baseOffset: ski.valueOffset }), 'subjectKeyIdentifier')
      : null;
    return { cert, key, keyIdentifier };
  });
}

function signedBy(tbs: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    return verify('sha256', tbs, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false; // a signature that is not even an ECDSA-Sig-Value
  }
}

function pickAnchor(anchors: readonly Anchor[], issuer: Uint8Array, aki: Uint8Array | null): Anchor {
  const anchor = anchors.find(
    (a) =>
      bytesEqual(a.cert.subject, issuer) &&
      (aki === null || a.keyIdentifier === null || bytesEqual(aki, a.keyIdentifier)),
  );
  if (anchor === undefined) throw new HealthCertError('ISSUER_MISMATCH', 'no trusted CA issued this');
  return anchor;
}

export interface VerifyCrlOptions {
  readonly trusted: TrustAnchors;
  /** Default: now. */
  readonly at?: Date;
  /** Tolerated difference between the issuer's clock and ours, in seconds (default 0, at most 600). */
  readonly clockSkewSeconds?: number;
}

function checkedInstant(at: Date | undefined, skew: number | undefined): { t: number; skewMs: number } {
  const when = at ?? new Date();
  if (!(when instanceof Date) || Number.isNaN(when.getTime())) {
    throw new HealthCertError('ARGUMENT_INVALID', '`at` is not a date');
  }
  const s = skew ?? 0;
  if (!Number.isInteger(s) || s < 0 || s > 600) {
    throw new HealthCertError('ARGUMENT_INVALID', 'clockSkewSeconds must be an integer from 0 to 600');
  }
  return { t: when.getTime(), skewMs: s * 1000 };
}

/**
 * Verifies a CRL against the trusted CAs: issuer, signature and freshness
 * (`thisUpdate <= at <= nextUpdate`, within the clock skew). Returns its contents, now trusted.
 */
export function verifyCrl(crl: Uint8Array | string, options: VerifyCrlOptions): UntrustedCrl {
  const { t, skewMs } = checkedInstant(options.at, options.clockSkewSeconds);
  const parsed = parseCrl(crl);
  const anchor = pickAnchor(anchorsOf(options.trusted), parsed.issuer, parsed.authorityKeyIdentifier);
  if (!signedBy(parsed.tbs, parsed.signature, anchor.key)) {
    throw new HealthCertError('SIGNATURE_INVALID', 'the CRL signature does not verify');
  }
  if (parsed.thisUpdate.getTime() > t + skewMs) {
    throw new HealthCertError('CRL_STALE', `the CRL is from the future (${parsed.thisUpdate.toISOString()})`);
  }
  if (parsed.nextUpdate === null || parsed.nextUpdate.getTime() < t - skewMs) {
    throw new HealthCertError('CRL_STALE', 'the CRL is past its nextUpdate');
  }
  return parsed;
}

/**
 * Verifies a health certificate the way a scheduler would: the profile, a trusted issuer, the
 * ECDSA signature, the validity window at `at`, and (with `crl`) that it is not revoked.
 * Returns the certificate's contents, now trusted. Throws DerError or HealthCertError.
 */
export function verifyHealthCert(
  cert: Uint8Array | string,
  options: VerifyHealthCertOptions,
): HealthCertInfo {
  const { t, skewMs } = checkedInstant(options.at, options.clockSkewSeconds);
  const info = parseHealthCert(cert);
  const anchor = pickAnchor(anchorsOf(options.trusted), info.issuer, info.authorityKeyIdentifier);
  if (!signedBy(info.certificate.tbs, info.certificate.signature, anchor.key)) {
    throw new HealthCertError('SIGNATURE_INVALID', 'the certificate signature does not verify');
  }
  if (t + skewMs < info.notBefore.getTime()) {
    throw new HealthCertError('NOT_YET_VALID', `valid from ${info.notBefore.toISOString()}`);
  }
  if (t - skewMs > info.notAfter.getTime()) {
    throw new HealthCertError('EXPIRED', `expired at ${info.notAfter.toISOString()}`);
  }
  if (t + skewMs < anchor.cert.notBefore.getTime() || t - skewMs > anchor.cert.notAfter.getTime()) {
    throw new HealthCertError('EXPIRED', 'the issuing CA is outside its validity');
  }
  if (options.crl !== undefined) {
    const crl = verifyCrl(options.crl, {
      trusted: [anchor.cert.der],
      at: new Date(t),
      clockSkewSeconds: skewMs / 1000,
    });
    const entry = crl.revoked.find((r) => r.serial === info.serial);
    if (entry !== undefined) {
      throw new HealthCertError(
        'REVOKED',
        `revoked at ${entry.revokedAt.toISOString()} (${entry.reason ?? 'unknown'})`,
      );
    }
  }
  return info;
}
