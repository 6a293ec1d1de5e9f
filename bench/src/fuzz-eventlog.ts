// Mutation fuzzer for @hostgate/eventlog: corpus logs, mutated (bit flips, byte sets, truncation, inflated
// length fields in record headers and in event data, records spliced between logs, duplicated chunks), go
// through parse, replay and the decoders. Anything thrown but EventLogError is a bug, as is a decoder-bug.
// Each iteration's PRNG is derived from (seed, iteration), so one iteration reproduces on its own.
// Usage: node bench/src/fuzz-eventlog.ts [--count N] [--seed S] [--start I] [--dir DIR]
import { createHash, randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  decodeEvent,
  defaultHash,
  describeEvent,
  EventLogError,
  hashFromProvider,
  parseEventLog,
  replay,
} from '@hostgate/eventlog';

/** ../shared/corpus/eventlogs beside the repo (HOSTGATE_EVENTLOG_CORPUS overrides). */
export const DEFAULT_CORPUS_DIR =
  process.env['HOSTGATE_EVENTLOG_CORPUS'] ?? resolve(import.meta.dirname, '../../../shared/corpus/eventlogs');

/** Where one record of a seed log sits, so mutations can aim at record headers. */
export interface RecordSpan {
  start: number;
  end: number;
  /** Offset of the record's eventSize field. */
  sizeField: number;
  /** Offset of the digest count (crypto-agile TCG_PCR_EVENT2 records), else -1. */
  countField: number;
}

export interface SeedLog {
  name: string;
  bytes: Uint8Array;
  /** Empty when the seed itself does not parse (it is still mutated byte-wise). */
  records: RecordSpan[];
}

/** Record spans of a log that parses; [] otherwise. */
export function recordSpans(bytes: Uint8Array): RecordSpan[] {
  let log: ReturnType<typeof parseEventLog>;
  try {
    log = parseEventLog(bytes);
  } catch {
    return [];
  }
  const spans: RecordSpan[] = [];
  const events = log.events;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const end = i + 1 < events.length ? events[i + 1]!.offset : log.parsedLength;
    const dataStart = e.data.byteOffset - bytes.byteOffset;
    const agile = log.format === 'crypto-agile' && i > 0;
    spans.push({ start: e.offset, end, sizeField: dataStart - 4, countField: agile ? e.offset + 8 : -1 });
  }
  return spans;
}

/** Every .bin in `dir` as a seed, or undefined when the directory is absent or has none. */
export function loadCorpusSeeds(dir: string): SeedLog[] | undefined {
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.bin'))
    .sort();
  if (names.length === 0) return undefined;
  return names.map((name) => {
    const bytes = new Uint8Array(readFileSync(join(dir, name)));
    return { name, bytes, records: recordSpans(bytes) };
  });
}

// --- synthetic seeds (used when the corpus is absent) ---

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
function u16(n: number): Uint8Array {
  return new Uint8Array([n & 0xff, (n >> 8) & 0xff]);
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
function utf16(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) out.set(u16(s.charCodeAt(i)), i * 2);
  return out;
}
const SYNTH_BANKS = [
  { name: 'sha1', alg: 0x0004, size: 20 },
  { name: 'sha256', alg: 0x000b, size: 32 },
] as const;

interface SynthEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
}

