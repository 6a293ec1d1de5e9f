// `hostgate eventlog` contract: one JSON line per log, one stderr line per refused log,
// exit 1 when any log was refused, 2 for usage errors. Logs are synthetic, built in code,
// with expected PCRs from an independent node:crypto replay; the corpus run skips if absent.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  ascii,
  buildAgileLog,
  buildLegacyLog,
  hash,
  hex,
  referenceReplay,
  startupLocality,
  typicalBoot,
} from '../../eventlog/test/log-builder.ts';
import { assertUsageError } from './usage-error.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');
const corpus = path.resolve(root, '../shared/corpus/eventlogs');

function run(args: string[]) {
  return spawnSync(bin, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
    maxBuffer: 64 << 20,
  });
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-eventlog-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const agileEvents = [startupLocality(3), ...typicalBoot()];
const legacyEvents = typicalBoot();

test('replay --json: one line per file, exact keys, PCRs as the reference replay computes', (t) => {
  const dir = tempDir(t);
  const agile = path.join(dir, 'agile.bin');
  const legacy = path.join(dir, 'legacy.bin');
  writeFileSync(agile, buildAgileLog(['sha1', 'sha256', 'sha384'], agileEvents));
  writeFileSync(legacy, buildLegacyLog(legacyEvents));
  const r = run(['eventlog', 'replay', '--json', agile, legacy]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  const [a, l] = lines.map((x) => JSON.parse(x));
  assert.deepEqual(Object.keys(a), ['file', 'format', 'banks', 'events', 'pcrs']);
  assert.deepEqual(a, {
    file: agile,
    format: 'crypto-agile',
    banks: ['sha1', 'sha256', 'sha384'],
    events: agileEvents.length + 1,
    pcrs: referenceReplay(['sha1', 'sha256', 'sha384'], agileEvents),
  });
  assert.deepEqual(l, {
    file: legacy,
    format: 'sha1-legacy',
    banks: ['sha1'],
    events: legacyEvents.length,
    pcrs: referenceReplay(['sha1'], legacyEvents),
  });
  for (const v of Object.values(a.pcrs.sha256 as Record<string, string>)) assert.match(v, /^[0-9a-f]{64}$/);
});

test('replay: a broken file gives one stderr line and exit 1, the others are still replayed', (t) => {
  const dir = tempDir(t);
  const good = path.join(dir, 'good.bin');
  const full = buildAgileLog(['sha256'], agileEvents);
  writeFileSync(good, full);
  const broken: [string, Uint8Array, RegExp][] = [
    ['empty.bin', new Uint8Array(0), /: empty at offset 0: /],
    [
      'text.bin',
      ascii('this is not an event log, it is text\n'),
      /: not-an-event-log at offset 0 \(event 0\): /,
    ],
    ['cut.bin', full.subarray(0, full.length - 3), /: truncated at offset \d+ \(event \d+\): /],
  ];
  const files = [good];
  for (const [name, bytes] of broken) {
    files.push(path.join(dir, name));
    writeFileSync(path.join(dir, name), bytes);
  }
  files.push(good);
  const r = run(['eventlog', 'replay', '--json', ...files]);
  assert.equal(r.status, 1);
  const out = r.stdout.trimEnd().split('\n');
  assert.equal(out.length, 2);
  for (const line of out) assert.equal(JSON.parse(line).file, good);
  const err = r.stderr.trimEnd().split('\n');
  assert.equal(err.length, 3, r.stderr);
  broken.forEach(([name, , re], i) => {
    assert.ok(err[i]!.startsWith(`hostgate: ${path.join(dir, name)}: `), err[i]);
    assert.match(err[i]!, re);
  });
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  // A file over the 64 MiB cap is refused before it is read (sparse: no disk used).
  const huge = path.join(dir, 'huge.bin');
  writeFileSync(huge, '');
  truncateSync(huge, (64 << 20) + 1);
  const big = run(['eventlog', 'replay', huge]);
  assert.equal(big.status, 1);
  assert.match(big.stderr, /^hostgate: .*huge\.bin: too-large at offset 0: event log is 67108865 bytes/);
  // A missing file is reported the same way.
  const missing = run(['eventlog', 'replay', path.join(dir, 'nope.bin'), good]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^hostgate: .*nope\.bin: cannot read: ENOENT\n$/);
});

test('replay without --json prints a readable form with every PCR value', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'agile.bin');
  writeFileSync(file, buildAgileLog(['sha256'], agileEvents));
  const r = run(['eventlog', 'replay', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /crypto-agile, \d+ events/);
  assert.match(r.stdout, /start locality 3/);
  for (const [pcr, v] of Object.entries(referenceReplay(['sha256'], agileEvents).sha256!))
    assert.match(r.stdout, new RegExp(`sha256 +${pcr}  ${v}`));
});

