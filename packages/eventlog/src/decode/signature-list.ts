// EFI_SIGNATURE_LIST / EFI_SIGNATURE_DATA (UEFI spec 32.4.1): the contents of PK, KEK, db, dbx,
// MokList… and the single EFI_SIGNATURE_DATA that EV_EFI_VARIABLE_AUTHORITY events carry.
import { type CertificateInfo, type CertificateInspector, describeCertificate } from './certificate.ts';
import { EFI_CERT_SHA256, EFI_CERT_X509, guidName, guidText } from './guid.ts';
import { DecodeFault, type Reader } from './reader.ts';

export interface SignatureEntry {
  /** SignatureOwner; undefined when the event carried a bare certificate (shim 15 does). */
  readonly owner: string | undefined;
  readonly ownerName: string | undefined;
  /** Signature bytes after the owner GUID: a DER certificate, a hash, … depending on the list type. */
  readonly data: Uint8Array;
  /** Set for EFI_CERT_X509 lists. */
  readonly certificate?: CertificateInfo;
  /** Set for EFI_CERT_SHA256 lists: the 32-byte hash. */
  readonly sha256?: Uint8Array;
}

export interface SignatureList {
  readonly type: string;
  readonly typeName: string | undefined;
  readonly header: Uint8Array;
  readonly signatureSize: number;
  readonly entries: readonly SignatureEntry[];
}

/** Most entries read from one variable (dbx has a few hundred in practice). */
const MAX_ENTRIES = 100_000;

function entry(
  r: Reader,
  size: number,
  type: string,
  inspect: CertificateInspector | undefined,
): SignatureEntry {
  const owner = guidText(r.bytesN(16, 'SignatureOwner'));
  const data = r.bytesN(size - 16, 'SignatureData');
  const base = { owner, ownerName: guidName(owner), data };
  if (type === EFI_CERT_X509) return { ...base, certificate: describeCertificate(data, inspect) };
  if (type === EFI_CERT_SHA256 && data.length === 32) return { ...base, sha256: data };
  return base;
}

/** Parse a whole signature database (a sequence of EFI_SIGNATURE_LIST). Throws DecodeFault. */
export function parseSignatureLists(r: Reader, inspect?: CertificateInspector): SignatureList[] {
  const lists: SignatureList[] = [];
  let count = 0;
  while (r.remaining > 0) {
    const at = r.offset;
    const type = guidText(r.bytesN(16, 'SignatureType'));
    const listSize = r.u32('SignatureListSize');
    const headerSize = r.u32('SignatureHeaderSize');
    const sigSize = r.u32('SignatureSize');
    if (listSize < 28 || listSize - 28 > r.remaining) {
      throw new DecodeFault(
        'length-too-large',
        `SignatureListSize ${listSize} outside 28..${r.remaining + 28}`,
        at + 16,
      );
    }
    const body = r.sub(listSize - 28, 'signature list body');
    if (headerSize > body.remaining) {
      throw new DecodeFault(
        'length-too-large',
        `SignatureHeaderSize ${headerSize} exceeds the list`,
        at + 20,
      );
    }
    const header = body.bytesN(headerSize, 'SignatureHeader');
    if (sigSize < 16) throw new DecodeFault('bad-value', `SignatureSize ${sigSize} is below 16`, at + 24);
    if (body.remaining % sigSize !== 0) {
      throw new DecodeFault(
        'bad-value',
        `list body of ${body.remaining} bytes is not a multiple of SignatureSize ${sigSize}`,
        at + 24,
      );
    }
    const entries: SignatureEntry[] = [];
    while (body.remaining > 0) {
      if (++count > MAX_ENTRIES)
        throw new DecodeFault('too-many-items', `more than ${MAX_ENTRIES} signatures`, body.offset);
      entries.push(entry(body, sigSize, type, inspect));
    }
    lists.push({ type, typeName: guidName(type), header, signatureSize: sigSize, entries });
  }
  return lists;
}

/** Whether `b` is exactly one DER SEQUENCE with a two-byte length (every real certificate is). */
function isBareCertificate(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x30 && b[1] === 0x82 && ((b[2]! << 8) | b[3]!) + 4 === b.length;
}

/**
 * The EFI_SIGNATURE_DATA filling `r` (EV_EFI_VARIABLE_AUTHORITY), or a bare DER certificate as shim 15
 * logs for its vendor certificate. A DER certificate is recognised by its SEQUENCE tag.
 */
export function parseSignatureData(r: Reader, inspect?: CertificateInspector): SignatureEntry {
  if (isBareCertificate(r.bytes.subarray(r.pos))) {
    const der = r.rest();
    return {
      owner: undefined,
      ownerName: undefined,
      data: der,
      certificate: describeCertificate(der, inspect),
    };
  }
  const owner = guidText(r.bytesN(16, 'SignatureOwner'));
  const data = r.rest();
  const base = { owner, ownerName: guidName(owner), data };
  if (data.length >= 4 && data[0] === 0x30 && data[1] === 0x82)
    return { ...base, certificate: describeCertificate(data, inspect) };
  if (data.length === 32) return { ...base, sha256: data };
  return base;
}