function synthEvents(): SynthEvent[] {
  const efiGlobal = new Uint8Array([
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
  ]);
  const variable = (name: string, value: Uint8Array) =>
    cat(efiGlobal, u32(name.length), u32(0), u32(value.length), u32(0), utf16(name), value);
  const events: SynthEvent[] = [
    { pcr: 0, type: 0x3, data: cat(ascii('StartupLocality\0'), new Uint8Array([3])) },
    { pcr: 0, type: 0x8, data: utf16('1.0\0') },
    { pcr: 0, type: 0x80000008, data: cat(u32(0xffc00000), u32(0), u32(0x400000), u32(0)) },
    { pcr: 7, type: 0x80000001, data: variable('SecureBoot', new Uint8Array([1])) },
    { pcr: 1, type: 0x80000002, data: variable('BootOrder', cat(u16(1), u16(0))) },
    { pcr: 4, type: 0x80000007, data: ascii('Calling EFI Application from Boot Option') },
    { pcr: 4, type: 0x80000003, data: cat(u32(0x1000), u32(0), u32(0x2000), u32(0), new Uint8Array(16)) },
    { pcr: 8, type: 0xd, data: ascii('grub_cmd: linux /vmlinuz root=/dev/sda1') },
    { pcr: 9, type: 0xd, data: ascii('/boot/vmlinuz\0') },
  ];
  for (let pcr = 0; pcr < 8; pcr++) events.push({ pcr, type: 0x4, data: new Uint8Array(4) });
  return events;
}

function digestOf(name: string, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(name).update(data).digest());
}

/** A crypto-agile (sha1+sha256) and a SHA-1 legacy log of a typical boot, built byte by byte. */
export function syntheticSeeds(): SeedLog[] {
  const events = synthEvents();
  const specData = cat(
    ascii('Spec ID Event03\0'),
    u32(0),
    new Uint8Array([0, 2, 0, 2]),
    u32(SYNTH_BANKS.length),
    ...SYNTH_BANKS.map((b) => cat(u16(b.alg), u16(b.size))),
    new Uint8Array([0]),
  );
  const legacy = (pcr: number, type: number, digest: Uint8Array, data: Uint8Array) =>
    cat(u32(pcr), u32(type), digest, u32(data.length), data);
  const agile = cat(
    legacy(0, 0x3, new Uint8Array(20), specData),
    ...events.map((e) =>
      cat(
        u32(e.pcr),
        u32(e.type),
        u32(SYNTH_BANKS.length),
        ...SYNTH_BANKS.map((b) =>
          cat(u16(b.alg), e.type === 0x3 ? new Uint8Array(b.size) : digestOf(b.name, e.data)),
        ),
        u32(e.data.length),
        e.data,
      ),
    ),
  );
  const sha1 = cat(
    ...events
      .filter((e) => e.type !== 0x3)
      .map((e) => legacy(e.pcr, e.type, digestOf('sha1', e.data), e.data)),
  );
  return [
    { name: 'synthetic-agile', bytes: agile, records: recordSpans(agile) },
    { name: 'synthetic-sha1', bytes: sha1, records: recordSpans(sha1) },
  ];
}

// --- PRNG and mutations ---

/** sfc32, seeded from (seed, stream) through a splitmix-style mix: one independent stream per iteration. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream: number) {
    let x = (seed ^ Math.imul(stream, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16) ^ Math.imul(stream, 0x27d4eb2f)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 0x100000000) * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

export const MUTATIONS = [
  'bit-flip',
  'byte-set',
  'truncate',
  'inflate-length',
  'inflate-body',
  'splice',
  'duplicate',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Largest mutated log; splices and duplications stop growing past it. */
const MAX_MUTATED = 512 * 1024;

function insert(buf: Uint8Array, at: number, chunk: Uint8Array): Uint8Array {
  const room = Math.max(0, MAX_MUTATED - buf.length);
  const c = chunk.length > room ? chunk.subarray(0, room) : chunk;
  return cat(buf.subarray(0, at), c, buf.subarray(at));
}

function setU32(buf: Uint8Array, at: number, v: number): void {
  if (at < 0 || at + 4 > buf.length) return;
  new DataView(buf.buffer, buf.byteOffset, buf.byteLength).setUint32(at, v >>> 0, true);
}

function getU32(buf: Uint8Array, at: number): number {
  if (at < 0 || at + 4 > buf.length) return 0;
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(at, true);
}

function interesting(rng: Rng, current: number, left: number): number {
  return rng.pick([
    current + 1,
    current + 1 + rng.below(64),
    current * 2 + 1,
    left + 1,
    left + 1 + rng.below(16),
    0,
    0x7fffffff,
    0xffffffff,
    0x80000000,
    (16 << 20) + 1,
    (64 << 20) + 1,
    rng.u32(),
  ]);
}

