// One-pass DER writing for structures built on every call (the health certificate, the signed
// wrapper): lengths are computed first, then every TLV is written straight into one buffer,
// instead of each level allocating its TLV and copying its children into it (der.ts encoders).
// Same bytes as the der.ts encoders; the tests compare them.

/** Identifier octets of the universal and context tags written here. */
export const ID_INTEGER = 0x02;
export const ID_BIT_STRING = 0x03;
export const ID_OCTET_STRING = 0x04;
export const ID_UTF8_STRING = 0x0c;
export const ID_UTC_TIME = 0x17;
export const ID_SEQUENCE = 0x30;
export const ID_SET = 0x31;

/** The largest content length written (DER allows more; nothing built here comes near it). */
const MAX_CONTENT = 0xffffff;

/** Identifier plus length octets of a TLV whose content is `n` bytes. */
export function headerLength(n: number): number {
  if (n < 0x80) return 2;
  if (n < 0x100) return 3;
  if (n < 0x10000) return 4;
  if (n <= MAX_CONTENT) return 5;
  throw new RangeError(`DER content of ${n} bytes is too long to write`);
}

/** The whole TLV's length for content of `n` bytes. */
export function tlvLength(n: number): number {
  return headerLength(n) + n;
}

/** Writes identifier and length octets at `at`; returns where the content starts. */
export function writeHeader(out: Uint8Array, at: number, identifier: number, n: number): number {
  out[at++] = identifier;
  if (n < 0x80) {
    out[at++] = n;
  } else if (n < 0x100) {
    out[at++] = 0x81;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = 0x82;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  } else if (n <= MAX_CONTENT) {
    out[at++] = 0x83;
    out[at++] = n >>> 16;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  } else {
    throw new RangeError(`DER content of ${n} bytes is too long to write`);
  }
  return at;
}

/** UTF-8 length of a well-formed string (callers check isWellFormed first). */
export function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      // A surrogate pair: two UTF-16 units, four UTF-8 octets.
      n += 2;
      i++;
    } else n += 2;
  }
  return n;
}

const utf8 = new TextEncoder();

/** Writes `text` (of UTF-8 length `byteLength`) at `at`; returns the offset after it. */
export function writeUtf8(out: Uint8Array, at: number, text: string, byteLength: number): number {
  if (byteLength === text.length) {
    for (let i = 0; i < byteLength; i++) out[at + i] = text.charCodeAt(i);
  } else {
    utf8.encodeInto(text, out.subarray(at, at + byteLength));
  }
  return at + byteLength;
}

/** Octets of a non-negative safe integer's INTEGER content (two's complement, minimal). */
export function unsignedIntegerLength(value: number): number {
  // One octet more whenever the top bit of the leading octet would be set.
  let n = 1;
  for (let v = value; v > 0x7f; v = Math.floor(v / 256)) n++;
  return n;
}

export function writeUnsignedInteger(out: Uint8Array, at: number, value: number, length: number): number {
  let v = value;
  for (let i = at + length - 1; i >= at; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return at + length;
}

function hexNibble(c: number): number {
  // '0'-'9' and 'a'-'f' (bigint toString(16) writes lowercase).
  return c <= 0x39 ? c - 0x30 : c - 0x57;
}

/** INTEGER content length of a positive bigint given as its toString(16). */
export function positiveIntegerLength(hex: string): number {
  const bytes = (hex.length + 1) >> 1;
  // An even count of digits whose first is 8-f has its top bit set: a 0x00 octet goes first.
  return hex.length % 2 === 0 && hexNibble(hex.charCodeAt(0)) >= 8 ? bytes + 1 : bytes;
}

/** Writes a positive bigint's INTEGER content (`hex` its toString(16), `length` from positiveIntegerLength). */
export function writePositiveInteger(out: Uint8Array, at: number, hex: string, length: number): number {
  const end = at + length;
  let i = hex.length;
  let o = end - 1;
  for (; i >= 2; i -= 2, o--) {
    out[o] = (hexNibble(hex.charCodeAt(i - 2)) << 4) | hexNibble(hex.charCodeAt(i - 1));
  }
  if (i === 1) out[o--] = hexNibble(hex.charCodeAt(0));
  for (; o >= at; o--) out[o] = 0;
  return end;
}

/** Two decimal digits of `n` (0-99) at `at`. */
function writeTwoDigits(out: Uint8Array, at: number, n: number): void {
  out[at] = 0x30 + ((n / 10) | 0);
  out[at + 1] = 0x30 + (n % 10);
}

/**
 * A UTCTime TLV (15 octets) for a whole-second date of 1950-2049 — what encodeTime writes for
 * those years; callers use encodeTime for any other date.
 */
export function writeUtcTime(out: Uint8Array, at: number, date: Date): number {
  out[at] = ID_UTC_TIME;
  out[at + 1] = 13;
  writeTwoDigits(out, at + 2, date.getUTCFullYear() % 100);
  writeTwoDigits(out, at + 4, date.getUTCMonth() + 1);
  writeTwoDigits(out, at + 6, date.getUTCDate());
  writeTwoDigits(out, at + 8, date.getUTCHours());
  writeTwoDigits(out, at + 10, date.getUTCMinutes());
  writeTwoDigits(out, at + 12, date.getUTCSeconds());
  out[at + 14] = 0x5a; // Z
  return at + 15;
}

/** Whether writeUtcTime covers `date` (else encodeTime's own checks and form apply). */
export function isPlainUtcTime(date: Date): boolean {
  const ms = date.getTime();
  if (!Number.isFinite(ms) || ms % 1000 !== 0) return false;
  const year = date.getUTCFullYear();
  return year >= 1950 && year <= 2049;
}
