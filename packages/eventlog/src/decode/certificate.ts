// Just enough DER to name an X.509 certificate (subject CN) without a crypto library; anything
// richer comes from an injected inspector (e.g. node:crypto X509Certificate) so the core stays pure.

/** What the decoder reports about one certificate. */
export interface CertificateInfo {
  readonly der: Uint8Array;
  /** Subject commonName when the DER could be walked, else undefined. */
  readonly subjectCN: string | undefined;
  /** Extra fields from an injected inspector (subject, issuer, validity, fingerprint…). */
  readonly details?: Readonly<Record<string, string>>;
}

/** Optional richer certificate reader; must not throw (errors are swallowed anyway). */
export type CertificateInspector = (der: Uint8Array) => Readonly<Record<string, string>> | undefined;

interface Tlv {
  tag: number;
  start: number; // content start
  end: number; // content end
}

/** One DER TLV at `o` bounded by `limit`, or undefined if malformed. */
function tlv(b: Uint8Array, o: number, limit: number): Tlv | undefined {
  if (o + 2 > limit) return undefined;
  const tag = b[o]!;
  let len = b[o + 1]!;
  let p = o + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  if (len > limit - p) return undefined;
  return { tag, start: p, end: p + len };
}

/** Children of a constructed TLV, capped so a hostile blob costs bounded work. */
function children(b: Uint8Array, t: Tlv, max = 64): Tlv[] {
  const out: Tlv[] = [];
  let o = t.start;
  while (o < t.end && out.length < max) {
    const c = tlv(b, o, t.end);
    if (!c) break;
    out.push(c);
    o = c.end;
  }
  return out;
}

const CN_OID = [0x55, 0x04, 0x03];

/** Subject commonName of a DER certificate, or undefined. Never throws. */
export function subjectCommonName(der: Uint8Array): string | undefined {
  const cert = tlv(der, 0, der.length);
  if (cert?.tag !== 0x30) return undefined;
  const tbs = children(der, cert)[0];
  if (tbs?.tag !== 0x30) return undefined;
  const fields = children(der, tbs, 16);
  // [0] version is optional; subject is the 6th field counting from serialNumber.
  const i = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[i + 4];
  if (subject?.tag !== 0x30) return undefined;
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, rdn)) {
      const [oid, value] = children(der, atv, 2);
      if (!oid || !value || oid.tag !== 0x06 || oid.end - oid.start !== 3) continue;
      if (
        der[oid.start] !== CN_OID[0] ||
        der[oid.start + 1] !== CN_OID[1] ||
        der[oid.start + 2] !== CN_OID[2]
      )
        continue;
      const bytes = der.subarray(value.start, value.end);
      // BMPString is UTF-16BE; the other string types are ASCII-compatible.
      if (value.tag === 0x1e) {
        let s = '';
        for (let k = 0; k + 1 < bytes.length; k += 2)
          s += String.fromCharCode((bytes[k]! << 8) | bytes[k + 1]!);
        return s;
      }
      return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    }
  }
  return undefined;
}

export function describeCertificate(der: Uint8Array, inspect?: CertificateInspector): CertificateInfo {
  const subjectCN = subjectCommonName(der);
  if (!inspect) return { der, subjectCN };
  let details: Readonly<Record<string, string>> | undefined;
  try {
    details = inspect(der);
  } catch {
    details = undefined;
  }
  return details ? { der, subjectCN, details } : { der, subjectCN };
}
