// Text in event data: ASCII/Latin-1 and UCS-2 (UTF-16LE), usually NUL-terminated.

const latin1 = new TextDecoder('latin1');
const utf16 = new TextDecoder('utf-16le');

/** Latin-1 text of `b`, cut at the first NUL. */
export function asciiz(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return latin1.decode(nul < 0 ? b : b.subarray(0, nul));
}

/** UCS-2 text of `b`, cut at the first NUL code unit (an odd trailing byte is ignored). */
export function ucs2z(b: Uint8Array): string {
  let end = b.length & ~1;
  for (let i = 0; i + 1 < end; i += 2) {
    if (b[i] === 0 && b[i + 1] === 0) {
      end = i;
      break;
    }
  }
  return utf16.decode(b.subarray(0, end));
}

/** Whether every byte up to an optional NUL run at the end is printable ASCII (tab/CR/LF allowed). */
export function isPrintableAscii(b: Uint8Array): boolean {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  if (end === 0) return false;
  for (let i = 0; i < end; i++) {
    const c = b[i]!;
    if ((c < 0x20 || c > 0x7e) && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

/**
 * Whether `b` looks like a UCS-2 string of printable ASCII characters, NUL-terminated or not. A lone
 * trailing NUL byte is allowed (a systemd-boot build logged its command line that way).
 */
export function isPrintableUcs2(b: Uint8Array): boolean {
  if (b.length < 2 || (b.length % 2 !== 0 && b[b.length - 1] !== 0)) return false;
  let end = b.length & ~1;
  while (end >= 2 && b[end - 1] === 0 && b[end - 2] === 0) end -= 2;
  if (end === 0) return false;
  for (let i = 0; i < end; i += 2) {
    const c = b[i]!;
    if (b[i + 1] !== 0 || ((c < 0x20 || c > 0x7e) && c !== 0x09 && c !== 0x0a && c !== 0x0d)) return false;
  }
  return true;
}

/** Text safe for a one-line display: control characters escaped, length capped. */
export function oneLine(s: string, max = 120): string {
  let clean = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    clean += c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
  }
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
