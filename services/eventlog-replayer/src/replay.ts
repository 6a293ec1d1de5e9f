// The replayer's pure core: an untrusted event log plus quoted PCR values (already checked against
// the signed quote by the collector) → replay result, decoded events, the measurements policy reads,
// or refusals naming the PCRs, events and byte offsets at fault. No I/O; never throws on log bytes.
import {
  compareWithQuote,
  EventLogError,
  type EventLog,
  type QuotedPcrs,
  parseEventLog,
  toHex,
  type UntrustedEvent,
} from '@hostgate/eventlog';
import type {
  BootApplication,
  HashAlgorithm__Output,
  MeasuredEvent,
  PcrBank,
  PcrReplay,
  Refusal,
  ReplayResult,
  ReplayWarning,
  RefusalCodeName,
  SecureBootState,
} from '@hostgate/protos';
import { decodeForPolicy } from './decode.ts';

/** Largest event log replayed (the collector refuses bigger ones before they reach Kafka). */
export const MAX_EVENT_LOG_BYTES = 8 * 1024 * 1024;

/** Proto HashAlgorithm names ↔ @hostgate/eventlog bank names. */
const BANK_BY_ALGORITHM: Readonly<Record<string, string>> = {
  HASH_ALGORITHM_SHA1: 'sha1',
  HASH_ALGORITHM_SHA256: 'sha256',
  HASH_ALGORITHM_SHA384: 'sha384',
  HASH_ALGORITHM_SHA512: 'sha512',
  HASH_ALGORITHM_SM3_256: 'sm3_256',
};
const ALGORITHM_BY_BANK: Readonly<Record<string, HashAlgorithm__Output>> = Object.fromEntries(
  Object.entries(BANK_BY_ALGORITHM).map(([a, b]) => [b, a as HashAlgorithm__Output]),
);

export function bankOfAlgorithm(algorithm: string | number | undefined): string {
  return BANK_BY_ALGORITHM[String(algorithm)] ?? `unknown(${String(algorithm)})`;
}

export function algorithmOfBank(bank: string): HashAlgorithm__Output {
  return ALGORITHM_BY_BANK[bank] ?? 'HASH_ALGORITHM_UNSPECIFIED';
}

export interface ReplayInput {
  readonly eventLog: Uint8Array;
  /** Quoted PCR values per bank (proto PcrBank, as decoded from Evidence or a ReplayRequest). */
  readonly pcrBanks: readonly PcrBank[];
}

/** Everything a replay yields; the fields of Measurements / ReplayResponse that depend on the log. */
export interface ReplayOutcome {
  readonly replay: ReplayResult;
  readonly events: MeasuredEvent[];
  readonly secureBoot: SecureBootState;
  readonly dbx: Uint8Array[];
  readonly dbxEventIndex: number | undefined;
  readonly bootApplications: BootApplication[];
  /** Empty exactly when every quoted PCR replayed. */
  readonly refusals: Refusal[];
}

function bytesOf(v: Uint8Array | string | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  return v;
}

/** Quoted PCRs in @hostgate/eventlog's shape; a bank named twice keeps its last values. */
export function quotedPcrs(banks: readonly PcrBank[]): QuotedPcrs {
  const out: Record<string, Record<number, Uint8Array>> = {};
  for (const b of banks) {
    const bank = bankOfAlgorithm(b.hashAlgorithm);
    const pcrs: Record<number, Uint8Array> = {};
    for (const p of b.pcrs ?? []) {
      const index = Number(p.index ?? 0);
      if (!Number.isInteger(index) || index < 0 || index > 23) continue;
      pcrs[index] = bytesOf(p.digest);
    }
    out[bank] = pcrs;
  }
  return out;
}

function refusal(code: RefusalCodeName, message: string, details: Record<string, string>): Refusal {
  return { code, message, details };
}

function emptyOutcome(refusals: Refusal[]): ReplayOutcome {
  return {
    replay: { match: false, pcrs: [], eventsAtFault: [], pcr0Locality: 0, warnings: [] },
    events: [],
    secureBoot: { verified: false },
    dbx: [],
    dbxEventIndex: undefined,
    bootApplications: [],
    refusals,
  };
}

function malformed(err: EventLogError): ReplayOutcome {
  const details: Record<string, string> = { offset: String(err.offset) };
  if (err.eventIndex >= 0) details['event_index'] = String(err.eventIndex);
  if (err.code === 'too-large') details['limit'] = String(MAX_EVENT_LOG_BYTES);
  const at = err.eventIndex >= 0 ? ` (event ${err.eventIndex})` : '';
  return emptyOutcome([
    refusal(
      'EVENTLOG_MALFORMED',
      `event log is malformed: ${err.code} at offset ${err.offset}${at}: ${err.reason}`,
      details,
    ),
  ]);
}

/** Events of `pcr` that extended `bank` (EV_NO_ACTION never extends). */
function extenders(log: EventLog, bank: string, pcr: number): number[] {
  const out: number[] = [];
  for (const e of log.events) {
    if (e.pcr === pcr && e.type !== 3 && e.digests.some((d) => d.bank === bank)) out.push(e.index);
  }
  return out;
}

