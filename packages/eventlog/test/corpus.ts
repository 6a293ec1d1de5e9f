// Access to the shared real-log corpus (../shared/corpus/eventlogs beside the repo), read in
// place and never copied. Tests skip when it is absent.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// HOSTGATE_EVENTLOG_CORPUS points elsewhere (used to prove the tests skip when it is absent).
export const CORPUS_DIR =
  process.env['HOSTGATE_EVENTLOG_CORPUS'] ??
  resolve(import.meta.dirname, '../../../../shared/corpus/eventlogs');
export const corpusPresent = existsSync(join(CORPUS_DIR, 'MANIFEST.tsv'));

export type PcrJson = Record<string, Record<string, string>>;

export interface ManifestRow {
  file: string;
  format: string;
  banks: string;
  eventCount: number;
  notes: string;
}

export interface ExpectedSource {
  repo: string;
  path: string;
  what: string;
  pcrs: PcrJson;
  agreement: { independent_replay: { absent: string[] } };
}

export interface CorpusLog {
  name: string;
  path: string;
  bytes: Uint8Array;
  manifest: ManifestRow | undefined;
  /** Values the source recorded (ground truth), one entry per source. */
  expected: ExpectedSource[] | undefined;
  /** Replay where tpm2_eventlog 5.4 is known wrong. */
  independent: PcrJson | undefined;
  /** tpm2_eventlog 5.4 replay (not ground truth). */
  tpm2Eventlog: PcrJson | undefined;
}

function readJson<T>(path: string): T | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : undefined;
}

function manifest(): Map<string, ManifestRow> {
  const rows = new Map<string, ManifestRow>();
  const lines = readFileSync(join(CORPUS_DIR, 'MANIFEST.tsv'), 'utf8').split('\n').filter(Boolean);
  const header = lines[0]?.split('\t') ?? [];
  const col = (name: string) => header.indexOf(name);
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    const file = f[col('file')] ?? '';
    rows.set(file, {
      file,
      format: f[col('format')] ?? '',
      banks: f[col('banks')] ?? '',
      eventCount: Number(f[col('event_count')] ?? Number.NaN),
      notes: f[col('notes')] ?? '',
    });
  }
  return rows;
}

export function corpusLogs(): CorpusLog[] {
  if (!corpusPresent) return [];
  const rows = manifest();
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((name) => {
      const path = join(CORPUS_DIR, name);
      return {
        name,
        path,
        bytes: new Uint8Array(readFileSync(path)),
        manifest: rows.get(name),
        expected: readJson<{ sources: ExpectedSource[] }>(`${path}.expected.json`)?.sources,
        independent: readJson<PcrJson>(`${path}.pcrs-independent.json`),
        tpm2Eventlog: readJson<PcrJson>(`${path}.pcrs.json`),
      };
    });
}
