// hostgate ca bundle / crl against a health-cert-issuer started here: what a scheduler feeds to openssl.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { InProcessBus } from '@hostgate/bus';
import { configSchema, SERVICE_NAME, start } from '@hostgate/health-cert-issuer';
import { decodeCertificateEvent, encodeVerdict, KAFKA_TOPICS } from '@hostgate/protos';
import { createLogger, loadServiceConfig, openEmbeddedPostgres } from '@hostgate/service-runtime';
import { TPMA } from '@hostgate/tpm2-js-lite';
import { softwareAk, softwareCertify } from '@hostgate/tpm2-js-lite/testing';
import { freePort } from '@hostgate/testkit/ports';
import { assertUsageError } from './usage-error.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../../../..');
const bin = path.join(root, 'packages', 'cli', 'bin', 'hostgate');
const opensslMissing =
  spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0 ? undefined : 'openssl not installed';

function hostgate(args: string[]): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: root,
      env: { ...process.env, HOSTGATE_NODE: process.execPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out), stderr });
    });
  });
}

test('hostgate ca bundle prints the CA PEM openssl verifies issued certificates with; ca crl revokes', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const running = await start(
    loadServiceConfig(
      { name: SERVICE_NAME, config: configSchema },
      { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0' },
    ),
    {
      logger: createLogger({
        service: SERVICE_NAME,
        level: 'silent',
        destination: new Writable({ write: (_c, _e, cb) => cb() }),
      }),
      bus,
      db: embedded.db('health_cert_issuer'),
    },
  );
  t.after(() => running.stop());
  const issuedDer: Uint8Array[] = [];
  const sub = await bus.subscribe({
    topic: KAFKA_TOPICS.certificates,
    group: 'cli-test',
    handler: async (m) => {
      const e = decodeCertificateEvent(m.value);
      if (e.certificate !== null) issuedDer.push(e.certificate.der);
    },
  });
  t.after(() => sub.close({ drain: false }));

  const r = await hostgate(['ca', 'bundle', '--server', running.address]);
  assert.equal(r.status, 0, r.stderr);
  const pem = r.stdout.toString('utf8');
  assert.equal(
    pem,
    running.issuer.ca.certificatePem.endsWith('\n')
      ? running.issuer.ca.certificatePem
      : `${running.issuer.ca.certificatePem}\n`,
  );
  const ca = new X509Certificate(pem);
  assert.ok(ca.ca);
  assert.match(ca.subject, /CN=HostGate Dev CA/);

  // A host passes; its certificate verifies against the bundle the CLI printed.
  const ak = softwareAk('p256');
  const subject = softwareAk('p256', {
    attributes: TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.userWithAuth | TPMA.sign,
  });
  const certify = softwareCertify({ ak, nonce: randomBytes(32), certified: subject.publicBytes });
  const verdict = (pass: boolean) =>
    encodeVerdict({
      verdictId: randomUUID(),
      attestationId: randomUUID(),
      hostId: 'node-9',
      pass,
      hostClass: 'default',
      policyVersion: 1,
      refusals: pass
        ? []
        : [{ code: 'PCR_VALUE_NOT_ALLOWED', message: 'PCR 7 changed', details: { pcr: '7' } }],
      quoteInfo: { pcrDigest: randomBytes(32) },
      certifiedKey: {
        keyPublic: subject.publicBytes,
        certifyAttest: certify.attest,
        certifySignature: certify.signature,
      },
      akPublic: ak.publicBytes,
    });
  await running.issuer.handleVerdict({ key: 'node-9', value: verdict(true), headers: {} });
  const deadline = Date.now() + 5000;
  while (issuedDer.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  const der = issuedDer[0];
  assert.ok(der, 'no certificate issued');
  const leaf = new X509Certificate(der);
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(leaf.checkIssued(ca));

  const crlBefore = await hostgate(['ca', 'crl', '--server', running.address]);
  assert.equal(crlBefore.status, 0, crlBefore.stderr);
  assert.match(crlBefore.stdout.toString('utf8'), /^-----BEGIN X509 CRL-----\n/);
  await running.issuer.handleVerdict({ key: 'node-9', value: verdict(false), headers: {} });
  const crlAfter = await hostgate(['ca', 'crl', '--server', running.address]);
  assert.equal(crlAfter.status, 0, crlAfter.stderr);
  const crlDer = await hostgate(['ca', 'crl', '--der', '--server', running.address]);
  assert.equal(crlDer.stdout[0], 0x30);

  if (opensslMissing) {
    t.diagnostic(`openssl checks skipped: ${opensslMissing}`);
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), 'hg-ca-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'ca.pem'), pem);
    writeFileSync(path.join(dir, 'cert.pem'), leaf.toString());
    writeFileSync(path.join(dir, 'before.crl'), crlBefore.stdout);
    writeFileSync(path.join(dir, 'after.crl'), crlAfter.stdout);
    const verify = (...extra: string[]) =>
      spawnSync(
        'openssl',
        ['verify', ...extra, '-CAfile', path.join(dir, 'ca.pem'), path.join(dir, 'cert.pem')],
        {
          encoding: 'utf8',
        },
      );
    const plain = verify();
    assert.equal(plain.status, 0, plain.stdout + plain.stderr);
    const notYet = verify('-crl_check', '-CRLfile', path.join(dir, 'before.crl'));
    assert.equal(notYet.status, 0, notYet.stdout + notYet.stderr);
    const revoked = verify('-crl_check', '-CRLfile', path.join(dir, 'after.crl'));
    assert.notEqual(revoked.status, 0);
    assert.match(revoked.stdout + revoked.stderr, /certificate revoked/);
  }

  for (const args of [['ca'], ['ca', 'frob'], ['ca', 'bundle', 'extra'], ['ca', 'bundle', '--der']]) {
    const u = await hostgate(args);
    assertUsageError(u, 'ca', args.join(' '));
  }
  const port = await freePort();
  const down = await hostgate(['ca', 'bundle', '--server', `127.0.0.1:${port}`]);
  assert.equal(down.status, 1);
  assert.equal(down.stdout.length, 0);
  assert.match(down.stderr, /cannot reach/);
});
