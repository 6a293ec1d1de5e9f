// hostgate eventlog: replay TCG boot event logs into PCR values, or show their events.
// A log that cannot be parsed costs one stderr line and exit status 1; the others still run.
import { open } from 'node:fs/promises';
import {
  type DecodedEvent,
  decodeEvent,
  defaultHash,
  describeEvent,
  EV_NO_ACTION,
  EventLogError,
  type EventLog,
  parseEventLog,
  pcrsToJson,
  replay,
  toHex,
  type UntrustedEvent,
} from '@hostgate/eventlog';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';

const USAGE = `usage: hostgate eventlog replay [--json] FILE...
       hostgate eventlog show FILE

  replay   replay each log into PCR values per bank (PC Client rules: EV_NO_ACTION is
           never extended, StartupLocality / H-CRTM set PCR0's start, PCRs 17-22 start
           all-ones); --json prints one line per file:
           {"file","format","banks","events","pcrs":{"sha256":{"0":"hex",...},...}}
  show     list the events of a log: index, PCR, type, sha256 digest prefix, whether the
           digest matches the data (ok, quirk: ok after a known firmware quirk,
           MISMATCH, - when the type is not checkable), description

Nothing in a log is trusted until its PCRs match a verified quote.`;

/** One-line description of why a file was refused, the CLI's stable error format. */
function refusal(file: string, err: unknown): string {
  if (err instanceof EventLogError) {
    const at = err.eventIndex >= 0 ? ` (event ${err.eventIndex})` : '';
    return `hostgate: ${file}: ${err.code} at offset ${err.offset}${at}: ${err.reason}`;
  }
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && typeof e.syscall === 'string')
    return `hostgate: ${file}: cannot read: ${e.code}`;
  throw err; // a bug, not a bad input: main prints it
}

// The parser's own cap. A regular file over it is refused from its size, before reading;
// anything whose size says nothing (a pipe, /dev/zero, a sysfs file reporting 0) is read
// in chunks and refused as soon as it passes the cap, so no input is ever slurped whole.
const MAX_LOG_BYTES = 64 << 20;
const CHUNK = 1 << 20;

function tooLarge(size: number | string): EventLogError {
  return new EventLogError('too-large', `event log is ${size} bytes, limit ${MAX_LOG_BYTES}`, 0, -1);
}

async function readCapped(file: string): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size > MAX_LOG_BYTES) throw tooLarge(size);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(Math.min(CHUNK, MAX_LOG_BYTES + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > MAX_LOG_BYTES) throw tooLarge(`more than ${MAX_LOG_BYTES}`);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function load(file: string): Promise<EventLog> {
  return parseEventLog(await readCapped(file), { maxLogSize: MAX_LOG_BYTES });
}

function warn(file: string, lines: string[]): void {
  for (const l of lines) process.stderr.write(`hostgate: ${file}: warning: ${l}\n`);
}

async function replayFiles(files: string[], json: boolean): Promise<number> {
  let status = EXIT_OK;
  for (const file of files) {
    let out: string;
    try {
      const log = await load(file);
      const r = replay(log);
      warn(file, [
        ...log.warnings.map((w) => `${w.code} at offset ${w.offset}: ${w.message}`),
        ...r.warnings.map((w) => `${w.code} (event ${w.eventIndex}): ${w.message}`),
      ]);
      const pcrs = pcrsToJson(r.pcrs);
      const banks = log.banks.map((b) => b.name);
      if (json) {
        out = `${JSON.stringify({ file, format: log.format, banks, events: log.events.length, pcrs })}\n`;
      } else {
        const lines = [`${file}: ${log.format}, ${log.events.length} events, banks ${banks.join(' ')}`];
        if (r.pcr0Locality !== 0)
          lines.push(`  PCR0 start locality ${r.pcr0Locality}${r.hcrtm ? ' (H-CRTM)' : ''}`);
        for (const [bank, values] of Object.entries(pcrs))
          for (const [pcr, hex] of Object.entries(values))
            lines.push(`  ${bank.padEnd(7)} ${pcr.padStart(2)}  ${hex}`);
        if (Object.keys(pcrs).length === 0) lines.push('  (no PCR extended)');
        out = `${lines.join('\n')}\n`;
      }
    } catch (err) {
      process.stderr.write(`${refusal(file, err)}\n`);
      status = EXIT_REFUSED;
      continue;
    }
    process.stdout.write(out);
  }
  return status;
}

function pcrLabel(e: UntrustedEvent): string {
  return e.pcr <= 99 ? String(e.pcr) : `0x${e.pcr.toString(16)}`;
}

function digestPrefix(e: UntrustedEvent): string {
  if (e.type === EV_NO_ACTION) return '-';
  const d = e.digests.find((x) => x.bank === 'sha256') ?? e.digests[0];
  if (d === undefined) return '-';
  const hex = toHex(d.digest.subarray(0, 8));
  return d.bank === 'sha256' ? hex : `${d.bank}:${hex}`;
}

// Whether the event's digest is a hash of its data, for types where it must be (PFP 10.4).
function digestMark(d: DecodedEvent): string {
  const c = d.digestCheck;
  if (c === undefined || !c.checked) return '-';
  if (!c.ok) return 'MISMATCH';
  return c.quirk === undefined ? 'ok' : 'quirk';
}

async function show(file: string): Promise<number> {
  let log: EventLog;
  try {
    log = await load(file);
  } catch (err) {
    process.stderr.write(`${refusal(file, err)}\n`);
    return EXIT_REFUSED;
  }
  warn(
    file,
    log.warnings.map((w) => `${w.code} at offset ${w.offset}: ${w.message}`),
  );
  const hash = (bank: string, bytes: Uint8Array) =>
    defaultHash.supports(bank) ? defaultHash.digest(bank, bytes) : undefined;
  const rows = log.events.map((e) => {
    const decoded = decodeEvent(e, hash);
    return [
      String(e.index),
      pcrLabel(e),
      e.typeName,
      digestPrefix(e),
      digestMark(decoded),
      describeEvent(decoded),
    ];
  });
  const header = ['#', 'PCR', 'TYPE', 'SHA256', 'DATA', 'DESCRIPTION'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : i < 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ');
  const banks = log.banks.map((b) => b.name).join(' ');
  process.stdout.write(
    `${file}: ${log.format}, ${log.events.length} events, banks ${banks} (untrusted until replayed against a quote)\n`,
  );
  process.stdout.write(`${[fmt(header), ...rows.map(fmt)].join('\n')}\n`);
  return EXIT_OK;
}

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new CliUsageError('missing subcommand (replay, show)');
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  let json = false;
  const files: string[] = [];
  let optionsDone = false;
  for (const a of rest) {
    if (!optionsDone && a === '--') optionsDone = true;
    else if (!optionsDone && (a === '--help' || a === '-h')) {
      process.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    } else if (!optionsDone && a === '--json' && sub === 'replay') json = true;
    else if (!optionsDone && a.startsWith('-') && a !== '-') throw new CliUsageError(`unknown option '${a}'`);
    else files.push(a);
  }
  if (sub === 'replay') {
    if (files.length === 0) throw new CliUsageError('replay needs at least one FILE');
    return replayFiles(files, json);
  }
  if (sub === 'show') {
    if (files.length !== 1) throw new CliUsageError('show takes exactly one FILE');
    return show(files[0]!);
  }
  throw new CliUsageError(`unknown subcommand '${sub}' (replay, show)`);
};