/**
 * One mutated log from `seeds`: 1–4 mutations of one seed. Record-aware mutations use the seed's
 * record table until a mutation moves bytes, then fall back to random positions.
 */
export function mutate(seeds: readonly SeedLog[], rng: Rng): { bytes: Uint8Array; applied: Mutation[] } {
  const base = rng.pick(seeds);
  let buf: Uint8Array = new Uint8Array(base.bytes);
  let records: RecordSpan[] = base.records;
  const n = 1 + (rng.below(4) === 0 ? 1 + rng.below(3) : 0);
  const applied: Mutation[] = [];
  for (let k = 0; k < n; k++) {
    const m = rng.pick(MUTATIONS);
    applied.push(m);
    switch (m) {
      case 'bit-flip': {
        const flips = 1 + rng.below(8);
        for (let i = 0; i < flips && buf.length > 0; i++) buf[rng.below(buf.length)]! ^= 1 << rng.below(8);
        break;
      }
      case 'byte-set': {
        const sets = 1 + rng.below(4);
        for (let i = 0; i < sets && buf.length > 0; i++) {
          const at = rng.below(buf.length);
          const run = rng.below(4) === 0 ? 1 + rng.below(8) : 1;
          const v = rng.pick([0x00, 0xff, rng.below(256)]);
          buf.fill(v, at, Math.min(buf.length, at + run));
        }
        break;
      }
      case 'truncate': {
        let at: number;
        if (records.length > 0 && rng.below(2) === 0) {
          const r = rng.pick(records);
          at = Math.max(0, Math.min(buf.length, r.start + rng.below(r.end - r.start + 9) - 4));
        } else {
          at = rng.below(buf.length + 1);
        }
        buf = buf.subarray(0, at);
        records = records.filter((r) => r.end <= at);
        break;
      }
      case 'inflate-length': {
        if (records.length === 0) {
          const at = rng.below(Math.max(1, buf.length - 3));
          setU32(buf, at, interesting(rng, getU32(buf, at), buf.length - at - 4));
          break;
        }
        const r = rng.pick(records);
        const field =
          r.countField >= 0 && rng.below(3) === 0
            ? r.countField
            : rng.below(5) === 0
              ? r.start + 4 * rng.below(3)
              : r.sizeField;
        setU32(buf, field, interesting(rng, getU32(buf, field), buf.length - field - 4));
        break;
      }
      case 'inflate-body': {
        // Lengths inside event data (variable name/data sizes, device path node lengths, list sizes).
        const bodies = records.filter((r) => r.end - (r.sizeField + 4) >= 4);
        if (bodies.length === 0) {
          const at = rng.below(Math.max(1, buf.length - 3));
          setU32(buf, at, interesting(rng, getU32(buf, at), buf.length - at - 4));
          break;
        }
        const r = rng.pick(bodies);
        const dataStart = r.sizeField + 4;
        const at = dataStart + (rng.below(r.end - dataStart - 3) & ~1);
        if (rng.below(2) === 0) {
          const v = interesting(rng, getU32(buf, at) & 0xffff, r.end - at - 2) & 0xffff;
          if (at + 2 <= buf.length) buf.set([v & 0xff, v >> 8], at);
        } else {
          setU32(buf, at, interesting(rng, getU32(buf, at), r.end - at - 4));
        }
        break;
      }
      case 'splice': {
        const other = rng.pick(seeds);
        let chunk: Uint8Array;
        if (other.records.length > 0) {
          const i = rng.below(other.records.length);
          const j = Math.min(other.records.length, i + 1 + rng.below(8));
          chunk = other.bytes.subarray(other.records[i]!.start, other.records[j - 1]!.end);
        } else {
          const a = rng.below(other.bytes.length + 1);
          chunk = other.bytes.subarray(a, a + rng.below(256));
        }
        const at = records.length > 0 ? rng.pick(records).start : rng.below(buf.length + 1);
        if (rng.below(3) === 0) buf = cat(buf.subarray(0, at), chunk).subarray(0, MAX_MUTATED);
        else buf = insert(buf, at, chunk);
        records = [];
        break;
      }
      case 'duplicate': {
        let a: number;
        let len: number;
        if (records.length > 0 && rng.below(2) === 0) {
          const r = rng.pick(records);
          a = r.start;
          len = r.end - r.start;
        } else {
          a = rng.below(buf.length + 1);
          len = rng.below(Math.min(4096, buf.length - a) + 1);
        }
        const chunk = buf.slice(a, a + len);
        const times = 1 + (rng.below(4) === 0 ? rng.below(16) : 0);
        const at = rng.below(2) === 0 ? a + len : rng.below(buf.length + 1);
        for (let t = 0; t < times; t++) buf = insert(buf, at, chunk);
        records = [];
        break;
      }
    }
  }
  return { bytes: buf, applied };
}

