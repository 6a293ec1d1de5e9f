// `hostgate policy` against a policy-evaluator started here (InProcessBus + PGlite, or PostgreSQL
// when DATABASE_URL is set), fed with Measurements the real replayer made from synthetic boot logs.
// The CLI runs as a child process (async spawn: the server lives in this process's event loop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '@hostgate/testkit/ports';
import { measurementsOf, startEvaluator } from '../../../services/policy-evaluator/test/harness.ts';
import { assertUsageError } from './usage-error.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { cwd: root, env: { ...process.env, HOSTGATE_NODE: process.execPath, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

test('capture, list, show, publish, activate, verdicts against a running policy-evaluator', async (t) => {
  const ev = await startEvaluator(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-policy-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = ['--server', ev.address];

  // Nothing replayed yet for this host: the service refuses, exit 1 with the reason.
  const early = await run(['policy', 'capture', '--host', 'host-1', ...s]);
  assert.equal(early.status, 1, early.stderr);
  assert.match(early.stderr, /FAILED_PRECONDITION.*host-1/);

  const first = await ev.judge(measurementsOf('att-1', 'host-1').measurements);
  assert.equal(first.refusals[0]?.code, 'NO_POLICY');

  const cap = await run([
    'policy',
    'capture',
    '--host',
    'host-1',
    '--activate',
    '--json',
    '--operator',
    'carol',
    ...s,
  ]);
  assert.equal(cap.status, 0, cap.stderr);
  const captured = JSON.parse(cap.stdout);
  assert.equal(captured.attestationId, 'att-1');
  assert.equal(captured.goldenSet.class, 'default');
  assert.equal(captured.goldenSet.version, 1);
  assert.equal(captured.goldenSet.active, true);
  assert.equal(captured.goldenSet.createdBy, 'carol');
  const kinds = captured.goldenSet.rules.map((r: { kind: string }) => r.kind);
  assert.ok(
    kinds.includes('pcr-exact') && kinds.includes('secure-boot-enabled') && kinds.includes('event-allowlist'),
  );

  // The captured policy lets the same host pass.
  const pass = await ev.judge(measurementsOf('att-2', 'host-1').measurements);
  assert.equal(pass.pass, true, JSON.stringify(pass.refusals));

  const list = await run(['policy', 'list', ...s]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^CLASS\s+VERSION\s+ACTIVE/m);
  assert.match(list.stdout, /^default\s+1\s+yes\s+\S+\s+carol/m);

  // show --json → edit → publish FILE: a new version, the old one untouched; then activate it.
  const show = await run(['policy', 'show', 'default', '--json', ...s]);
  assert.equal(show.status, 0, show.stderr);
  const set = JSON.parse(show.stdout);
  set.description = 'v2: also forbid a revoked grub';
  set.rules.push({ id: 'revoked', kind: 'forbidden-digests', digests: ['ab'.repeat(32)] });
  const file = path.join(dir, 'v2.json');
  writeFileSync(file, JSON.stringify(set));
  const pub = await run(['policy', 'publish', file, '--json', '--operator', 'dave', ...s]);
  assert.equal(pub.status, 0, pub.stderr);
  const published = JSON.parse(pub.stdout);
  assert.equal(published.version, 2);
  assert.equal(published.active, false);
  assert.equal(published.rules.at(-1).id, 'revoked');
  const act = await run(['policy', 'activate', 'default', '2', '--reason', 'grub CVE', ...s]);
  assert.equal(act.status, 0, act.stderr);
  assert.match(act.stdout, /default v2 is active \(was v1\)/);
  const listed = JSON.parse((await run(['policy', 'list', '--json', ...s])).stdout);
  assert.deepEqual(
    listed.map((g: { version: number; active: boolean; createdBy: string }) => [
      g.version,
      g.active,
      g.createdBy,
    ]),
    [
      [2, true, 'dave'],
      [1, false, 'carol'],
    ],
  );
  const v1 = JSON.parse((await run(['policy', 'show', 'default', '1', '--json', ...s])).stdout);
  assert.deepEqual(v1.rules, captured.goldenSet.rules);

  const verdicts = await run(['policy', 'verdicts', 'host-1', '--json', ...s]);
  assert.equal(verdicts.status, 0, verdicts.stderr);
  const history = JSON.parse(verdicts.stdout);
  assert.deepEqual(
    history.map((v: { attestationId: string; pass: boolean }) => [v.attestationId, v.pass]),
    [
      ['att-2', true],
      ['att-1', false],
    ],
  );
  assert.equal(history[1].refusals[0].code, 'NO_POLICY');
  const failed = await run(['policy', 'verdicts', 'host-1', '--failed', ...s]);
  assert.match(failed.stdout, /FAIL\s+default \(no policy\)\s+attestation att-1/);
  assert.doesNotMatch(failed.stdout, /att-2/);

  // Host classes.
  const assign = await run(['policy', 'assign', 'host-9', 'gpu', ...s]);
  assert.equal(assign.status, 0, assign.stderr);
  assert.match(assign.stdout, /host host-9 is in class gpu \(was default\)/);
});

test('refusals exit 1: a malformed file, an unknown version, an unreachable server', async (t) => {
  const ev = await startEvaluator(t);
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-policy-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = ['--server', ev.address];
  const typo = path.join(dir, 'typo.json');
  writeFileSync(
    typo,
    JSON.stringify({ class: 'web', rules: [{ kind: 'secure-boot-enabled', enabeld: true }] }),
  );
  const r1 = await run(['policy', 'publish', typo, ...s]);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /\$\.rules\[0\]\.enabeld: unknown key/);
  const empty = path.join(dir, 'empty.json');
  writeFileSync(empty, JSON.stringify({ class: 'web', rules: [] }));
  const r2 = await run(['policy', 'publish', empty, ...s]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /INVALID_ARGUMENT/);
  const r3 = await run(['policy', 'publish', path.join(dir, 'missing.json'), ...s]);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /cannot read: ENOENT/);
  const r4 = await run(['policy', 'activate', 'web', '7', ...s]);
  assert.equal(r4.status, 1);
  assert.match(r4.stderr, /NOT_FOUND/);
  const port = await freePort();
  const r5 = await run(['policy', 'list', '--server', `127.0.0.1:${port}`]);
  assert.equal(r5.status, 1);
  assert.match(r5.stderr, /cannot reach 127\.0\.0\.1:\d+/);
  // Without --server the CLI dials HOSTGATE_POLICY_EVALUATOR_ADDRESS (else 127.0.0.1:50053).
  const r6 = await run(['policy', 'list', '--json'], { HOSTGATE_POLICY_EVALUATOR_ADDRESS: ev.address });
  assert.equal(r6.status, 0, r6.stderr);
  assert.deepEqual(JSON.parse(r6.stdout), []);
});

