// The happy path on `npm start` (embedded defaults: one process, in-process bus, PGlite), driven
// the way a newcomer would: the `hostgate` CLI as agent and operator, openssl as the scheduler.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '@hostgate/testkit/ports';
import { swtpmMissing } from '@hostgate/testkit/swtpm';
import { unmarshalTpmtPublic } from '@hostgate/tpm2-js-lite';
import { eccSigningKeyTemplate, TPM_RH } from '@hostgate/tpm2-js-lite/client';
import { buildLog, uefiBoot } from '../src/synthetic-log.ts';
import { existsSync } from 'node:fs';
import { toolMissing } from '../src/harness.ts';
import { SwtpmHost } from '../src/tpm-agent.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HOSTGATE = path.join(ROOT, 'packages', 'cli', 'bin', 'hostgate');
const skip = swtpmMissing() ?? toolMissing('openssl');
const CORPUS = path.resolve(ROOT, '../shared/corpus/eventlogs');
/** A real Secure Boot machine's log (GCE COS on AMD SEV): crypto-agile, no StartupLocality, so swtpm can replay it. */
const CORPUS_LOG = 'gotpmtools-cos-101-amd-sev.bin';
const corpusSkip = existsSync(path.join(CORPUS, CORPUS_LOG))
  ? undefined
  : `corpus log ${CORPUS_LOG} not found under ${CORPUS}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function waitForBanner(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`npm start: no banner in ${timeoutMs} ms\n${out}\n${err}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('HostGate is running')) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited ${code} before its banner\n${out}\n${err}`));
    });
  });
}

describe('npm start (embedded defaults) driven by the hostgate CLI', { skip, timeout: 240_000 }, () => {
  let dir = '';
  let host: SwtpmHost;
  let corpusHost: SwtpmHost;
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let env: NodeJS.ProcessEnv = {};
  const hostgate = (...args: string[]) => run(HOSTGATE, args, env);

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-start-'));
    host = await SwtpmHost.create();
    corpusHost = await SwtpmHost.create();
    const ports = {
      HOSTGATE_QUOTE_COLLECTOR_ADDRESS: `127.0.0.1:${await freePort()}`,
      HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: `127.0.0.1:${await freePort()}`,
      HOSTGATE_POLICY_EVALUATOR_ADDRESS: `127.0.0.1:${await freePort()}`,
      HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: `127.0.0.1:${await freePort()}`,
    };
    // Embedded defaults: no DATABASE_URL, no KAFKA_BROKERS, whatever the developer's shell has.
    env = { PATH: process.env['PATH'], HOME: process.env['HOME'], ...ports };
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    child = spawn(
      'sh',
      ['-c', pkg.scripts.start.startsWith('exec ') ? pkg.scripts.start : `exec ${pkg.scripts.start}`],
      {
        cwd: ROOT,
        env: {
          ...env,
          HOSTGATE_DATA_DIR: path.join(dir, 'data'),
          HOSTGATE_EK_ROOTS: [...host.roots, ...corpusHost.roots].join(':'),
          HOSTGATE_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const banner = await waitForBanner(child, 60_000);
    assert.match(banner, new RegExp(ports.HOSTGATE_QUOTE_COLLECTOR_ADDRESS.replace(/\./g, '\\.')));
    // `hostgate health` exits 0 once all four report SERVING.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const health = await hostgate('health');
      if (health.code === 0) break;
      if (Date.now() > deadline)
        assert.fail(`services not SERVING 30 s after the banner: ${health.stdout}${health.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await host?.stop();
    await corpusHost?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** enroll, (class), attest → NO_POLICY, capture --activate, attest → certificate; returns host id and PEM path. */
  async function happyPath(tpmHost: SwtpmHost, logFile: string, name: string, hostClass?: string) {
    const tpm = tpmHost.address;
    const enrolled = await hostgate('agent', 'enroll', '--tpm', tpm, '--json');
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const { hostId } = JSON.parse(enrolled.stdout) as { hostId: string };
    assert.match(hostId, /^ek-/);
    if (hostClass !== undefined) {
      const assigned = await hostgate('policy', 'assign', hostId, hostClass);
      assert.equal(assigned.code, 0, assigned.stderr);
    }

    // swtpm has no firmware: the first attest extends the log's digests into the PCRs.
    const certFile = path.join(dir, `${name}.pem`);
    const refused = await hostgate(
      'agent',
      'attest',
      '--tpm',
      tpm,
      '--eventlog',
      logFile,
      '--extend-from',
      logFile,
      '--out',
      certFile,
      '--json',
    );
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    const refusal = JSON.parse(refused.stdout) as { refused: boolean; refusals: { code: string }[] };
    assert.equal(refusal.refused, true);
    assert.deepEqual(
      refusal.refusals.map((r) => r.code),
      ['NO_POLICY'],
    );

    const captured = await hostgate('policy', 'capture', '--host', hostId, '--activate', '--json');
    assert.equal(captured.code, 0, captured.stderr);

    const attested = await hostgate(
      'agent',
      'attest',
      '--tpm',
      tpm,
      '--eventlog',
      logFile,
      '--out',
      certFile,
      '--json',
    );
    assert.equal(attested.code, 0, attested.stdout + attested.stderr);
    assert.equal((JSON.parse(attested.stdout) as { hostId: string }).hostId, hostId);

    const bundle = await hostgate('ca', 'bundle');
    assert.equal(bundle.code, 0, bundle.stderr);
    const caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, bundle.stdout);
    const verified = await run('openssl', ['verify', '-CAfile', caFile, certFile], env);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /: OK/);

    // The certificate's key is the owner-hierarchy signing key that lives in this TPM.
    const tpmKey = await tpmHost.withTpm(async (tpm2) => {
      const key = await tpm2.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
      await tpm2.flushContext(key.handle);
      return unmarshalTpmtPublic(key.public);
    });
    assert.equal(tpmKey.type, 'ecc');
    if (tpmKey.type !== 'ecc') throw new Error('unreachable');
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
    const spki = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64(tpmKey.x), y: b64(tpmKey.y) },
      format: 'jwk',
    });
    const cert = new X509Certificate(await readFile(certFile));
    assert.deepEqual(
      cert.publicKey.export({ type: 'spki', format: 'der' }),
      spki.export({ type: 'spki', format: 'der' }),
    );

    const check = await hostgate('host', 'check', hostId, '--json');
    assert.equal(check.code, 0, check.stdout + check.stderr);
    return hostId;
  }

  test('enroll, NO_POLICY, capture, then a certificate openssl verifies whose key is in the TPM (synthetic log)', {
    timeout: 120_000,
  }, async () => {
    const logFile = path.join(dir, 'boot.log');
    await writeFile(logFile, buildLog(uefiBoot()));
    await happyPath(host, logFile, 'synthetic');
  });

  test(`the same with a real machine's boot log from the corpus (${CORPUS_LOG}), in a class of its own`, {
    skip: corpusSkip,
    timeout: 120_000,
  }, async () => {
    const logFile = path.join(CORPUS, CORPUS_LOG);
    await happyPath(corpusHost, logFile, 'corpus', 'corpus-cos');
    // The TPM now holds what tpm2_eventlog computed for this log when the corpus was made.
    const recorded = JSON.parse(await readFile(`${logFile}.pcrs.json`, 'utf8')) as Record<
      string,
      Record<string, string>
    >;
    const pcrs = [0, 1, 2, 3, 4, 5, 6, 7];
    const values = await corpusHost.withTpm((tpm) => tpm.pcrRead([{ hash: 'sha256', pcrs }]));
    for (const pcr of pcrs)
      assert.equal(
        Buffer.from(values.values.get('sha256')?.get(pcr) ?? []).toString('hex'),
        recorded['sha256']?.[String(pcr)],
        `PCR ${pcr}`,
      );
  });

  test('SIGTERM stops npm start cleanly', { timeout: 60_000 }, async () => {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
