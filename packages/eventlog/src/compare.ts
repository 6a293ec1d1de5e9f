// Trust boundary: an event becomes verified only when the PCR it extended, replayed from
// the log, equals the value the TPM quoted, in every quoted bank the event has a digest for.
import type { BankName } from './algorithms.ts';
import { bytesEqual } from './bytes.ts';
import { EV_NO_ACTION } from './event-types.ts';
import type { EventLog, UntrustedEvent } from './parse.ts';
import { pcrStartValue, type Replay, type ReplayOptions, replay } from './replay.ts';

/** PCR values from a verified quote: bank → PCR index → value. */
export type QuotedPcrs = Readonly<Record<BankName, Readonly<Record<number, Uint8Array>>>>;

/** An event whose digests replayed to quoted PCR values. Only these may feed policy. */
export interface VerifiedEvent extends UntrustedEvent {
  readonly verified: true;
  /** Quoted banks whose PCR this event's digest contributed to and that matched. */
  readonly verifiedBanks: readonly BankName[];
}

/** One quoted PCR whose replayed value equals the quote. */
export interface PcrMatch {
  readonly bank: BankName;
  readonly pcr: number;
}

/** One quoted PCR the log does not reproduce, with the events that claim to have built it. */
export interface PcrMismatch {
  readonly bank: BankName;
  readonly pcr: number;
  readonly quoted: Uint8Array;
  /** Value the log replays to (the start value when no event extended it). */
  readonly replayed: Uint8Array;
  /** Events that extended this PCR in this bank, in log order (untrusted). */
  readonly events: readonly UntrustedEvent[];
}

export interface QuoteComparison {
  /** The log's own replay (start locality, warnings, every extended PCR); values are untrusted. */
  readonly replayed: Replay;
  /** True only when every quoted PCR matched, at least one did, and every quoted bank is in the log. */
  readonly allMatch: boolean;
  readonly matched: readonly PcrMatch[];
  readonly mismatched: readonly PcrMismatch[];
  /** Quoted banks the log carries no digest list for; their PCRs cannot be checked. */
  readonly unknownBanks: readonly BankName[];
  /** Events backed by the quote. */
  readonly verifiedEvents: readonly VerifiedEvent[];
  /**
   * Every other event: EV_NO_ACTION records, events in PCRs that were not quoted or did not
   * match, and events missing a digest for a quoted bank. Do not base decisions on these.
   */
  readonly untrustedEvents: readonly UntrustedEvent[];
}

/** Replay the log and compare it with quoted PCR values (the quote's signature must already be checked). */
export function compareWithQuote(
  log: EventLog,
  quoted: QuotedPcrs,
  options: ReplayOptions = {},
): QuoteComparison {
  const r = replay(log, options);
  const sizes = new Map(log.banks.map((b) => [b.name, b.digestSize]));
  const matched: PcrMatch[] = [];
  const mismatched: PcrMismatch[] = [];
  const unknownBanks: BankName[] = [];
  const ok = new Set<string>();
  const quotedKeys = new Set<string>();
  for (const [bank, pcrs] of Object.entries(quoted)) {
    const size = sizes.get(bank);
    if (size === undefined) {
      unknownBanks.push(bank);
      continue;
    }
    for (const [key, value] of Object.entries(pcrs)) {
      const pcr = Number(key);
      // A caller bug, not hostile log data: refuse loudly rather than compare against nothing.
      if (!Number.isInteger(pcr) || pcr < 0 || pcr > 0xffffffff)
        throw new TypeError(`quoted PCR '${key}' is not an index`);
      quotedKeys.add(`${bank}:${pcr}`);
      const replayed = r.pcrs[bank]?.[pcr] ?? pcrStartValue(pcr, size, r.pcr0Locality);
      if (bytesEqual(replayed, value)) {
        matched.push({ bank, pcr });
        ok.add(`${bank}:${pcr}`);
      } else {
        const events = log.events.filter(
          (e) => e.pcr === pcr && e.type !== EV_NO_ACTION && e.digests.some((d) => d.bank === bank),
        );
        mismatched.push({ bank, pcr, quoted: value, replayed, events });
      }
    }
  }

  const verifiedEvents: VerifiedEvent[] = [];
  const untrustedEvents: UntrustedEvent[] = [];
  for (const e of log.events) {
    if (e.type === EV_NO_ACTION) {
      untrustedEvents.push(e);
      continue;
    }
    // Every quoted bank of this PCR must match and carry this event's digest: a digest in a
    // bank that matched says nothing about data hashed differently in a bank that did not.
    const banks: BankName[] = [];
    let refuted = false;
    for (const bank of sizes.keys()) {
      const key = `${bank}:${e.pcr}`;
      if (!quotedKeys.has(key)) continue;
      if (!ok.has(key) || !e.digests.some((d) => d.bank === bank)) refuted = true;
      else banks.push(bank);
    }
    if (refuted || banks.length === 0) untrustedEvents.push(e);
    else verifiedEvents.push({ ...e, verified: true, verifiedBanks: banks });
  }
  const allMatch = mismatched.length === 0 && unknownBanks.length === 0 && matched.length > 0;
  return { replayed: r, allMatch, matched, mismatched, unknownBanks, verifiedEvents, untrustedEvents };
}
