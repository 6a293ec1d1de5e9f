// `hostgate … | head`: when the reader closes the pipe early, the CLI stops quietly, with no
// Node "Unhandled 'error' event" stack trace on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { buildAgileLog, typicalBoot } from '../../eventlog/test/log-builder.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');

test('replay --json into a pipe closed after one line: no stack trace, no EPIPE report', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-stdout-closed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'log.bin');
  writeFileSync(log, buildAgileLog(['sha1', 'sha256', 'sha384'], typicalBoot()));
  const errFile = path.join(dir, 'stderr.txt');
  // Far more output than a pipe buffers (~1 MB), so writes continue after head has exited.
  const files = Array.from({ length: 3000 }, () => log);
  const r = spawnSync(
    'sh',
    ['-c', '"$0" eventlog replay --json "$@" 2>"$ERR_FILE" | head -n 1', bin, ...files],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, HOSTGATE_NODE: process.execPath, ERR_FILE: errFile },
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trimEnd().split('\n').length, 1);
  assert.equal(JSON.parse(r.stdout).file, log);
  const stderr = readFileSync(errFile, 'utf8');
  assert.doesNotMatch(stderr, /EPIPE|Unhandled|^\s+at /m, stderr);
  assert.equal(stderr, '');
});
