// X.509 v2 CRLs (RFC 5280 §5) signed by the health CA.
import {
  type DerElement,
  decodeDer,
  encodeEnumerated,
  encodeExplicit,
  encodeImplicit,
  encodeInteger,
  encodeSequence,
  encodeTime,
  expectSequence,
  readBitString,
  readInteger,
  readTime,
  TAG_CLASS_CONTEXT,
  TAG_CLASS_UNIVERSAL,
  TAG_ENUMERATED,
  TAG_GENERALIZED_TIME,
  TAG_SEQUENCE,
  TAG_UTC_TIME,
} from './der.ts';
import { HealthCertError } from './errors.ts';
import type { HealthCa } from './ca.ts';
import { fromPem, toPem } from './pem.ts';
import {
  type CertExtension,
  ecdsaWithSha256Algorithm,
  encodeExtension,
  MAX_CRL_BYTES,
  MAX_SERIAL,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_CRL_NUMBER,
  OID_CRL_REASON,
  parseExtensions,
  parseName,
  readSerial,
  readSignatureAlgorithm,
  signEcdsaSha256,
} from './x509.ts';

/** CRLReason (RFC 5280 §5.3.1); `removeFromCRL` only belongs in delta CRLs and is left out. */
export const CRL_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type CrlReason = keyof typeof CRL_REASONS;

export interface RevokedEntry {
  readonly serial: bigint;
  readonly revokedAt: Date;
  /** Default `unspecified`, which RFC 5280 says to encode by leaving the reasonCode out. */
  readonly reason?: CrlReason;
}

export interface CreateCrlOptions {
  readonly ca: HealthCa;
  readonly revoked: readonly RevokedEntry[];
  /** Default: now, truncated to the second. */
  readonly thisUpdate?: Date;
  readonly nextUpdate: Date;
  /** Must grow with every CRL the CA issues. Default: thisUpdate in whole seconds since the epoch. */
  readonly crlNumber?: bigint;
}

