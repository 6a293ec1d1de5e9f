import { HealthCertError } from './errors.ts';

/** RFC 7468 textual encoding with 64-character lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const MAX_PEM_CHARS = 1 << 20;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The first `label` block of a PEM text, decoded. Strict: the base64 must be canonical, so
 * one DER has exactly one PEM reading.
 */
export function fromPem(text: string, label: string): Uint8Array {
  if (typeof text !== 'string' || text.length > MAX_PEM_CHARS) {
    throw new HealthCertError('PEM_INVALID', `PEM text missing or longer than ${MAX_PEM_CHARS} characters`);
  }
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const start = text.indexOf(begin);
  if (start < 0) throw new HealthCertError('PEM_INVALID', `no ${begin} line`);
  const stop = text.indexOf(end, start + begin.length);
  if (stop < 0) throw new HealthCertError('PEM_INVALID', `no ${end} line`);
  const body = text
    .slice(start + begin.length, stop)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  for (const line of body) {
    if (!BASE64_LINE.test(line)) throw new HealthCertError('PEM_INVALID', `${label} body is not base64`);
  }
  const joined = body.join('');
  if (joined.length === 0 || joined.length % 4 !== 0) {
    throw new HealthCertError('PEM_INVALID', `${label} body has a bad base64 length`);
  }
  const bytes = Buffer.from(joined, 'base64');
  if (bytes.toString('base64') !== joined) {
    throw new HealthCertError('PEM_INVALID', `${label} body is not canonical base64`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Every `label` block of a PEM text (a CA bundle), decoded. */
export function fromPemAll(text: string, label: string): Uint8Array[] {
  if (typeof text !== 'string' || text.length > MAX_PEM_CHARS) {
    throw new HealthCertError('PEM_INVALID', `PEM text missing or longer than ${MAX_PEM_CHARS} characters`);
  }
  const end = `-----END ${label}-----`;
  const out: Uint8Array[] = [];
  let rest = text;
  for (;;) {
    const stop = rest.indexOf(end);
    if (stop < 0) break;
    out.push(fromPem(rest.slice(0, stop + end.length), label));
    rest = rest.slice(stop + end.length);
  }
  if (out.length === 0) throw new HealthCertError('PEM_INVALID', `no ${label} block`);
  return out;
}