/** Replays and decodes `input.eventLog` against `input.pcrBanks`. Never throws on hostile log bytes. */
export function replayEventLog(input: ReplayInput): ReplayOutcome {
  let log: EventLog;
  try {
    log = parseEventLog(input.eventLog, { maxLogSize: MAX_EVENT_LOG_BYTES });
  } catch (err) {
    if (err instanceof EventLogError) return malformed(err);
    throw err;
  }
  const quoted = quotedPcrs(input.pcrBanks);
  let cmp: ReturnType<typeof compareWithQuote>;
  try {
    cmp = compareWithQuote(log, quoted);
  } catch (err) {
    // unsupported-algorithm: the log declares a bank this runtime cannot hash.
    if (err instanceof EventLogError) return malformed(err);
    throw err;
  }

  const refusals: Refusal[] = [];
  for (const bank of cmp.unknownBanks) {
    refusals.push(
      refusal(
        'EVENTLOG_BANK_MISSING',
        `the quote covers the ${bank} bank but the event log has no ${bank} digests`,
        {
          bank,
        },
      ),
    );
  }
  const pcrs: PcrReplay[] = [];
  const atFault = new Set<number>();
  const mismatchKeys = new Set(cmp.mismatched.map((m) => `${m.bank}:${m.pcr}`));
  for (const m of cmp.mismatched) {
    const indices = m.events.map((e) => e.index);
    for (const i of indices) atFault.add(i);
    const details: Record<string, string> = {
      pcr: String(m.pcr),
      bank: m.bank,
      expected: toHex(m.quoted),
      observed: toHex(m.replayed),
      event_indices: indices.join(','),
    };
    const last = indices.at(-1);
    if (last !== undefined) details['event_index'] = String(last);
    const by = indices.length === 0 ? 'no event extended it' : `extended by events ${indices.join(', ')}`;
    refusals.push(
      refusal(
        'EVENTLOG_MISMATCH',
        `PCR ${m.pcr} (${m.bank}) replays to ${toHex(m.replayed)}, the quote says ${toHex(m.quoted)}; ${by}`,
        details,
      ),
    );
  }
  if (refusals.length === 0 && cmp.matched.length === 0) {
    refusals.push(
      refusal('EVENTLOG_MISMATCH', 'the quote covers no PCR to replay the event log against', {}),
    );
  }
  for (const [bank, values] of Object.entries(quoted)) {
    if (cmp.unknownBanks.includes(bank)) continue;
    for (const [key, value] of Object.entries(values)) {
      const pcr = Number(key);
      const mismatch = cmp.mismatched.find((m) => m.bank === bank && m.pcr === pcr);
      const replayed = mismatch?.replayed ?? value;
      pcrs.push({
        hashAlgorithm: algorithmOfBank(bank),
        pcr,
        quoted: value,
        replayed,
        match: !mismatchKeys.has(`${bank}:${pcr}`),
        eventIndices: extenders(log, bank, pcr),
      });
    }
  }
  pcrs.sort(
    (a, b) => Number(a.pcr) - Number(b.pcr) || String(a.hashAlgorithm).localeCompare(String(b.hashAlgorithm)),
  );

  const warnings: ReplayWarning[] = [
    ...log.warnings.map((w) => ({
      code: w.code,
      eventIndex: 0,
      message: `${w.message} (offset ${w.offset})`,
    })),
    ...cmp.replayed.warnings.map((w) => ({ code: w.code, eventIndex: w.eventIndex, message: w.message })),
  ];
  const replay: ReplayResult = {
    match: refusals.length === 0 && cmp.allMatch,
    pcrs,
    eventsAtFault: [...atFault].sort((a, b) => a - b),
    pcr0Locality: cmp.replayed.pcr0Locality,
    warnings,
  };

  const verified = new Set(cmp.verifiedEvents.map((e) => e.index));
  const events: MeasuredEvent[] = [];
  let secureBoot: SecureBootState = { verified: false };
  let secureBootFromVerified = false;
  let dbx: Uint8Array[] = [];
  let dbxEventIndex: number | undefined;
  const bootApplications: BootApplication[] = [];
  for (const e of log.events) {
    const isVerified = verified.has(e.index);
    const meaning = decodeForPolicy(e);
    events.push(measuredEvent(e, isVerified, meaning.decoded));
    // Secure Boot: the first verified measurement; an unverified one only while no verified one exists
    // (reported with verified = false so policy can say why it does not count).
    if (meaning.secureBoot !== undefined && !secureBootFromVerified) {
      if (isVerified || secureBoot.eventIndex === undefined) {
        secureBoot = { enabled: meaning.secureBoot, eventIndex: e.index, verified: isVerified };
        secureBootFromVerified = isVerified;
      }
    }
    if (!isVerified) continue;
    if (meaning.dbx !== undefined && dbxEventIndex === undefined) {
      dbx = meaning.dbx;
      dbxEventIndex = e.index;
    }
    if (meaning.bootApplication !== undefined) {
      const digest = e.digests.find((d) => d.bank === 'sha256')?.digest;
      if (digest !== undefined)
        bootApplications.push({ digest, path: meaning.bootApplication.path, eventIndex: e.index });
    }
  }
  return { replay, events, secureBoot, dbx, dbxEventIndex, bootApplications, refusals };
}

function measuredEvent(
  e: UntrustedEvent,
  verified: boolean,
  decoded: MeasuredEvent['decoded'],
): MeasuredEvent {
  return {
    index: e.index,
    offset: e.offset,
    pcr: e.pcr,
    eventType: e.type,
    eventTypeName: e.typeName.startsWith('0x') ? `UNKNOWN_${e.typeName}` : e.typeName,
    digests: e.digests.map((d) => ({ hashAlgorithm: algorithmOfBank(d.bank), digest: d.digest })),
    verified,
    decoded: decoded ?? null,
  };
}
