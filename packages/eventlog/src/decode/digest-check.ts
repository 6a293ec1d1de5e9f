// Events whose digest must equal a hash of bytes in the log (PC Client PFP 10.4.1 / 10.4.4): check it,
// so a log whose data was edited after measurement is reported. The event type is not covered by any
// digest, so a checked event proves its data, never its type.
import {
  EV_ACTION,
  EV_EFI_ACTION,
  EV_EFI_GPT_EVENT,
  EV_EFI_VARIABLE_AUTHORITY,
  EV_EFI_VARIABLE_BOOT,
  EV_EFI_VARIABLE_BOOT2,
  EV_EFI_VARIABLE_DRIVER_CONFIG,
  EV_IPL,
  EV_OMIT_BOOT_DEVICE_EVENTS,
  EV_SEPARATOR,
} from '../event-types.ts';
import type { HashProvider } from '../hash.ts';
import { iplContent } from './ipl.ts';
import { DIGEST_QUIRKS, type DigestQuirk, variableStructureLength } from './quirks.ts';
import type { DecodeInput, DigestCheck, HashFunction } from './types.ts';

/**
 * The bytes the spec says the digest covers: a Uint8Array; `null` when it should cover bytes of the
 * log but the data is malformed; undefined when it covers content that is not in the log.
 */
export function specPreimage(type: number, data: Uint8Array): Uint8Array | null | undefined {
  switch (type) {
    case EV_SEPARATOR:
    case EV_ACTION:
    case EV_EFI_ACTION:
    case EV_EFI_GPT_EVENT:
    case EV_OMIT_BOOT_DEVICE_EVENTS:
    case EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV_EFI_VARIABLE_AUTHORITY:
    case EV_EFI_VARIABLE_BOOT2:
      return data;
    case EV_EFI_VARIABLE_BOOT: {
      // PFP: EV_EFI_VARIABLE_BOOT measures VariableData only (BOOT2 was added to cover the whole structure).
      const end = variableStructureLength(data);
      if (end === undefined) return null;
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const dataLen = Number(dv.getBigUint64(24, true));
      return data.subarray(end - dataLen, end);
    }
    case EV_IPL:
      return iplContent(data).measured;
    default:
      return undefined;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Banks among `digests` whose value differs from hash(preimage); undefined when no bank could be hashed. */
function mismatches(input: DecodeInput, pre: Uint8Array, hash: HashFunction): string[] | undefined {
  const bad: string[] = [];
  let hashed = 0;
  for (const { bank, digest } of input.digests) {
    const h = hash(bank, pre);
    if (h === undefined) continue;
    hashed++;
    if (!equal(h, digest)) bad.push(bank);
  }
  return hashed === 0 ? undefined : bad;
}

/**
 * Compare the event's digests with a hash of its data, for the types whose digest must equal one.
 * Quirks from `quirks` (default: the DIGEST_QUIRKS table) are tried only after the spec preimage fails.
 */
export function checkEventDigest(
  input: DecodeInput,
  hash: HashFunction,
  quirks: readonly DigestQuirk[] = DIGEST_QUIRKS,
): DigestCheck {
  const pre = specPreimage(input.type, input.data);
  if (pre === undefined) return { checked: false, ok: false };
  let bad: string[] | undefined;
  if (pre !== null) {
    bad = mismatches(input, pre, hash);
    if (bad === undefined) return { checked: false, ok: false };
    if (bad.length === 0) return { checked: true, ok: true };
  }
  for (const q of quirks) {
    if (!q.eventTypes.includes(input.type)) continue;
    const alt = q.preimage(input.data);
    if (alt === undefined) continue;
    const qbad = mismatches(input, alt, hash);
    if (qbad === undefined) continue;
    if (qbad.length === 0) return { checked: true, ok: true, quirk: q.id };
  }
  if (bad === undefined) {
    // Malformed data and no quirk matched: still a checked mismatch, on every bank we can hash.
    const banks = input.digests.map((d) => d.bank).filter((b) => hash(b, new Uint8Array(0)) !== undefined);
    if (banks.length === 0) return { checked: false, ok: false };
    return { checked: true, ok: false, mismatchedBanks: banks };
  }
  return { checked: true, ok: false, mismatchedBanks: bad };
}

/** The package's HashProvider (defaultHash) as the HashFunction decodeEvent and checkEventDigest take. */
export function hashFromProvider(provider: HashProvider): HashFunction {
  return (bank, bytes) => (provider.supports(bank) ? provider.digest(bank, bytes) : undefined);
}
