// Parser for TCG PC Client boot event logs: SHA-1 legacy (TCG_PCR_EVENT records) and
// crypto-agile (Spec ID Event03 header, then TCG_PCR_EVENT2), PC Client PFP spec 10.2.
// Parsing grants no trust: everything here is untrusted until replayed against a quote.
import { ALG_SHA1, type BankInfo, type BankName, KNOWN_ALGORITHMS } from './algorithms.ts';
import { latin1Text, u16le, u32le } from './bytes.ts';
import { EventLogError } from './errors.ts';
import { EV_NO_ACTION, eventTypeName } from './event-types.ts';

/** Which record format the log uses. */
export type EventLogFormat = 'sha1-legacy' | 'crypto-agile';

/** One digest of one event. */
export interface EventDigest {
  readonly bank: BankName;
  readonly algId: number;
  readonly digest: Uint8Array;
}

/** One record of the log, exactly as read. Nothing in it is trusted until replay matches a quote. */
export interface UntrustedEvent {
  /** Position in the log, 0 = first record (the Spec ID header in crypto-agile logs). */
  readonly index: number;
  /** Byte offset of the record. */
  readonly offset: number;
  /** PCR (or, in CCEL logs, measurement register) index as written in the record. */
  readonly pcr: number;
  readonly type: number;
  readonly typeName: string;
  /** One digest per bank, in the order the record lists them. */
  readonly digests: readonly EventDigest[];
  /** Event data (a view into the log bytes). */
  readonly data: Uint8Array;
}

/** Contents of the TCG_EfiSpecIdEvent header (crypto-agile logs only). */
export interface SpecIdEvent {
  readonly platformClass: number;
  readonly specVersion: { readonly major: number; readonly minor: number; readonly errata: number };
  readonly uintnSize: number;
  readonly vendorInfo: Uint8Array;
}

/** A non-fatal oddity found while parsing. */
export interface ParseWarning {
  readonly code: 'trailing-bytes' | 'specid-vendorinfo-truncated' | 'padding' | 'no-digests';
  readonly offset: number;
  readonly message: string;
}

/** A parsed, unverified event log. */
export interface EventLog {
  readonly format: EventLogFormat;
  /** Banks the log carries, in declaration order. */
  readonly banks: readonly BankInfo[];
  /** Spec ID header, when the log is crypto-agile. */
  readonly specId: SpecIdEvent | undefined;
  readonly events: readonly UntrustedEvent[];
  readonly warnings: readonly ParseWarning[];
  /** Bytes consumed by records (the rest was padding or reported trailing bytes). */
  readonly parsedLength: number;
}

/** Limits that keep a hostile log from costing unbounded memory or time. */
export interface ParseOptions {
  /** Largest log accepted, bytes (default 64 MiB). */
  maxLogSize?: number;
  /** Largest single event data, bytes (default 16 MiB). */
  maxEventSize?: number;
  /** Most records accepted (default 100,000). */
  maxEvents?: number;
  /** Highest PCR index a measured (not EV_NO_ACTION) event may name (default 23). */
  maxPcrIndex?: number;
  /** Refuse trailing bytes and truncated Spec ID vendor info instead of warning (default false). */
  strict?: boolean;
}

const DEFAULTS = {
  maxLogSize: 64 << 20,
  maxEventSize: 16 << 20,
  maxEvents: 100_000,
  maxPcrIndex: 23,
  strict: false,
};
type Limits = Required<ParseOptions>;
const SPEC_ID_03 = 'Spec ID Event03\0';
const LEGACY_HEADER = 32; // pcrIndex, eventType, SHA-1 digest, eventSize
const MAX_SPEC_ALGORITHMS = 16;

