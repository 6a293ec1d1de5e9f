// The dispatcher's contract: the workspace bin resolves from the repo root, usage errors
// exit 2, and an unknown verb never falls through to a stack trace.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const root = path.resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = path.join(root, 'node_modules', '.bin', 'hostgate');

function run(args: string[]) {
  return spawnSync(bin, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
  });
}

test('the hostgate bin is linked at the repo root and prints usage', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /usage: hostgate <command>/);
  for (const verb of ['health', 'eventlog', 'quote']) assert.match(r.stdout, new RegExp(`\\b${verb}\\b`));
});

test('no verb is a usage error (exit 2)', () => {
  const r = run([]);
  assert.equal(r.status, 2);
});

test('an unknown verb exits 2 with one line naming it, no stack trace', () => {
  const r = run(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
