// The dispatcher's contract: the workspace bin resolves from the repo root, usage errors
// exit 2 with stdout empty (one error line and a hint on stderr), an explicit help request
// prints usage to stdout with exit 0, and an unknown verb never falls through to a stack trace.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertUsageError } from './usage-error.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = path.join(root, 'node_modules', '.bin', 'hostgate');
const env = { ...process.env, HOSTGATE_NODE: process.execPath };

function run(args: string[]) {
  return spawnSync(bin, args, { cwd: root, encoding: 'utf8', env });
}

/** Spawned together: a usage error never reaches the network or a TPM. */
function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

test('an explicit help request prints usage to stdout, exit 0, nothing on stderr', () => {
  for (const flag of ['--help', '-h', 'help']) {
    const r = run([flag]);
    assert.equal(r.status, 0, `${flag}: ${r.stderr}`);
    assert.equal(r.stderr, '', flag);
    assert.match(r.stdout, /^usage: hostgate <command>/, flag);
    for (const verb of ['health', 'eventlog', 'quote', 'agent', 'policy', 'host', 'ca'])
      assert.match(r.stdout, new RegExp(`\\b${verb}\\b`), flag);
  }
});

test('no verb is a usage error: exit 2, stdout empty, the error and a hint on stderr', () => {
  const r = run([]);
  assertUsageError(r, undefined, 'hostgate');
  assert.equal(r.stderr, "hostgate: a command is required\nrun 'hostgate help' for usage\n");
});

test('an unknown verb exits 2 with one line naming it and a hint, no usage, no stack trace', () => {
  const r = run(['frobnicate']);
  assertUsageError(r, undefined, 'hostgate frobnicate');
  assert.match(r.stderr, /^hostgate: unknown command 'frobnicate'\n/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test("every verb's usage errors leave stdout empty: one error line, one hint, exit 2", async () => {
  const cases: string[][] = [
    ['agent'],
    ['agent', 'frob'],
    ['agent', 'enroll'],
    ['agent', 'enroll', '--json'],
    ['agent', 'attest', '--tpm', 'swtpm:127.0.0.1:1'],
    ['agent', 'enroll', '--tpm', 'swtpm:127.0.0.1:1', '--bogus'],
    ['ca'],
    ['ca', 'frob'],
    ['ca', 'bundle', 'extra'],
    ['eventlog'],
    ['eventlog', 'frob'],
    ['eventlog', 'replay'],
    ['eventlog', 'replay', '--bogus', 'x'],
    ['health', '--bogus'],
    ['health', '--json', '--timeout-ms', '-5'],
    ['health', '--only', 'nope'],
    ['host'],
    ['host', 'frob'],
    ['host', 'check'],
    ['host', 'check', 'a', '--json', '--bogus'],
    ['host', 'revoke', 'node-a'],
    ['policy'],
    ['policy', 'frob'],
    ['policy', 'capture', '--json'],
    ['policy', 'list', '--bogus'],
    ['quote'],
    ['quote', 'frob'],
    ['quote', 'verify', '--ak', 'x'],
  ];
  const results = await Promise.all(cases.map((args) => runAsync(args)));
  for (const [i, args] of cases.entries())
    assertUsageError(results[i]!, args[0], `hostgate ${args.join(' ')}`);
});

test("every verb's help goes to stdout with exit 0", async () => {
  const cases = [
    ['agent', '--help'],
    ['agent', 'help'],
    ['agent', 'enroll', '--help'],
    ['ca', 'help'],
    ['eventlog', 'replay', '--help'],
    ['host', 'check', '--help'],
    ['policy', 'help'],
    ['quote', 'verify', '--help'],
    ['ca', '--help'],
    ['eventlog', '--help'],
    ['health', '--help'],
    ['host', '--help'],
    ['policy', '--help'],
    ['quote', '--help'],
  ];
  const results = await Promise.all(cases.map((args) => runAsync(args)));
  for (const [i, args] of cases.entries()) {
    const r = results[i]!;
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, '', args.join(' '));
    assert.match(r.stdout, new RegExp(`^usage: hostgate ${args[0]}`), args.join(' '));
  }
});