/** Parse a boot event log. Throws EventLogError (and nothing else) on any malformed input. */
export function parseEventLog(bytes: Uint8Array, options: ParseOptions = {}): EventLog {
  const opts: Limits = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options))
    if (v !== undefined && k in DEFAULTS) Object.assign(opts, { [k]: v });
  if (bytes.length === 0) throw new EventLogError('empty', 'event log is empty', 0, -1);
  if (bytes.length > opts.maxLogSize)
    throw new EventLogError(
      'too-large',
      `event log is ${bytes.length} bytes, limit ${opts.maxLogSize}`,
      0,
      -1,
    );
  // A first record naming an impossible PCR is not a log at all: say so rather than
  // "truncated", which matters for text files handed in by mistake.
  if (bytes.length >= 8 && u32le(bytes, 4) !== EV_NO_ACTION && u32le(bytes, 0) > opts.maxPcrIndex)
    throw new EventLogError('not-an-event-log', 'first record is not a TCG event', 0, 0);
  if (bytes.length < LEGACY_HEADER)
    throw new EventLogError('truncated', `event log is ${bytes.length} bytes, shorter than one record`, 0, 0);

  const warnings: ParseWarning[] = [];
  const events: UntrustedEvent[] = [];
  const padding = paddingStart(bytes);
  const first = readLegacyRecord(bytes, 0, 0, opts);
  events.push(first.event);
  let offset = first.next;

  const isSpecId03 =
    first.type === EV_NO_ACTION &&
    first.event.data.length >= 16 &&
    latin1Text(first.event.data.subarray(0, 16)) === SPEC_ID_03;

  if (!isSpecId03) {
    const banks: BankInfo[] = [{ name: 'sha1', algId: ALG_SHA1, digestSize: 20 }];
    while (offset < bytes.length) {
      if (endsHere(bytes, offset, padding, LEGACY_HEADER, opts.strict, warnings, events.length)) break;
      checkCount(events.length, opts.maxEvents, offset);
      const r = readLegacyRecord(bytes, offset, events.length, opts);
      events.push(r.event);
      offset = r.next;
    }
    return { format: 'sha1-legacy', banks, specId: undefined, events, warnings, parsedLength: offset };
  }

  const { specId, banks } = parseSpecId(
    first.event.data,
    first.event.offset + LEGACY_HEADER,
    opts.strict,
    warnings,
  );
  const byAlg = new Map(banks.map((b) => [b.algId, b]));
  const minRecord = 12 + 4; // pcrIndex, eventType, count, eventSize (a record may carry no digest)
  const noDigests: UntrustedEvent[] = [];
  while (offset < bytes.length) {
    if (endsHere(bytes, offset, padding, minRecord, opts.strict, warnings, events.length)) break;
    checkCount(events.length, opts.maxEvents, offset);
    const r = readAgileRecord(bytes, offset, events.length, byAlg, opts);
    if (r.event.digests.length === 0) noDigests.push(r.event);
    events.push(r.event);
    offset = r.next;
  }
  // Accepted (such a record extends nothing), but never written by a TPM-aware producer: zero
  // bytes followed by something else, before the padding, parse as runs of these.
  const firstEmpty = noDigests[0];
  if (firstEmpty !== undefined)
    warnings.push({
      code: 'no-digests',
      offset: firstEmpty.offset,
      message: `${noDigests.length} record(s) carry no digest, the first is event ${firstEmpty.index}`,
    });
  return { format: 'crypto-agile', banks, specId, events, warnings, parsedLength: offset };
}

function checkCount(n: number, max: number, offset: number): void {
  if (n >= max) throw new EventLogError('too-many-events', `more than ${max} events`, offset, n);
}

// Where the log's trailing run of 0x00 or 0xFF bytes begins (bytes.length when there is none).
// Found once, so the padding check at each record boundary is O(1): rescanning the rest of
// the log per record would be quadratic on a hostile log of zeros ending in one other byte.
function paddingStart(bytes: Uint8Array): number {
  const last = bytes[bytes.length - 1];
  if (last !== 0 && last !== 0xff) return bytes.length;
  let p = bytes.length;
  while (p > 0 && bytes[p - 1] === last) p--;
  return p;
}

