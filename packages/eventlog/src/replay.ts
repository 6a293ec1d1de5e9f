// Replays a parsed log into PCR values per bank, with the PC Client PFP rules that
// tpm2_eventlog 5.4 gets wrong (EV_NO_ACTION, StartupLocality, H-CRTM, PCRs 17-22).
import { defaultHash } from '#default-hash';
import type { BankName } from './algorithms.ts';
import { latin1Text } from './bytes.ts';
import { EventLogError } from './errors.ts';
import { EV_EFI_HCRTM_EVENT, EV_NO_ACTION } from './event-types.ts';
import { type HashProvider, latin1Digests } from './hash.ts';
import type { EventDigest, EventLog, UntrustedEvent } from './parse.ts';

/** PCR values of one bank, keyed by PCR index. */
export type PcrValues = Readonly<Record<number, Uint8Array>>;

/** A non-fatal oddity found while replaying. */
export interface ReplayWarning {
  readonly code: 'startup-locality-late' | 'startup-locality-repeated' | 'startup-locality-bad';
  readonly eventIndex: number;
  readonly message: string;
}

/** Result of replaying a log. The values are what the log claims, not what a TPM quoted. */
export interface Replay {
  /** bank → PCR → value, for every PCR that at least one event extended (banks with none are absent). */
  readonly pcrs: Readonly<Record<BankName, PcrValues>>;
  /** Locality PCR0 started at: from a StartupLocality record, 4 after an H-CRTM sequence, else 0. */
  readonly pcr0Locality: number;
  /** Whether an H-CRTM sequence was found. */
  readonly hcrtm: boolean;
  readonly warnings: readonly ReplayWarning[];
}

export interface ReplayOptions {
  /** Hash implementation (default: node:crypto in Node, @noble/hashes elsewhere). */
  hash?: HashProvider;
}

const STARTUP_LOCALITY = 'StartupLocality\0';
// PFP 10.4.5.3: TCG_HCRTMComponentEvent records carry this signature in EV_NO_ACTION.
const HCRTM_SIGNATURE = 'H-CRTM';

function signatureIs(data: Uint8Array, signature: string): boolean {
  return data.length >= signature.length && latin1Text(data.subarray(0, signature.length)) === signature;
}

/** Whether an event marks an H-CRTM sequence (PFP 10.4.5.3: PCR0 then starts at locality 4). */
export function isHcrtmEvent(e: UntrustedEvent): boolean {
  if (e.pcr !== 0) return false;
  if (e.type === EV_EFI_HCRTM_EVENT) return true;
  return e.type === EV_NO_ACTION && signatureIs(e.data, HCRTM_SIGNATURE);
}

/** Whether an event is a StartupLocality record (PFP 10.4.5.3). */
export function isStartupLocalityEvent(e: UntrustedEvent): boolean {
  return e.type === EV_NO_ACTION && signatureIs(e.data, STARTUP_LOCALITY);
}

/**
 * The value a PCR holds after TPM2_Startup, before any extension (PFP 3.3.4, TPM 2.0 Part 1
 * 17.5): PCRs 17-22 are all-ones, PCR0 carries the start locality in its last byte, others are 0.
 */
export function pcrStartValue(pcr: number, digestSize: number, pcr0Locality = 0): Uint8Array {
  const v = new Uint8Array(digestSize);
  if (pcr >= 17 && pcr <= 22) v.fill(0xff);
  else if (pcr === 0 && digestSize > 0) v[digestSize - 1] = pcr0Locality;
  return v;
}

/** Locality PCR0 started at, as the log tells it, plus any oddities found on the way. */
export function startLocality(log: EventLog): {
  locality: number;
  hcrtm: boolean;
  warnings: ReplayWarning[];
} {
  const warnings: ReplayWarning[] = [];
  let locality: number | undefined;
  let hcrtm = false;
  let pcr0Extended = false;
  for (const e of log.events) {
    if (isHcrtmEvent(e)) hcrtm = true;
    if (isStartupLocalityEvent(e)) {
      const l = e.data[STARTUP_LOCALITY.length];
      if (e.pcr !== 0) {
        // PFP 10.4.5.3 logs it with PCRIndex 0; elsewhere it cannot describe PCR0's start.
        warnings.push({
          code: 'startup-locality-bad',
          eventIndex: e.index,
          message: `StartupLocality record on PCR ${e.pcr} ignored`,
        });
      } else if (l === undefined || l > 4) {
        warnings.push({
          code: 'startup-locality-bad',
          eventIndex: e.index,
          message: `StartupLocality record with ${l === undefined ? 'no locality byte' : `locality ${l}`} ignored`,
        });
      } else if (pcr0Extended) {
        // Startup happens before the first PCR0 measurement; a later record cannot change it.
        warnings.push({
          code: 'startup-locality-late',
          eventIndex: e.index,
          message: 'StartupLocality record after a PCR0 measurement ignored',
        });
      } else if (locality !== undefined) {
        warnings.push({
          code: 'startup-locality-repeated',
          eventIndex: e.index,
          message: 'second StartupLocality record ignored',
        });
      } else {
        locality = l;
      }
    }
    if (e.pcr === 0 && e.type !== EV_NO_ACTION) pcr0Extended = true;
  }
  // An H-CRTM sequence (_TPM_Hash_Start) resets PCR0 to locality 4 whatever else the log says.
  return { locality: hcrtm ? 4 : (locality ?? 0), hcrtm, warnings };
}