// --- the target ---

const hash = hashFromProvider(defaultHash);

/** A fault the fuzzer reports that is not a thrown exception (decoder-bug result, bad error offset). */
export class FuzzFinding extends Error {
  override readonly name = 'FuzzFinding';
}

/**
 * Parse, replay and decode every event (with the digest check) and describe it. Returns 'accepted'
 * or the code of the EventLogError that refused the log; anything else propagates.
 */
export function exercise(bytes: Uint8Array): string {
  let outcome = 'accepted';
  let log: ReturnType<typeof parseEventLog>;
  try {
    log = parseEventLog(bytes);
  } catch (e) {
    if (!(e instanceof EventLogError)) throw e;
    checkError(e, bytes);
    return e.code;
  }
  try {
    replay(log);
  } catch (e) {
    if (!(e instanceof EventLogError)) throw e;
    checkError(e, bytes);
    outcome = e.code;
  }
  for (const event of log.events) {
    const decoded = decodeEvent(event, hash);
    if (decoded.kind === 'raw' && decoded.error?.code === 'decoder-bug') {
      throw new FuzzFinding(
        `decodeEvent reported decoder-bug on event ${event.index}: ${decoded.error.message}`,
      );
    }
    describeEvent(decoded);
  }
  return outcome;
}

function checkError(e: EventLogError, bytes: Uint8Array): void {
  if (!Number.isInteger(e.offset) || e.offset < 0 || e.offset > bytes.length) {
    throw new FuzzFinding(
      `EventLogError ${e.code} names offset ${e.offset} outside the ${bytes.length}-byte input`,
    );
  }
}

// --- the driver ---

export interface FuzzOptions {
  seeds: readonly SeedLog[];
  count: number;
  seed: number;
  /** First iteration number (to reproduce one iteration: start = I, count = 1). */
  start?: number;
  /** Called about every 5 %. */
  onProgress?: (done: number, summary: FuzzSummary) => void;
  /** Replaces `exercise` (tests use it to prove failures are caught). */
  target?: (bytes: Uint8Array) => string;
}

export interface FuzzSummary {
  seed: number;
  iterations: number;
  accepted: number;
  /** EventLogError code → count. */
  refused: Record<string, number>;
  mutations: Record<Mutation, number>;
  elapsedMs: number;
}

export interface FuzzFailure {
  seed: number;
  iteration: number;
  input: Uint8Array;
  applied: Mutation[];
  error: unknown;
}

