// hostgate host check / watch / revoke against a health-cert-issuer started here (embedded store,
// in-process bus), the bin spawned as a scheduler or operator would run it.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { InProcessBus } from '@hostgate/bus';
import { configSchema, type RunningIssuer, SERVICE_NAME, start } from '@hostgate/health-cert-issuer';
import { encodeVerdict, type Refusal } from '@hostgate/protos';
import { createLogger, loadServiceConfig, openEmbeddedPostgres } from '@hostgate/service-runtime';
import { TPMA } from '@hostgate/tpm2-js-lite';
import { softwareAk, softwareCertify } from '@hostgate/tpm2-js-lite/testing';
import { freePort } from '@hostgate/testkit/ports';
import { assertUsageError } from './usage-error.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns the CLI without blocking this process (the issuer answering it runs here). */
function hostgate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: root,
      env: { ...process.env, HOSTGATE_NODE: process.execPath, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

async function startIssuer(t: TestContext, env: Record<string, string> = {}): Promise<RunningIssuer> {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0', ...env },
  );
  const issuer = await start(config, { logger, bus, db: embedded.db('health_cert_issuer') });
  t.after(() => issuer.stop());
  return issuer;
}

/** Hands the issuer a verdict as the policy-evaluator would publish it. */
async function judge(issuer: RunningIssuer, hostId: string, pass: boolean, refusals: Refusal[] = []) {
  const ak = softwareAk('p256');
  const subject = softwareAk('p256', {
    attributes: TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.userWithAuth | TPMA.sign,
  });
  const certify = softwareCertify({ ak, nonce: randomBytes(32), certified: subject.publicBytes });
  const value = encodeVerdict({
    verdictId: randomUUID(),
    attestationId: randomUUID(),
    hostId,
    pass,
    hostClass: 'gpu-node',
    policyVersion: 3,
    refusals,
    quoteInfo: { pcrDigest: randomBytes(32) },
    certifiedKey: {
      keyPublic: subject.publicBytes,
      certifyAttest: certify.attest,
      certifySignature: certify.signature,
    },
    akPublic: ak.publicBytes,
  });
  await issuer.issuer.handleVerdict({ key: hostId, value, headers: {} });
}

test('hostgate host check: exit 0 healthy, 1 unhealthy with every reason, 2 usage', async (t) => {
  const issuer = await startIssuer(t);
  await judge(issuer, 'node-17', true);
  const healthy = await hostgate(['host', 'check', 'node-17', '--server', issuer.address]);
  assert.equal(healthy.status, 0, healthy.stderr);
  assert.match(
    healthy.stdout,
    /^node-17: healthy, certificate [0-9a-f]+ valid until \d{4}-.*\(passed gpu-node v3\)\n$/,
  );

  const json = await hostgate(['host', 'check', 'node-17', '--json', '--server', issuer.address]);
  assert.equal(json.status, 0, json.stderr);
  const status = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(status['healthy'], true);
  assert.equal(status['policyClass'], 'gpu-node');
  assert.equal(status['policyVersion'], 3);
  const expires = Date.parse(String(status['expiresAt']));
  assert.ok(Math.abs(expires - Date.now() - 3600_000) < 10_000, `expiresAt ${status['expiresAt']}`);

  await judge(issuer, 'node-17', false, [
    { code: 'SECURE_BOOT_OFF', message: 'Secure Boot is off', details: {} },
    { code: 'EVENT_NOT_ALLOWED', message: 'shim 15.4 is not allowed', details: { event_index: '31' } },
  ]);
  const sick = await hostgate(['host', 'check', 'node-17', '--server', issuer.address]);
  assert.equal(sick.status, 1);
  assert.equal(sick.stdout, '');
  assert.match(
    sick.stderr,
    /^node-17: unhealthy: Secure Boot is off\n {2}SECURE_BOOT_OFF: .*\n {2}EVENT_NOT_ALLOWED: shim 15\.4/,
  );
  const sickJson = await hostgate(['host', 'check', 'node-17', '--json', '--server', issuer.address]);
  assert.equal(sickJson.status, 1);
  const sickStatus = JSON.parse(sickJson.stdout) as {
    healthy: boolean;
    reasonCode: string;
    refusals: Array<{ code: string; details: Record<string, string> }>;
  };
  assert.equal(sickStatus.healthy, false);
  assert.equal(sickStatus.reasonCode, 'SECURE_BOOT_OFF');
  assert.deepEqual(
    sickStatus.refusals.map((r) => r.code),
    ['SECURE_BOOT_OFF', 'EVENT_NOT_ALLOWED'],
  );
  assert.deepEqual(sickStatus.refusals[1]!.details, { event_index: '31' });

  const unknown = await hostgate(['host', 'check', 'never-attested', '--server', issuer.address]);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /never attested/);

  for (const args of [
    ['host', 'check'],
    ['host', 'check', 'a', 'b'],
    ['host', 'check', 'a', '--bogus'],
    ['host'],
  ]) {
    const r = await hostgate([...args, '--server', issuer.address]);
    assertUsageError(r, 'host', args.join(' '));
  }
});

test('hostgate host check fails closed when the issuer cannot be reached; HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS is the default', async (t) => {
  const port = await freePort();
  const r = await hostgate(['host', 'check', 'node-1', '--server', `127.0.0.1:${port}`]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot reach 127\.0\.0\.1:\d+/);
  const issuer = await startIssuer(t);
  await judge(issuer, 'node-2', true);
  const viaEnv = await hostgate(['host', 'check', 'node-2'], {
    HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: issuer.address,
  });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
});

test('hostgate host watch prints the snapshot then each change; host revoke is authenticated', async (t) => {
  const issuer = await startIssuer(t, { HOSTGATE_HEALTH_CERT_ISSUER_ADMIN_TOKEN: 's3cret-token' });
  await judge(issuer, 'node-a', true);
  const child: ChildProcess = spawn(bin, ['host', 'watch', '--server', issuer.address], {
    cwd: root,
    env: { ...process.env, HOSTGATE_NODE: process.execPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString('utf8');
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
    }
  });
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 15_000;
    while (lines.length < n) {
      if (Date.now() > deadline) throw new Error(`watch printed ${lines.length} lines, expected ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor(1);
  assert.equal(lines[0]!['cause'], 'snapshot');
  assert.equal(lines[0]!['snapshotComplete'], true);
  assert.equal((lines[0]!['status'] as Record<string, unknown>)['healthy'], true);

  const denied = await hostgate([
    'host',
    'revoke',
    'node-a',
    '--reason',
    'decommissioned',
    '--server',
    issuer.address,
  ]);
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /UNAUTHENTICATED/);
  const noReason = await hostgate(['host', 'revoke', 'node-a', '--server', issuer.address]);
  assertUsageError(noReason, 'host', 'revoke without --reason');
  const ok = await hostgate(
    [
      'host',
      'revoke',
      'node-a',
      '--reason',
      'decommissioned',
      '--actor',
      'alice',
      '--server',
      issuer.address,
    ],
    { HOSTGATE_ADMIN_TOKEN: 's3cret-token' },
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^node-a: revoked [0-9a-f]+\n$/);
  await waitFor(2);
  assert.equal(lines[1]!['cause'], 'revoked');
  const revoked = lines[1]!['status'] as Record<string, unknown>;
  assert.equal(revoked['healthy'], false);
  assert.match(String(revoked['reason']), /revoked by alice: decommissioned/);
  const check = await hostgate(['host', 'check', 'node-a', '--server', issuer.address]);
  assert.equal(check.status, 1);
  child.kill('SIGTERM');
});