/** Replay every measured event into its bank's PCRs. EV_NO_ACTION records are never extended. */
export function replay(log: EventLog, options: ReplayOptions = {}): Replay {
  const hash = options.hash ?? defaultHash;
  const { locality, hcrtm, warnings } = startLocality(log);
  const latin1 = latin1Digests.get(hash);
  const pcrs: Record<BankName, Record<number, Uint8Array>> = {};
  if (latin1 === undefined) {
    const banks = extendAll(
      log,
      hash,
      (pcr, size) => pcrStartValue(pcr, size, locality),
      (bank, old, d) => hash.digest(bank.name, old, d.digest),
    );
    for (const b of banks) if (b.extended) pcrs[b.name] = b.sorted((v) => v);
  } else {
    const banks = extendAll(
      log,
      hash,
      (pcr, size) => latin1Of(pcrStartValue(pcr, size, locality)),
      (bank, old, d) => {
        const digest = d.digest;
        // pcr || digest in the bank's scratch buffer; any other length only in a hand-built log.
        const input =
          old.length === bank.size && digest.length === bank.size
            ? bank.scratch
            : new Uint8Array(old.length + digest.length);
        for (let i = 0; i < old.length; i++) input[i] = old.charCodeAt(i);
        input.set(digest, old.length);
        return latin1(bank.name, input);
      },
    );
    for (const b of banks) if (b.extended) pcrs[b.name] = b.sorted(bytesOfLatin1);
  }
  return { pcrs, pcr0Locality: locality, hcrtm, warnings };
}

function latin1Of(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function bytesOfLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// PCR values of one bank during replay, T being the provider's representation of a digest.
// PCRs 0-31 sit in an array: a Map lookup per extend was a visible share of replay time.
class BankState<T> {
  readonly name: BankName;
  readonly size: number;
  /** pcr || digest, reused for every extend of this bank. */
  readonly scratch: Uint8Array;
  readonly low: (T | undefined)[] = new Array(32).fill(undefined);
  high: Map<number, T> | undefined;
  extended = false;
  supported = false;

  constructor(name: BankName, size: number) {
    this.name = name;
    this.size = size;
    this.scratch = new Uint8Array(2 * size);
  }

  get(pcr: number): T | undefined {
    return pcr < 32 ? this.low[pcr] : this.high?.get(pcr);
  }

  set(pcr: number, value: T): void {
    this.extended = true;
    if (pcr < 32) this.low[pcr] = value;
    else {
      this.high ??= new Map();
      this.high.set(pcr, value);
    }
  }

  /** PCR → value, PCRs ascending so JSON output is stable. */
  sorted(toBytes: (v: T) => Uint8Array): Record<number, Uint8Array> {
    const out: Record<number, Uint8Array> = {};
    for (let pcr = 0; pcr < 32; pcr++) {
      const v = this.low[pcr];
      if (v !== undefined) out[pcr] = toBytes(v);
    }
    if (this.high !== undefined)
      for (const pcr of [...this.high.keys()].sort((x, y) => x - y)) out[pcr] = toBytes(this.high.get(pcr)!);
    return out;
  }
}

function extendAll<T>(
  log: EventLog,
  hash: HashProvider,
  start: (pcr: number, size: number) => T,
  extend: (bank: BankState<T>, old: T, d: EventDigest) => T,
): BankState<T>[] {
  // One state per bank name, in declaration order (a Map keeps the first position, the last size).
  const sizes = new Map(log.banks.map((b) => [b.name, b.digestSize]));
  const banks = [...sizes].map(([name, size]) => new BankState<T>(name, size));
  for (const e of log.events) {
    if (e.type === EV_NO_ACTION) continue;
    const digests = e.digests;
    for (let i = 0; i < digests.length; i++) {
      const d = digests[i]!;
      // Records list their digests in declaration order, so the bank at the same position usually matches.
      let bank = banks[i];
      if (bank === undefined || bank.name !== d.bank) bank = banks.find((b) => b.name === d.bank);
      if (bank === undefined) continue; // parser only yields declared banks
      if (!bank.supported) {
        if (!hash.supports(d.bank))
          throw new EventLogError(
            'unsupported-algorithm',
            `no ${d.bank} implementation to replay with`,
            e.offset,
            e.index,
          );
        bank.supported = true;
      }
      const pcr = e.pcr;
      bank.set(pcr, extend(bank, bank.get(pcr) ?? start(pcr, bank.size), d));
    }
  }
  return banks;
}