export function runFuzz(options: FuzzOptions): { summary: FuzzSummary; failure?: FuzzFailure } {
  const { seeds, count, seed } = options;
  const start = options.start ?? 0;
  const target = options.target ?? exercise;
  const mutations = Object.fromEntries(MUTATIONS.map((m) => [m, 0])) as Record<Mutation, number>;
  const summary: FuzzSummary = { seed, iterations: 0, accepted: 0, refused: {}, mutations, elapsedMs: 0 };
  const step = Math.max(1, Math.round(count / 20));
  const t0 = performance.now();
  for (let i = start; i < start + count; i++) {
    const { bytes, applied } = mutate(seeds, new Rng(seed, i));
    for (const m of applied) mutations[m]++;
    let outcome: string;
    try {
      outcome = target(bytes);
    } catch (error) {
      summary.elapsedMs = performance.now() - t0;
      return { summary, failure: { seed, iteration: i, input: bytes, applied, error } };
    }
    summary.iterations++;
    if (outcome === 'accepted') summary.accepted++;
    else summary.refused[outcome] = (summary.refused[outcome] ?? 0) + 1;
    if (options.onProgress && summary.iterations % step === 0 && summary.iterations < count) {
      summary.elapsedMs = performance.now() - t0;
      options.onProgress(summary.iterations, summary);
    }
  }
  summary.elapsedMs = performance.now() - t0;
  return { summary };
}

/** `hexdump -C` style dump. */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let o = 0; o < bytes.length; o += 16) {
    const row = bytes.subarray(o, o + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${o.toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${text}|`);
  }
  lines.push(bytes.length.toString(16).padStart(8, '0'));
  return `${lines.join('\n')}\n`;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '1000000' },
      seed: { type: 'string' },
      start: { type: 'string', default: '0' },
      dir: { type: 'string' },
    },
    strict: true,
  });
  const count = Number(values.count);
  const start = Number(values.start);
  const seed = values.seed === undefined ? randomInt(0, 0x100000000) : Number(values.seed);
  if (![count, start, seed].every((n) => Number.isSafeInteger(n) && n >= 0) || seed > 0xffffffff) {
    console.error('fuzz-eventlog: --count, --start and --seed (u32) take non-negative integers');
    return 2;
  }
  const dir = values.dir ?? DEFAULT_CORPUS_DIR;
  const corpus = loadCorpusSeeds(dir);
  const seeds = corpus ?? syntheticSeeds();
  const source = corpus
    ? `${seeds.length} corpus logs from ${dir}`
    : `corpus absent (${dir}): ${seeds.length} synthetic seed logs`;
  console.log(`fuzz-eventlog: seed ${seed}, iterations ${start}..${start + count - 1}, ${source}`);
  const fmt = (s: FuzzSummary) => {
    const secs = s.elapsedMs / 1000;
    return `accepted ${s.accepted}, refused ${s.iterations - s.accepted}, ${secs.toFixed(1)} s, ${Math.round(s.iterations / secs)}/s`;
  };
  const { summary, failure } = runFuzz({
    seeds,
    count,
    seed,
    start,
    onProgress: (done, s) =>
      console.log(`  ${done}/${count} (${Math.round((done / count) * 100)} %) ${fmt(s)}`),
  });
  if (failure) {
    const stem = `/tmp/hostgate-fuzz-eventlog-seed${seed}-iter${failure.iteration}`;
    writeFileSync(`${stem}.bin`, failure.input);
    writeFileSync(`${stem}.hex`, hexDump(failure.input));
    const err = failure.error;
    console.error(
      `FAIL seed ${seed} iteration ${failure.iteration} (mutations: ${failure.applied.join(', ')})`,
    );
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    console.error(`input: ${stem}.bin (${failure.input.length} bytes), hex dump: ${stem}.hex`);
    console.error(
      `reproduce: node bench/src/fuzz-eventlog.ts --seed ${seed} --start ${failure.iteration} --count 1`,
    );
    return 1;
  }
  const codes = Object.entries(summary.refused).sort((a, b) => b[1] - a[1]);
  console.log(`done: ${summary.iterations} iterations, ${fmt(summary)}`);
  console.log(`  EventLogError codes: ${codes.map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}`);
  console.log(
    `  mutations applied: ${Object.entries(summary.mutations)
      .map(([m, n]) => `${m} ${n}`)
      .join(', ')}`,
  );
  return 0;
}

if (import.meta.main) process.exitCode = main();