test('usage errors exit 2', async () => {
  for (const args of [
    ['policy'],
    ['policy', 'frobnicate'],
    ['policy', 'capture'],
    ['policy', 'capture', '--host', 'h', '--bogus'],
    ['policy', 'activate', 'default'],
    ['policy', 'activate', 'default', 'one'],
    ['policy', 'show'],
    ['policy', 'verdicts', 'h', '--limit', '0'],
  ]) {
    const r = await run(args);
    assertUsageError(r, 'policy', args.join(' '));
  }
  const help = await run(['policy', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /hostgate policy capture --host ID/);
});

test('HOSTGATE_ADMIN_TOKEN is sent as the bearer token the evaluator asks for', async (t) => {
  const ev = await startEvaluator(t, { HOSTGATE_POLICY_EVALUATOR_ADMIN_TOKEN: 'tok-123' });
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-policy-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sb.json');
  writeFileSync(file, JSON.stringify({ class: 'web', rules: [{ id: 'sb', kind: 'secure-boot-enabled' }] }));
  const s = ['--server', ev.address];
  const denied = await run(['policy', 'publish', file, ...s], { HOSTGATE_ADMIN_TOKEN: '' });
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /UNAUTHENTICATED/);
  const ok = await run(['policy', 'publish', file, '--activate', ...s], { HOSTGATE_ADMIN_TOKEN: 'tok-123' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /published web v1 \(active\): 1 rules/);
  // Reads need no token.
  const list = await run(['policy', 'list', '--json', ...s], { HOSTGATE_ADMIN_TOKEN: '' });
  assert.equal(list.status, 0, list.stderr);
  assert.equal(JSON.parse(list.stdout)[0].active, true);
});
