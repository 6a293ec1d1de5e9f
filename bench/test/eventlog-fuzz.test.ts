// The event log fuzzer's core in CI (20,000 iterations), proof that it catches and reproduces a
// failure, and the fuzzer and benchmark CLIs end to end with tiny counts.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import {
  DEFAULT_CORPUS_DIR,
  exercise,
  loadCorpusSeeds,
  MUTATIONS,
  mutate,
  Rng,
  runFuzz,
  syntheticSeeds,
} from '../src/fuzz-eventlog.ts';

const execP = promisify(execFile);
const SRC = resolve(import.meta.dirname, '../src');
const seeds = loadCorpusSeeds(DEFAULT_CORPUS_DIR) ?? syntheticSeeds();

test('20,000 mutated logs raise nothing but EventLogError', { timeout: 60_000 }, () => {
  const { summary, failure } = runFuzz({ seeds, count: 20_000, seed: 0x5eed });
  if (failure) {
    const err = failure.error instanceof Error ? failure.error.stack : String(failure.error);
    assert.fail(`iteration ${failure.iteration} (${failure.applied.join(', ')}): ${err}`);
  }
  assert.equal(summary.iterations, 20_000);
  const refused = Object.values(summary.refused).reduce((a, b) => a + b, 0);
  assert.equal(summary.accepted + refused, 20_000);
  // The mutations must both break logs and leave many parseable (so the decoders run).
  assert.ok(summary.accepted > 1000, `accepted ${summary.accepted}`);
  assert.ok(refused > 1000, `refused ${refused}`);
  for (const code of ['truncated', 'event-too-large', 'pcr-index-out-of-range']) {
    assert.ok((summary.refused[code] ?? 0) > 0, `no ${code} refusal`);
  }
  for (const m of MUTATIONS)
    assert.ok(summary.mutations[m] > 1000, `${m} applied ${summary.mutations[m]} times`);
});

test('one iteration reproduces from (seed, iteration) alone', () => {
  const seen: Uint8Array[] = [];
  const record = (bytes: Uint8Array) => {
    seen.push(bytes.slice());
    return 'accepted';
  };
  runFuzz({ seeds, count: 50, seed: 42, target: record });
  const again: Uint8Array[] = [];
  runFuzz({
    seeds,
    count: 1,
    seed: 42,
    start: 37,
    target: (b) => {
      again.push(b.slice());
      return 'accepted';
    },
  });
  assert.deepEqual(again[0], seen[37]);
  assert.notDeepEqual(seen[36], seen[37]);
  const other = mutate(seeds, new Rng(43, 37)).bytes;
  assert.notDeepEqual(other, seen[37]);
});

test('an exception other than EventLogError stops the run with the iteration and its input', () => {
  let calls = 0;
  const { summary, failure } = runFuzz({
    seeds,
    count: 1000,
    seed: 9,
    target: (bytes) => {
      if (++calls === 123) throw new RangeError('offset is outside the bounds of the DataView');
      return exercise(bytes);
    },
  });
  assert.ok(failure);
  assert.equal(failure.iteration, 122);
  assert.ok(failure.error instanceof RangeError);
  assert.equal(summary.iterations, 122);
  assert.deepEqual(failure.input, mutate(seeds, new Rng(9, 122)).bytes);
});

test('exercise names the EventLogError code of a refused log and accepts a valid one', () => {
  for (const s of syntheticSeeds()) {
    assert.equal(exercise(s.bytes), 'accepted', s.name);
    assert.ok(s.records.length >= 16, `${s.name}: ${s.records.length} records`);
  }
  assert.equal(exercise(new Uint8Array(0)), 'empty');
  assert.equal(
    exercise(new TextEncoder().encode('this is not an event log at all, only text\n')),
    'not-an-event-log',
  );
  const agile = syntheticSeeds()[0]!.bytes;
  assert.equal(exercise(agile.subarray(0, agile.length - 3)), 'truncated');
});

test('fuzz-eventlog CLI prints the seed and a summary, and falls back to synthetic seeds', async () => {
  const { stdout } = await execP(process.execPath, [
    resolve(SRC, 'fuzz-eventlog.ts'),
    '--count',
    '400',
    '--seed',
    '77',
    '--dir',
    '/nonexistent-hostgate-corpus',
  ]);
  assert.match(stdout, /seed 77/);
  assert.match(stdout, /corpus absent/);
  assert.match(stdout, /done: 400 iterations/);
  assert.match(stdout, /EventLogError codes: .*truncated \d+/);
});

test('eventlog-bench exits 0 saying the corpus is absent', async () => {
  const { stdout } = await execP(process.execPath, [
    resolve(SRC, 'eventlog-bench.ts'),
    '--dir',
    '/nonexistent-hostgate-corpus',
  ]);
  assert.match(stdout, /corpus absent/);
});

test('eventlog-bench runs end to end over the corpus with N=1', {
  skip: existsSync(DEFAULT_CORPUS_DIR) ? false : `corpus absent: ${DEFAULT_CORPUS_DIR}`,
  timeout: 60_000,
}, async () => {
  const { stdout } = await execP(
    process.execPath,
    [resolve(SRC, 'eventlog-bench.ts'), '--n', '1', '--json', '--mib-rounds', '1'],
    { maxBuffer: 16 << 20 },
  );
  const r = JSON.parse(stdout) as BenchJson;
  const bins = (loadCorpusSeeds(DEFAULT_CORPUS_DIR) ?? []).length;
  assert.equal(r.files.length, bins);
  // Parsed event counts must agree with the sizes of the files the bench read.
  const totalBytes = r.files.reduce((n, f) => n + f.bytes, 0);
  assert.equal(r.hostgate.bytes, totalBytes);
  assert.ok(r.hostgate.events > 100);
  assert.ok(r.hostgate.eventsPerSecond > 0 && r.hostgate.mbPerSecond > 0);
  for (const f of r.files.filter((x) => x.hostgate.error === undefined)) assert.ok(f.hostgate.perLogUs > 0);
  assert.ok(r.oneMiB.length > 0);
  for (const m of r.oneMiB) assert.ok(m.bytes >= 1 << 20 && m.ms > 0, JSON.stringify(m));
  assert.ok(['node:crypto', '@noble/hashes'].includes(r.hashes.faster));
  if (r.tpm2Eventlog.available) {
    assert.ok(r.tpm2Eventlog.perLogMs! > 0);
    assert.ok(r.ratio! > 0);
  }
});

interface BenchJson {
  files: { file: string; bytes: number; hostgate: { perLogUs: number; error?: string } }[];
  hostgate: { events: number; bytes: number; eventsPerSecond: number; mbPerSecond: number };
  tpm2Eventlog: { available: boolean; perLogMs?: number };
  ratio?: number;
  oneMiB: { source: string; bytes: number; ms: number }[];
  hashes: { faster: string };
}