// At a record boundary: all-0x00 or all-0xFF bytes are padding (ACPI tables, fixed-size
// buffers); fewer bytes than the smallest record are reported as trailing bytes.
function endsHere(
  bytes: Uint8Array,
  offset: number,
  padding: number,
  minRecord: number,
  strict: boolean,
  warnings: ParseWarning[],
  index: number,
): boolean {
  const rest = bytes.length - offset;
  if (offset >= padding) {
    warnings.push({ code: 'padding', offset, message: `${rest} bytes of padding` });
    return true;
  }
  if (rest < minRecord) {
    const message = `${rest} trailing bytes after the last event`;
    if (strict) throw new EventLogError('trailing-bytes', message, offset, index);
    warnings.push({ code: 'trailing-bytes', offset, message });
    return true;
  }
  return false;
}

interface ReadResult {
  event: UntrustedEvent;
  type: number;
  pcr: number;
  next: number;
}

function readLegacyRecord(bytes: Uint8Array, offset: number, index: number, opts: Limits): ReadResult {
  if (bytes.length - offset < LEGACY_HEADER)
    throw new EventLogError('truncated', 'record header runs past the end of the log', offset, index);
  const pcr = u32le(bytes, offset);
  const type = u32le(bytes, offset + 4);
  const digest = bytes.subarray(offset + 8, offset + 28);
  const size = u32le(bytes, offset + 28);
  const dataAt = offset + LEGACY_HEADER;
  checkPcr(pcr, type, opts.maxPcrIndex, offset, index);
  const data = readData(bytes, dataAt, size, index, offset + 28, opts);
  const event: UntrustedEvent = {
    index,
    offset,
    pcr,
    type,
    typeName: eventTypeName(type),
    digests: [{ bank: 'sha1', algId: ALG_SHA1, digest }],
    data,
  };
  return { event, type, pcr, next: dataAt + size };
}

function readAgileRecord(
  bytes: Uint8Array,
  offset: number,
  index: number,
  byAlg: Map<number, BankInfo>,
  opts: Limits,
): ReadResult {
  if (bytes.length - offset < 12)
    throw new EventLogError('truncated', 'record header runs past the end of the log', offset, index);
  const pcr = u32le(bytes, offset);
  const type = u32le(bytes, offset + 4);
  const count = u32le(bytes, offset + 8);
  checkPcr(pcr, type, opts.maxPcrIndex, offset, index);
  // PFP 10.2.2 wants one digest per declared bank, but real tools write fewer (tpm2-tools'
  // event-uefiaction fixture: 2 of 4); a bank without a digest is simply not extended.
  // More digests than banks cannot be valid: each must be a distinct declared bank.
  if (count > byAlg.size)
    throw new EventLogError(
      'digest-count-mismatch',
      `record has ${count} digests, the log declares ${byAlg.size} banks`,
      offset + 8,
      index,
    );
  let p = offset + 12;
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    if (bytes.length - p < 2)
      throw new EventLogError('truncated', 'digest runs past the end of the log', p, index);
    const algId = u16le(bytes, p);
    const bank = byAlg.get(algId);
    if (bank === undefined)
      throw new EventLogError(
        'undeclared-algorithm',
        `digest algorithm 0x${algId.toString(16).padStart(4, '0')} is not declared in the Spec ID event`,
        p,
        index,
      );
    if (digests.some((d) => d.algId === algId))
      throw new EventLogError('duplicate-digest', `two ${bank.name} digests in one record`, p, index);
    p += 2;
    if (bytes.length - p < bank.digestSize)
      throw new EventLogError('truncated', 'digest runs past the end of the log', p, index);
    digests.push({ bank: bank.name, algId, digest: bytes.subarray(p, p + bank.digestSize) });
    p += bank.digestSize;
  }
  if (bytes.length - p < 4)
    throw new EventLogError('truncated', 'event size runs past the end of the log', p, index);
  const size = u32le(bytes, p);
  const data = readData(bytes, p + 4, size, index, p, opts);
  return {
    event: { index, offset, pcr, type, typeName: eventTypeName(type), digests, data },
    type,
    pcr,
    next: p + 4 + size,
  };
}