export interface IssuedCrl {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

/**
 * Most entries one CRL holds. Health certificates live an hour, so a CRL only needs entries for
 * certificates still inside their validity; the cap also bounds what a hostile CRL can allocate.
 */
export const MAX_CRL_ENTRIES = 50_000;
/** DER elements per revoked entry with a reasonCode: entry, serial, date, extensions, extension, OID, value. */
const ELEMENTS_PER_ENTRY = 7;

function argument(message: string): HealthCertError {
  return new HealthCertError('ARGUMENT_INVALID', message);
}

function wholeSeconds(date: Date, what: string): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw argument(`${what} is not a date`);
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

export function createCrl(options: CreateCrlOptions): IssuedCrl {
  const { ca } = options;
  const thisUpdate = wholeSeconds(options.thisUpdate ?? new Date(), 'thisUpdate');
  const nextUpdate = wholeSeconds(options.nextUpdate, 'nextUpdate');
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw argument('nextUpdate must be after thisUpdate');
  const crlNumber = options.crlNumber ?? BigInt(thisUpdate.getTime() / 1000);
  // RFC 5280 §5.2.3: a non-negative integer of at most 20 octets.
  if (typeof crlNumber !== 'bigint' || crlNumber < 0n || crlNumber > MAX_SERIAL) {
    throw argument('crlNumber must be a non-negative bigint of at most 20 octets');
  }
  if (options.revoked.length > MAX_CRL_ENTRIES)
    throw argument(`more than ${MAX_CRL_ENTRIES} revoked entries`);
  const seen = new Set<bigint>();
  const entries = options.revoked.map((entry) => {
    if (typeof entry.serial !== 'bigint' || entry.serial < 1n || entry.serial > MAX_SERIAL) {
      throw argument('a revoked serial must be a positive bigint of at most 20 octets');
    }
    if (seen.has(entry.serial)) throw argument(`serial ${entry.serial} is listed twice`);
    seen.add(entry.serial);
    const reason = entry.reason ?? 'unspecified';
    const code = CRL_REASONS[reason];
    if (code === undefined) throw argument(`unknown revocation reason ${String(reason)}`);
    const fields = [encodeInteger(entry.serial), encodeTime(wholeSeconds(entry.revokedAt, 'revokedAt'))];
    if (code !== 0)
      fields.push(encodeSequence(encodeExtension(OID_CRL_REASON, false, encodeEnumerated(code))));
    return encodeSequence(...fields);
  });
  const tbsFields = [
    encodeInteger(1), // v2
    ecdsaWithSha256Algorithm(),
    ca.subject,
    encodeTime(thisUpdate),
    encodeTime(nextUpdate),
  ];
  // RFC 5280 §5.1.2.6: when there are no revoked certificates the list is absent, not empty.
  if (entries.length > 0) tbsFields.push(encodeSequence(...entries));
  tbsFields.push(
    encodeExplicit(
      0,
      encodeSequence(
        encodeExtension(
          OID_AUTHORITY_KEY_IDENTIFIER,
          false,
          encodeSequence(encodeImplicit(0, ca.keyIdentifier)),
        ),
        encodeExtension(OID_CRL_NUMBER, false, encodeInteger(crlNumber)),
      ),
    ),
  );
  const der = signEcdsaSha256(encodeSequence(...tbsFields), ca.privateKey);
  return { der, pem: toPem('X509 CRL', der), crlNumber, thisUpdate, nextUpdate };
}

export interface UntrustedRevokedEntry {
  readonly serial: bigint;
  readonly revokedAt: Date;
  /** The reasonCode, or `unspecified` when absent; null for a code outside RFC 5280. */
  readonly reason: CrlReason | null;
}

/** A CRL's fields as read from its bytes. Nothing in it is trusted until its signature is checked. */
export interface UntrustedCrl {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly issuer: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | null;
  readonly crlNumber: bigint | null;
  readonly authorityKeyIdentifier: Uint8Array | null;
  readonly revoked: readonly UntrustedRevokedEntry[];
  readonly signature: Uint8Array;
}

function crlError(message: string, offset: number): HealthCertError {
  return new HealthCertError('CRL_STRUCTURE', message, offset);
}

const REASON_BY_CODE = new Map<number, CrlReason>(
  Object.entries(CRL_REASONS).map(([name, code]) => [code, name as CrlReason]),
);

function isTime(e: DerElement | undefined): boolean {
  return (
    e !== undefined &&
    e.tagClass === TAG_CLASS_UNIVERSAL &&
    (e.tagNumber === TAG_UTC_TIME || e.tagNumber === TAG_GENERALIZED_TIME)
  );
}

function extensionRoot(ext: CertExtension): DerElement {
  return decodeDer(ext.value, { baseOffset: ext.valueOffset, maxInputBytes: 4096, maxElements: 64 });
}

/** Parses a v2 CRL signed with ecdsa-with-SHA256 (DER or PEM). Grants no trust. */
export function parseCrl(input: Uint8Array | string): UntrustedCrl {
  const der = typeof input === 'string' ? fromPem(input, 'X509 CRL') : input;
  const root = expectSequence(
    decodeDer(der, { maxInputBytes: MAX_CRL_BYTES, maxElements: MAX_CRL_ENTRIES * ELEMENTS_PER_ENTRY + 64 }),
    'CertificateList',
  );
  if (root.children.length !== 3) throw crlError('CertificateList must have three fields', root.offset);
  const [tbsEl, algEl, sigEl] = root.children as [DerElement, DerElement, DerElement];
  const tbs = expectSequence(tbsEl, 'TBSCertList');
  const f = tbs.children;
  let i = 0;
  if (f[0]?.tagClass === TAG_CLASS_UNIVERSAL && f[0].tagNumber === 2) {
    if (readInteger(f[0], 'version') !== 1n) throw crlError('only v2 CRLs are read', f[0].offset);
    i = 1;
  } else {
    throw crlError('only v2 CRLs are read', tbs.offset);
  }
  const algorithm = readSignatureAlgorithm(f[i++], 'signature', tbs.offset);
  const issuerEl = f[i++];
  parseName(issuerEl, 'issuer');
  const thisUpdate = readTime(f[i++], 'thisUpdate');
  let nextUpdate: Date | null = null;
  if (isTime(f[i])) nextUpdate = readTime(f[i++], 'nextUpdate');
  const revoked: UntrustedRevokedEntry[] = [];
  const list = f[i];
  if (list !== undefined && list.tagClass === TAG_CLASS_UNIVERSAL && list.tagNumber === TAG_SEQUENCE) {
    i++;
    if (list.children.length === 0) throw crlError('revokedCertificates is present but empty', list.offset);
    const seen = new Set<bigint>();
    for (const entry of list.children) {
      expectSequence(entry, 'revoked entry');
      const n = entry.children.length;
      if (n !== 2 && n !== 3) throw crlError('revoked entry has a wrong field count', entry.offset);
      const serial = readSerial(entry.children[0], entry.offset);
      if (seen.has(serial)) throw crlError(`serial ${serial} is listed twice`, entry.offset);
      seen.add(serial);
      const revokedAt = readTime(entry.children[1], 'revocationDate');
      let reason: CrlReason | null = 'unspecified';
      if (n === 3) {
        for (const ext of parseExtensions(entry.children[2]!, 'crlEntryExtensions')) {
          if (ext.oid === OID_CRL_REASON) {
            const code = readInteger(extensionRoot(ext), 'reasonCode', TAG_ENUMERATED);
            reason = REASON_BY_CODE.get(Number(code)) ?? null;
          } else if (ext.critical) {
            throw new HealthCertError(
              'CERT_EXTENSION_CRITICAL_UNKNOWN',
              `unknown critical ${ext.oid}`,
              ext.valueOffset,
            );
          }
        }
      }
      revoked.push({ serial, revokedAt, reason });
    }
  }
  let crlNumber: bigint | null = null;
  let authorityKeyIdentifier: Uint8Array | null = null;
  const extWrapper = f[i];
  if (extWrapper !== undefined && extWrapper.tagClass === TAG_CLASS_CONTEXT && extWrapper.tagNumber === 0) {
    i++;
    if (!extWrapper.constructed || extWrapper.children.length !== 1) {
      throw crlError('crlExtensions must be [0] EXPLICIT', extWrapper.offset);
    }
    for (const ext of parseExtensions(extWrapper.children[0]!, 'crlExtensions')) {
      if (ext.oid === OID_CRL_NUMBER) {
        crlNumber = readInteger(extensionRoot(ext), 'cRLNumber');
        if (crlNumber < 0n || crlNumber > MAX_SERIAL)
          throw crlError('cRLNumber out of range', ext.valueOffset);
      } else if (ext.oid === OID_AUTHORITY_KEY_IDENTIFIER) {
        const aki = expectSequence(extensionRoot(ext), 'authorityKeyIdentifier');
        const keyId = aki.children.find((c) => c.tagClass === TAG_CLASS_CONTEXT && c.tagNumber === 0);
        authorityKeyIdentifier = keyId && !keyId.constructed ? keyId.content : null;
      } else if (ext.critical) {
        throw new HealthCertError(
          'CERT_EXTENSION_CRITICAL_UNKNOWN',
          `unknown critical ${ext.oid}`,
          ext.valueOffset,
        );
      }
    }
  }
  if (i !== f.length) throw crlError('unexpected field in TBSCertList', f[i]!.offset);
  if (readSignatureAlgorithm(algEl, 'signatureAlgorithm', root.offset) !== algorithm) {
    throw crlError('signatureAlgorithm differs from the tbs signature', algEl.offset);
  }
  const sig = readBitString(sigEl, 'signatureValue');
  if (sig.unusedBits !== 0) throw crlError('signatureValue has unused bits', sigEl.offset);
  return {
    der,
    tbs: tbs.encoded,
    issuer: issuerEl!.encoded,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyIdentifier,
    revoked,
    signature: sig.bytes,
  };
}