test('show lists index, PCR, type, sha256 prefix and a description', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'agile.bin');
  writeFileSync(file, buildAgileLog(['sha1', 'sha256'], agileEvents));
  const r = run(['eventlog', 'show', file]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2 + agileEvents.length + 1); // title, header, events incl. Spec ID
  const action = 'Calling EFI Application from Boot Option';
  const prefix = hex(hash('sha256', ascii(action))).slice(0, 16);
  const row = lines.find((l) => l.includes('EV_EFI_ACTION'));
  assert.ok(row, r.stdout);
  assert.match(row, new RegExp(`^\\s*\\d+\\s+4\\s+EV_EFI_ACTION\\s+${prefix}\\s+.*${action}`));
  assert.ok(lines.some((l) => /EV_NO_ACTION.*StartupLocality/.test(l)));
  assert.ok(lines.some((l) => /\s17\s+EV_IPL/.test(l)));
});

test('show flags an event whose digest is not the hash of its data', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'forged.bin');
  const forged = {
    pcr: 4,
    type: 0x80000007,
    data: ascii('Forged action'),
    digests: { sha256: new Uint8Array(32) },
  };
  writeFileSync(file, buildAgileLog(['sha256'], [...typicalBoot(), forged]));
  const r = run(['eventlog', 'show', file]);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n');
  assert.match(rows.find((l) => l.includes('Forged action')) ?? '', /EV_EFI_ACTION\s+0{16}\s+MISMATCH\s/);
  assert.match(
    rows.find((l) => l.includes('Calling EFI Application')) ?? '',
    /EV_EFI_ACTION\s+[0-9a-f]{16}\s+ok\s/,
  );
});

test('show decodes every corpus log without failing; the ASCII log is refused with exit 1', {
  skip: existsSync(corpus) ? false : 'corpus absent: ../shared/corpus/eventlogs',
}, () => {
  for (const f of readdirSync(corpus).filter((x) => x.endsWith('.bin'))) {
    const r = run(['eventlog', 'show', path.join(corpus, f)]);
    if (f === 'keylime-create-mb-policy-bogus.bin') {
      assert.equal(r.status, 1);
      assert.match(r.stderr, /not-an-event-log at offset 0/);
      continue;
    }
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    assert.ok(r.stdout.split('\n').length > 2, f);
  }
});

test('usage errors exit 2', () => {
  for (const args of [
    ['eventlog'],
    ['eventlog', 'replay'],
    ['eventlog', 'replay', '--bogus', 'x'],
    ['eventlog', 'show'],
    ['eventlog', 'show', 'a', 'b'],
    ['eventlog', 'frob', 'x'],
  ]) {
    const r = run(args);
    assertUsageError(r, 'eventlog', args.join(' '));
  }
  const help = run(['eventlog', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /hostgate eventlog replay \[--json\] FILE/);
});

test('replay --json over the corpus matches the references; the ASCII log is refused', {
  skip: existsSync(corpus) ? false : 'corpus absent: ../shared/corpus/eventlogs',
}, () => {
  const files = readdirSync(corpus)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => path.join(corpus, f));
  const r = run(['eventlog', 'replay', '--json', ...files]);
  assert.equal(r.status, 1); // keylime-create-mb-policy-bogus.bin is ASCII text
  const refused = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('hostgate: ') && !l.includes(': warning: '));
  assert.deepEqual(refused, [
    `hostgate: ${path.join(corpus, 'keylime-create-mb-policy-bogus.bin')}: not-an-event-log at offset 0 (event 0): first record is not a TCG event`,
  ]);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, files.length - 1);
  let compared = 0;
  for (const line of lines) {
    const o = JSON.parse(line) as { file: string; pcrs: unknown };
    for (const suffix of ['.pcrs-independent.json', '.pcrs.json']) {
      if (!existsSync(o.file + suffix)) continue;
      assert.deepEqual(o.pcrs, JSON.parse(readFileSync(o.file + suffix, 'utf8')), o.file);
      compared++;
      break;
    }
  }
  assert.ok(compared >= 29, `compared ${compared}`);
});