function readData(
  bytes: Uint8Array,
  at: number,
  size: number,
  index: number,
  sizeOffset: number,
  opts: Limits,
): Uint8Array {
  if (size > opts.maxEventSize)
    throw new EventLogError(
      'event-too-large',
      `event data of ${size} bytes, limit ${opts.maxEventSize}`,
      sizeOffset,
      index,
    );
  if (bytes.length - at < size)
    throw new EventLogError(
      'truncated',
      `event declares ${size} data bytes, ${bytes.length - at} left in the log`,
      sizeOffset,
      index,
    );
  return bytes.subarray(at, at + size);
}

function checkPcr(pcr: number, type: number, max: number, offset: number, index: number): void {
  // EV_NO_ACTION is never extended, so any index is harmless there (Windows logs use 0xFFFFFFFF).
  if (type !== EV_NO_ACTION && pcr > max)
    throw new EventLogError('pcr-index-out-of-range', `PCR index ${pcr} is above ${max}`, offset, index);
}

// TCG_EfiSpecIdEvent (PFP 10.4.5.1): signature[16], platformClass u32, versions u8×3,
// uintnSize u8, numberOfAlgorithms u32, {algId u16, digestSize u16}×n, vendorInfoSize u8, vendorInfo.
function parseSpecId(
  data: Uint8Array,
  base: number,
  strict: boolean,
  warnings: ParseWarning[],
): { specId: SpecIdEvent; banks: BankInfo[] } {
  const bad = (message: string, at: number) => new EventLogError('bad-spec-id', message, base + at, 0);
  if (data.length < 29) throw bad('Spec ID event is too short', 0);
  const platformClass = u32le(data, 16);
  const specVersion = { minor: data[20]!, major: data[21]!, errata: data[22]! };
  const uintnSize = data[23]!;
  const n = u32le(data, 24);
  if (n === 0) throw bad('Spec ID event declares no digest algorithms', 24);
  if (n > MAX_SPEC_ALGORITHMS) throw bad(`Spec ID event declares ${n} digest algorithms`, 24);
  let p = 28;
  if (data.length - p < n * 4 + 1) throw bad('Spec ID algorithm list runs past the event', p);
  const banks: BankInfo[] = [];
  for (let i = 0; i < n; i++) {
    const algId = u16le(data, p);
    const digestSize = u16le(data, p + 2);
    const known = KNOWN_ALGORITHMS.get(algId);
    const hexId = `0x${algId.toString(16).padStart(4, '0')}`;
    if (known === undefined)
      throw new EventLogError('unknown-algorithm', `unknown digest algorithm ${hexId}`, base + p, 0);
    if (known.digestSize !== digestSize)
      throw bad(`${known.name} declared with digest size ${digestSize}, expected ${known.digestSize}`, p + 2);
    if (banks.some((b) => b.algId === algId)) throw bad(`${known.name} declared twice`, p);
    banks.push({ name: known.name, algId, digestSize });
    p += 4;
  }
  const vendorSize = data[p]!;
  p += 1;
  let vendorInfo = data.subarray(p, p + vendorSize);
  if (data.length - p < vendorSize) {
    const message = `Spec ID vendorInfoSize is ${vendorSize}, only ${data.length - p} bytes left in the event`;
    if (strict) throw bad(message, p - 1);
    warnings.push({ code: 'specid-vendorinfo-truncated', offset: base + p - 1, message });
    vendorInfo = data.subarray(p);
  }
  return { specId: { platformClass, specVersion, uintnSize, vendorInfo }, banks };
}
