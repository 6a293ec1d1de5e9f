// `hostgate eventlog` reads no input whole: a source whose size stat cannot tell
// (a character device, a pipe, a sysfs file reporting 0) is refused at the 64 MiB cap
// instead of being read forever; the other files on the line are still replayed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildAgileLog, typicalBoot } from '../../eventlog/test/log-builder.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');

function run(args: string[], input?: Uint8Array) {
  return spawnSync(bin, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
    input,
    timeout: 30_000,
    maxBuffer: 16 << 20,
  });
}

test('replay refuses an endless device at the cap, with one line, and replays the rest', {
  skip: existsSync('/dev/zero') ? false : 'no /dev/zero on this system',
}, (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-eventlog-input-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = path.join(dir, 'good.bin');
  writeFileSync(good, buildAgileLog(['sha256'], typicalBoot()));
  const r = run(['eventlog', 'replay', '--json', '/dev/zero', good]);
  assert.equal(r.signal, null, 'the command must end by itself, not be killed at the timeout');
  assert.equal(r.status, 1, r.stderr);
  const err = r.stderr.trimEnd().split('\n');
  assert.equal(err.length, 1, r.stderr);
  assert.match(err[0]!, /^hostgate: \/dev\/zero: too-large at offset 0: /);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).file, good);
});

test('a log arriving on a pipe (size 0 to stat) is still read whole and replayed', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-eventlog-input-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'log.bin');
  writeFileSync(file, buildAgileLog(['sha256'], typicalBoot()));
  const fromFile = run(['eventlog', 'replay', '--json', file]);
  assert.equal(fromFile.status, 0, fromFile.stderr);
  // The same bytes through a pipe: stdin of the CLI is the read end of `cat`'s pipe.
  const piped = spawnSync('sh', ['-c', 'cat "$1" | "$0" eventlog replay --json /dev/stdin', bin, file], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
    timeout: 30_000,
  });
  assert.equal(piped.status, 0, piped.stderr);
  const a = JSON.parse(fromFile.stdout) as { events: number; pcrs: unknown };
  const b = JSON.parse(piped.stdout) as { events: number; pcrs: unknown };
  assert.ok(a.events > 1);
  assert.equal(b.events, a.events);
  assert.deepEqual(b.pcrs, a.pcrs);
});
