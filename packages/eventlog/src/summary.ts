// A short, display-safe description of an event from its raw data alone, for listings when
// no type-specific decoder has a better one. Never trusts or interprets lengths in the data.
import { toHex } from './bytes.ts';
import { EV_NO_ACTION, EV_SEPARATOR } from './event-types.ts';
import type { UntrustedEvent } from './parse.ts';

const MAX = 80;

function printable(b: Uint8Array): string | undefined {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  if (end === 0) return undefined;
  let s = '';
  for (let i = 0; i < end; i++) {
    const c = b[i]!;
    if (c === 0x0a || c === 0x0d || c === 0x09) s += ' ';
    else if (c < 0x20 || c > 0x7e) return undefined;
    else s += String.fromCharCode(c);
  }
  return s;
}

function printableUcs2(b: Uint8Array): string | undefined {
  if (b.length < 4 || b.length % 2 !== 0) return undefined;
  const narrow = new Uint8Array(b.length / 2);
  for (let i = 0; i < narrow.length; i++) {
    if (b[2 * i + 1] !== 0) return undefined;
    narrow[i] = b[2 * i]!;
  }
  return printable(narrow);
}

function cap(s: string): string {
  return s.length > MAX ? `${s.slice(0, MAX - 1)}…` : s;
}

/** One line describing an event: its text when the data is text, else its size and first bytes. */
export function summarizeEvent(e: UntrustedEvent): string {
  const d = e.data;
  if (e.type === EV_NO_ACTION) {
    const sig = printable(d.subarray(0, 16));
    if (sig !== undefined) return cap(sig === 'StartupLocality' ? `StartupLocality ${d[16] ?? '?'}` : sig);
  }
  if (e.type === EV_SEPARATOR && d.length === 4) {
    const hex = toHex(d);
    return hex === '00000000' ? 'separator' : hex === 'ffffffff' ? 'separator (error)' : `separator ${hex}`;
  }
  const text = printable(d) ?? printableUcs2(d);
  if (text !== undefined) return cap(JSON.stringify(text));
  if (d.length === 0) return '(no data)';
  return `${d.length} bytes ${toHex(d.subarray(0, 16))}${d.length > 16 ? '…' : ''}`;
}
