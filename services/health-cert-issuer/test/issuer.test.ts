// The issuer end to end on an in-process bus and embedded PostgreSQL: verdicts in, certificates,
// revocations, SOC events and fleet state out.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DLQ_HEADERS } from '@hostgate/bus';
import { parseCrl, parseHealthCert, toPem, verifyHealthCert } from '@hostgate/health-cert';
import {
  type CheckHostResponse__Output,
  cloudEventFromSocEvent,
  type GetCaBundleResponse__Output,
  type GetCrlResponse__Output,
  type ListCertificatesResponse__Output,
  type WatchFleetResponse__Output,
} from '@hostgate/protos';
import { postgresMissing } from '@hostgate/testkit/postgres';
import { SOC_SOURCE, SOC_TYPES } from '../src/index.ts';
import { call, type Harness, hostKeys, startHarness, verdict } from './harness.ts';

const opensslMissing =
  spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0 ? undefined : 'openssl not installed';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hg-issuer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function checkHost(h: Harness, hostId: string) {
  return (await call<unknown, CheckHostResponse__Output>(h.client, 'CheckHost', { hostId })).status!;
}

async function issuedHappyPath(h: Harness) {
  const keys = hostKeys();
  const v = verdict({ hostId: 'h-7f3a9c2e41d0', keys, pass: true });
  await h.publishVerdict(v);
  await h.certificates.until((m) => m.length >= 1);
  const [event] = h.certificates.certificateEvents();
  assert.ok(event);
  assert.equal(event.type, 'CERTIFICATE_EVENT_TYPE_ISSUED');
  assert.equal(event.attestationId, v.attestationId);
  assert.equal(event.verdictId, v.verdictId);
  assert.equal(event.hostId, 'h-7f3a9c2e41d0');
  assert.equal(h.certificates.messages[0]!.key, 'h-7f3a9c2e41d0');
  const cert = event.certificate!;
  const info = parseHealthCert(cert.der);
  // Every field as the verdict said, not as the issuer computed.
  assert.equal(info.hostId, 'h-7f3a9c2e41d0');
  assert.equal(info.policyClass, 'web-frontend');
  assert.equal(info.policyVersion, 7);
  assert.equal(info.verdictId, v.verdictId);
  assert.equal(info.pcrDigest, Buffer.from(v.pcrDigest).toString('hex'));
  assert.equal(info.serial.toString(16), cert.serial);
  // Bound to the TPM key the AK certified.
  const expectedSpki = keys.subject.publicKey.export({ type: 'spki', format: 'der' });
  assert.deepEqual(Buffer.from(info.subjectPublicKeyInfo), expectedSpki);
  // About an hour (60 s backdated for lagging clocks).
  const lifetime = (info.notAfter.getTime() - info.notBefore.getTime()) / 1000;
  assert.equal(lifetime, 3600 + 60);
  assert.ok(Math.abs(info.notAfter.getTime() - Date.now() - 3600_000) < 5000);
  const bundle = await call<unknown, GetCaBundleResponse__Output>(h.client, 'GetCaBundle', {});
  const verified = verifyHealthCert(cert.der, { trusted: [bundle.certificates[0]!] });
  assert.equal(verified.hostId, 'h-7f3a9c2e41d0');
  return { keys, v, cert, bundle };
}

test('a passing verdict yields one certificate, openssl verify accepts it, SOC events are CloudEvents', async (t) => {
  const h = await startHarness(t);
  const { cert, bundle, v } = await issuedHappyPath(h);
  assert.match(bundle.pem, /^-----BEGIN CERTIFICATE-----\n/);
  const status = await checkHost(h, 'h-7f3a9c2e41d0');
  assert.equal(status.health, 'HOST_HEALTH_HEALTHY');
  assert.equal(status.certificateSerial, cert.serial);
  assert.equal(status.policyClass, 'web-frontend');
  assert.equal(status.policyVersion, 7);
  assert.deepEqual(status.expiresAt, cert.notAfter);

  await h.events.until((m) => m.length >= 2);
  const soc = h.events.socEvents();
  assert.deepEqual(
    soc.map((e) => e.type),
    [SOC_TYPES.attestationPassed, SOC_TYPES.certificateIssued],
  );
  for (const [i, e] of soc.entries()) {
    const ce = cloudEventFromSocEvent(e);
    assert.equal(ce.specversion, '1.0');
    assert.equal(ce.source, SOC_SOURCE);
    assert.equal(ce.subject, 'h-7f3a9c2e41d0');
    assert.match(ce.id, /^[0-9a-f-]{36}$/);
    assert.match(ce.time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(ce.data?.['attestationId'], v.attestationId);
    const m = h.events.messages[i]!;
    assert.equal(m.key, 'h-7f3a9c2e41d0');
    assert.equal(m.headers['ce_id'], ce.id);
    assert.equal(m.headers['ce_type'], ce.type);
    assert.equal(m.headers['ce_specversion'], '1.0');
    assert.equal(m.headers['ce_time'], ce.time, 'the header says what the event says');
  }
  const issued = cloudEventFromSocEvent(soc[1]!);
  assert.equal(issued.data?.['certificateSerial'], cert.serial);
  assert.equal(JSON.parse(JSON.stringify(issued)).data.policyVersion, 7);

  if (opensslMissing) {
    t.diagnostic(`openssl checks skipped: ${opensslMissing}`);
    return;
  }
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'ca.pem'), bundle.pem);
  writeFileSync(path.join(dir, 'cert.pem'), toPem('CERTIFICATE', cert.der));
  const out = execFileSync(
    'openssl',
    [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      path.join(dir, 'ca.pem'),
      path.join(dir, 'cert.pem'),
    ],
    { encoding: 'utf8' },
  );
  assert.match(out, /cert\.pem: OK/);
  const text = execFileSync('openssl', ['x509', '-in', path.join(dir, 'cert.pem'), '-noout', '-text'], {
    encoding: 'utf8',
  });
  assert.match(text, /Subject: CN = h-7f3a9c2e41d0/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /2\.25\.267468689140349052810954370164254171085\.1:/);
  assert.ok(text.includes(v.verdictId));
});

test('a redelivered verdict re-publishes the same ISSUED event: same serial, one row', async (t) => {
  const h = await startHarness(t);
  const keys = hostKeys();
  const v = verdict({ hostId: 'host-redelivered', keys, pass: true });
  await h.publishVerdict(v);
  await h.certificates.until((m) => m.length >= 1);
  await h.publishVerdict(v);
  await h.publishVerdict(v);
  await h.certificates.until((m) => m.length >= 3);
  const events = h.certificates.certificateEvents();
  assert.equal(new Set(events.map((e) => e.certificate?.serial)).size, 1);
  assert.equal(new Set(events.map((e) => e.eventId)).size, 1);
  assert.deepEqual(
    Buffer.from(h.certificates.messages[2]!.value),
    Buffer.from(h.certificates.messages[0]!.value),
  );
  const { rows } = await h.db.query<{ n: bigint }>(
    'SELECT count(*)::int8 AS n FROM certificates WHERE attestation_id = $1',
    [v.attestationId],
  );
  assert.equal(rows[0]!.n, 1n);
  // SOC events are re-published as they were (same ids), so the SOC deduplicates by id.
  await h.events.until((m) => m.length >= 6);
  assert.equal(new Set(h.events.socEvents().map((e) => e.id)).size, 2);
});

test('a failing re-attestation revokes the live certificate: CheckHost and WatchFleet know within 1 s', async (t) => {
  const h = await startHarness(t);
  const keys = hostKeys();
  const hostId = 'host-fails-later';
  const pass = verdict({ hostId, keys, pass: true });
  await h.publishVerdict(pass);
  await h.certificates.until((m) => m.length >= 1);
  const serial = h.certificates.certificateEvents()[0]!.certificate!.serial;
  assert.equal((await checkHost(h, hostId)).health, 'HOST_HEALTH_HEALTHY');

  const watch = h.client.WatchFleet({ hostIds: [], includeSnapshot: true });
  t.after(() => watch.cancel());
  watch.on('error', () => {});
  const seen: WatchFleetResponse__Output[] = [];
  const snapshotDone = new Promise<void>((resolve) => {
    watch.on('data', (m: WatchFleetResponse__Output) => {
      seen.push(m);
      if (m.snapshotComplete) resolve();
    });
  });
  await snapshotDone;
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.cause, 'FLEET_CHANGE_CAUSE_SNAPSHOT');
  assert.equal(seen[0]!.status!.health, 'HOST_HEALTH_HEALTHY');
  assert.equal(seen[0]!.status!.certificateSerial, serial);

  const refusals: Array<{
    code: 'SECURE_BOOT_OFF' | 'FORBIDDEN_DIGEST';
    message: string;
    details: Record<string, string>;
  }> = [
    { code: 'SECURE_BOOT_OFF' as const, message: 'Secure Boot is off', details: { event_index: '12' } },
    {
      code: 'FORBIDDEN_DIGEST' as const,
      message: 'grub 2.04 is forbidden',
      details: { rule_id: 'no-old-grub' },
    },
  ];
  const fail = verdict({ hostId, keys, pass: false, refusals });
  const sentAt = performance.now();
  await h.publishVerdict(fail);
  let status = await checkHost(h, hostId);
  while (status.health !== 'HOST_HEALTH_UNHEALTHY' && performance.now() - sentAt < 1000) {
    status = await checkHost(h, hostId);
  }
  const checkMs = performance.now() - sentAt;
  assert.equal(status.health, 'HOST_HEALTH_UNHEALTHY', 'CheckHost still healthy after 1 s');
  assert.ok(checkMs < 1000, `CheckHost turned unhealthy after ${checkMs} ms`);
  t.diagnostic(`CheckHost unhealthy ${checkMs.toFixed(1)} ms after the failing verdict was published`);
  assert.equal(status.reasonCode, 'SECURE_BOOT_OFF');
  assert.deepEqual(
    status.refusals.map((r) => r.code),
    ['SECURE_BOOT_OFF', 'FORBIDDEN_DIGEST'],
  );
  assert.equal(status.certificateSerial, '');
  assert.equal(status.expiresAt, null);

  const deadline = Date.now() + 1000;
  while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(seen.length, 2, 'WatchFleet did not see the refusal within 1 s');
  assert.equal(seen[1]!.cause, 'FLEET_CHANGE_CAUSE_REFUSED');
  assert.equal(seen[1]!.status!.health, 'HOST_HEALTH_UNHEALTHY');

  await h.certificates.until((m) => m.length >= 2);
  const refused = h.certificates.certificateEvents()[1]!;
  assert.equal(refused.type, 'CERTIFICATE_EVENT_TYPE_REFUSED');
  assert.equal(refused.attestationId, fail.attestationId);
  assert.deepEqual(
    refused.refusals.map((r) => [r.code, r.message, r.details]),
    refusals.map((r) => [r.code, r.message, r.details]),
  );
  assert.deepEqual(
    refused.revoked.map((r) => r.serial),
    [serial],
  );
  await h.events.until((m) => m.length >= 4);
  assert.deepEqual(
    h.events.socEvents().map((e) => e.type),
    [
      SOC_TYPES.attestationPassed,
      SOC_TYPES.certificateIssued,
      SOC_TYPES.attestationRefused,
      SOC_TYPES.certificateRevoked,
    ],
  );
  const refusedCe = cloudEventFromSocEvent(h.events.socEvents()[2]!);
  assert.deepEqual(
    ((refusedCe.data?.['refusals'] as Array<{ code: string }> | undefined) ?? []).map((r) => r.code),
    ['SECURE_BOOT_OFF', 'FORBIDDEN_DIGEST'],
  );

  // The CRL lists the serial; openssl refuses the certificate with it.
  const crl = await call<unknown, GetCrlResponse__Output>(h.client, 'GetCrl', {});
  const parsed = parseCrl(crl.der);
  assert.deepEqual(
    parsed.revoked.map((r) => r.serial.toString(16)),
    [serial],
  );
  if (!opensslMissing) {
    const dir = tempDir(t);
    const bundle = await call<unknown, GetCaBundleResponse__Output>(h.client, 'GetCaBundle', {});
    writeFileSync(path.join(dir, 'ca.pem'), bundle.pem);
    writeFileSync(path.join(dir, 'crl.pem'), toPem('X509 CRL', crl.der));
    const der = h.certificates.certificateEvents()[0]!.certificate!.der;
    writeFileSync(path.join(dir, 'cert.pem'), toPem('CERTIFICATE', der));
    const r = spawnSync(
      'openssl',
      [
        'verify',
        '-crl_check',
        '-CRLfile',
        path.join(dir, 'crl.pem'),
        '-CAfile',
        path.join(dir, 'ca.pem'),
        path.join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /certificate revoked/);
  }
});

test('a poison verdict goes to the dead-letter topic at once and the next verdict is still served', async (t) => {
  const h = await startHarness(t);
  const garbage = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
  const started = performance.now();
  await h.publishRaw('host-poison', garbage);
  await h.dlq.until((m) => m.length >= 1);
  assert.ok(performance.now() - started < 1000, 'dead-lettered without retry backoff');
  const dead = h.dlq.messages[0]!;
  assert.deepEqual(Buffer.from(dead.value), Buffer.from(garbage));
  assert.equal(dead.key, 'host-poison');
  assert.equal(dead.headers[DLQ_HEADERS.errorCode], 'PROTO_DECODE');
  assert.equal(dead.headers[DLQ_HEADERS.group], 'health-cert-issuer');
  assert.match(dead.headers[DLQ_HEADERS.reason] ?? '', /Verdict/);
  // A decodable verdict without an attestation id cannot be answered: poison too.
  const keys = hostKeys();
  await h.publishVerdict({ ...verdict({ hostId: 'host-poison', keys, pass: true }), attestationId: '' });
  // Keyed by another host than it names.
  await h.publishVerdict(verdict({ hostId: 'host-a', keys, pass: true }), 'host-b');
  await h.dlq.until((m) => m.length >= 3);
  // Different keys, different partitions: compare as a set.
  assert.deepEqual(h.dlq.messages.map((m) => m.headers[DLQ_HEADERS.errorCode]).sort(), [
    'PROTO_DECODE',
    'VERDICT_INVALID',
    'VERDICT_KEY_MISMATCH',
  ]);
  await h.publishVerdict(verdict({ hostId: 'host-poison', keys, pass: true }));
  await h.certificates.until((m) => m.length >= 1);
  assert.equal(h.certificates.certificateEvents()[0]!.type, 'CERTIFICATE_EVENT_TYPE_ISSUED');
  assert.equal(h.certificates.messages.length, 1, 'poison produced no certificate event');
});

test('a store outage delays a verdict instead of dead-lettering it', async (t) => {
  // More failures than the bus default of 5 deliveries: only deliveryAttempts keeps the verdict alive.
  let failures = 6;
  const h = await startHarness(t, {
    // The statement that writes a verdict (store.recordVerdict) fails while the store is "down".
    wrapDb: (db) =>
      Object.assign(Object.create(db) as typeof db, {
        query: (sql: string, params?: readonly unknown[]) => {
          if (failures > 0 && sql.includes('INSERT INTO attestations')) {
            failures--;
            return Promise.reject(new Error('connection refused (injected)'));
          }
          return db.query(sql, params);
        },
      }),
  });
  const v = verdict({ hostId: 'host-outage', keys: hostKeys(), pass: true });
  await h.publishVerdict(v);
  // Six failed deliveries (0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s of backoff), then the seventh succeeds.
  await h.certificates.until((m) => m.length >= 1, 20_000);
  assert.equal(failures, 0);
  assert.equal(h.certificates.certificateEvents()[0]!.type, 'CERTIFICATE_EVENT_TYPE_ISSUED');
  assert.equal(h.dlq.messages.length, 0);
});

test('a passing verdict the issuer cannot honour (key binding, PCR digest, version range) is refused with the reason, never issued', async (t) => {
  const h = await startHarness(t);
  const cases = [
    {
      hostId: 'host-forged',
      v: verdict({ hostId: 'host-forged', keys: hostKeys(), pass: true, certifyOther: true }),
      code: 'CERTIFY_INVALID',
    },
    {
      hostId: 'host-exportable',
      // Not fixedTPM: the key could live outside the TPM.
      v: verdict({ hostId: 'host-exportable', keys: hostKeys(0x00040060), pass: true }),
      code: 'SUBJECT_KEY_UNSUITABLE',
    },
    {
      hostId: 'host-no-digest',
      v: verdict({ hostId: 'host-no-digest', keys: hostKeys(), pass: true, pcrDigest: new Uint8Array(0) }),
      code: 'ISSUANCE_FAILED',
    },
    {
      hostId: 'host-huge-version',
      v: verdict({ hostId: 'host-huge-version', keys: hostKeys(), pass: true, policyVersion: 4_000_000_000 }),
      code: 'ISSUANCE_FAILED',
    },
    {
      hostId: 'host-no-key',
      v: { ...verdict({ hostId: 'host-no-key', keys: hostKeys(), pass: true }), certifiedKey: null },
      code: 'CERTIFY_INVALID',
    },
  ];
  for (const c of cases) await h.publishVerdict(c.v);
  await h.certificates.until((m) => m.length >= cases.length);
  const events = h.certificates.certificateEvents();
  for (const c of cases) {
    const e = events.find((x) => x.hostId === c.hostId)!;
    assert.equal(e.type, 'CERTIFICATE_EVENT_TYPE_REFUSED', c.hostId);
    assert.deepEqual(
      e.refusals.map((r) => r.code),
      [c.code],
      c.hostId,
    );
    assert.equal((await checkHost(h, c.hostId)).health, 'HOST_HEALTH_UNHEALTHY');
  }
  const { rows } = await h.db.query<{ n: bigint }>('SELECT count(*)::int8 AS n FROM certificates');
  assert.equal(rows[0]!.n, 0n);
});

test('a failing verdict without reasons is still refused with one; an unknown host is unhealthy, not an error', async (t) => {
  const h = await startHarness(t);
  await h.publishVerdict(verdict({ hostId: 'host-x', keys: hostKeys(), pass: false, refusals: [] }));
  // pass with refusals is treated as a failure.
  await h.publishVerdict(
    verdict({
      hostId: 'host-y',
      keys: hostKeys(),
      pass: true,
      refusals: [{ code: 'NO_POLICY', message: 'no active golden set', details: {} }],
    }),
  );
  await h.certificates.until((m) => m.length >= 2);
  const [x, y] = h.certificates.certificateEvents();
  assert.equal(x!.type, 'CERTIFICATE_EVENT_TYPE_REFUSED');
  assert.equal(x!.refusals.length, 1);
  assert.equal(x!.refusals[0]!.code, 'POLICY_RULE_FAILED');
  assert.equal(y!.type, 'CERTIFICATE_EVENT_TYPE_REFUSED');
  assert.equal(y!.refusals[0]!.code, 'NO_POLICY');
  const unknown = await checkHost(h, 'never-seen');
  assert.equal(unknown.health, 'HOST_HEALTH_UNHEALTHY');
  assert.match(unknown.reason, /never attested/);
  await assert.rejects(call(h.client, 'CheckHost', { hostId: '' }), { code: 3 });
});

test('NUL characters in the reasons of a verdict are stored and published as U+FFFD, not retried forever', async (t) => {
  const h = await startHarness(t);
  await h.publishVerdict(
    verdict({
      hostId: 'host-nul',
      keys: hostKeys(),
      pass: false,
      refusals: [{ code: 'EVENT_NOT_ALLOWED', message: 'bad\u0000name', details: { observed: 'a\u0000b' } }],
    }),
  );
  await h.certificates.until((m) => m.length >= 1);
  const [event] = h.certificates.certificateEvents();
  assert.equal(event!.refusals[0]!.message, 'bad\uFFFDname');
  assert.equal(event!.refusals[0]!.details['observed'], 'a\uFFFDb');
  assert.equal((await checkHost(h, 'host-nul')).reason, 'bad\uFFFDname');
});

test('a verdict with thousands of reasons yields one bounded REFUSED event that says how many were left out', async (t) => {
  const h = await startHarness(t);
  const refusals = Array.from({ length: 3000 }, (_, i) => ({
    code: 'EVENT_NOT_ALLOWED' as const,
    message: `event ${i} ${'x'.repeat(5000)}`,
    details: Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`k${k}`, String(k)])),
  }));
  await h.publishVerdict(verdict({ hostId: 'host-many', keys: hostKeys(), pass: false, refusals }));
  await h.certificates.until((m) => m.length >= 1);
  assert.ok(
    h.certificates.messages[0]!.value.byteLength < 1_000_000,
    `${h.certificates.messages[0]!.value.byteLength} bytes`,
  );
  const [event] = h.certificates.certificateEvents();
  const kept = event!.refusals.length - 1;
  assert.ok(kept > 10 && kept < 500, `${kept} reasons kept`);
  assert.match(event!.refusals[0]!.message, /^event 0 x+…$/);
  assert.equal(event!.refusals[0]!.message.length, 2048);
  assert.equal(Object.keys(event!.refusals[0]!.details).length, 32);
  const last = event!.refusals.at(-1)!;
  assert.deepEqual(last.details, { limit: '500', observed: '3000' });
  assert.equal(last.message, `and ${3000 - kept} more reasons, left out to keep the event publishable`);
  // Small reasons: the count cap applies.
  const small = Array.from({ length: 800 }, (_, i) => ({
    code: 'EVENT_NOT_ALLOWED' as const,
    message: `e${i}`,
    details: {},
  }));
  await h.publishVerdict(verdict({ hostId: 'host-many', keys: hostKeys(), pass: false, refusals: small }));
  await h.certificates.until((m) => m.length >= 2);
  const second = h.certificates.certificateEvents()[1]!;
  assert.equal(second.refusals.length, 500);
  assert.equal(second.refusals[498]!.message, 'e498');
  assert.match(second.refusals[499]!.message, /^and 301 more reasons/);
});

test('the development CA persists in the store: a restart signs with the same CA', async (t) => {
  const h = await startHarness(t);
  const before = await call<unknown, GetCaBundleResponse__Output>(h.client, 'GetCaBundle', {});
  await h.issuer.stop();
  const { start, configSchema, SERVICE_NAME } = await import('../src/index.ts');
  const { loadServiceConfig } = await import('@hostgate/service-runtime');
  const { silentLogger } = await import('./harness.ts');
  const again = await start(
    loadServiceConfig(
      { name: SERVICE_NAME, config: configSchema },
      { HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0' },
    ),
    { logger: silentLogger, bus: h.bus, db: h.db },
  );
  t.after(() => again.stop());
  assert.equal(again.issuer.ca.certificatePem, before.pem);
  assert.ok(again.issuer.ca.publicKey.equals(createPublicKey(before.pem)));
});

test('real PostgreSQL: issue, redeliver, revoke', { skip: postgresMissing() }, async (t) => {
  const h = await startHarness(t, { store: 'postgres' });
  const keys = hostKeys();
  const v = verdict({ hostId: 'pg-host', keys, pass: true, attestationId: randomUUID() });
  await h.publishVerdict(v);
  await h.publishVerdict(v);
  await h.certificates.until((m) => m.length >= 2);
  const [a, b] = h.certificates.certificateEvents();
  assert.equal(a!.certificate!.serial, b!.certificate!.serial);
  await h.publishVerdict(
    verdict({
      hostId: 'pg-host',
      keys,
      pass: false,
      refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
    }),
  );
  await h.certificates.until((m) => m.length >= 3);
  assert.deepEqual(
    h.certificates.certificateEvents()[2]!.revoked.map((r) => r.serial),
    [a!.certificate!.serial],
  );
  assert.equal((await checkHost(h, 'pg-host')).health, 'HOST_HEALTH_UNHEALTHY');
  // The queries PGlite and pg parameterise differently: text[] filters and row-value paging.
  await h.publishVerdict(verdict({ hostId: 'pg-host-2', keys, pass: true }));
  await h.certificates.until((m) => m.length >= 4);
  const watch = h.client.WatchFleet({ hostIds: ['pg-host-2', 'nobody'], includeSnapshot: true });
  t.after(() => watch.cancel());
  watch.on('error', () => {});
  const first = await new Promise<WatchFleetResponse__Output>((resolve) => watch.once('data', resolve));
  assert.equal(first.status?.hostId, 'pg-host-2');
  assert.equal(first.snapshotComplete, true);
  const page1 = await call<unknown, ListCertificatesResponse__Output>(h.client, 'ListCertificates', {
    pageSize: 1,
  });
  assert.equal(page1.certificates.length, 1);
  const page2 = await call<unknown, ListCertificatesResponse__Output>(h.client, 'ListCertificates', {
    pageSize: 1,
    pageToken: page1.nextPageToken,
  });
  assert.equal(page2.certificates.length, 1);
  assert.notEqual(page2.certificates[0]!.serial, page1.certificates[0]!.serial);
  assert.equal(page2.certificates[0]!.status, 'CERTIFICATE_STATUS_REVOKED');
  const crl = parseCrl((await call<unknown, GetCrlResponse__Output>(h.client, 'GetCrl', {})).der);
  assert.equal(crl.revoked.length, 1);
});

test('a CA from caCertFile/caKeyFile signs instead of the development CA; half a pair is refused at start', async (t) => {
  const { createCa, exportCaPem } = await import('@hostgate/health-cert');
  const dir = tempDir(t);
  const pem = exportCaPem(createCa({ commonName: 'Fleet Production CA' }));
  const certFile = path.join(dir, 'ca.pem');
  const keyFile = path.join(dir, 'ca.key');
  writeFileSync(certFile, pem.certificatePem);
  writeFileSync(keyFile, pem.privateKeyPem, { mode: 0o600 });
  const h = await startHarness(t, {
    config: {
      HOSTGATE_HEALTH_CERT_ISSUER_CA_CERT_FILE: certFile,
      HOSTGATE_HEALTH_CERT_ISSUER_CA_KEY_FILE: keyFile,
    },
  });
  const bundle = await call<unknown, GetCaBundleResponse__Output>(h.client, 'GetCaBundle', {});
  assert.equal(bundle.pem, pem.certificatePem);
  await h.publishVerdict(verdict({ hostId: 'host-prod', keys: hostKeys(), pass: true }));
  await h.certificates.until((m) => m.length >= 1);
  const der = h.certificates.certificateEvents()[0]!.certificate!.der;
  assert.equal(verifyHealthCert(der, { trusted: [bundle.certificates[0]!] }).hostId, 'host-prod');
  // The store holds no key when the CA comes from files.
  const { rows } = await h.db.query('SELECT 1 FROM ca');
  assert.equal(rows.length, 0);

  const { start, configSchema, SERVICE_NAME } = await import('../src/index.ts');
  const { loadServiceConfig } = await import('@hostgate/service-runtime');
  const { silentLogger } = await import('./harness.ts');
  const half = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    {
      HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0',
      HOSTGATE_HEALTH_CERT_ISSUER_CA_CERT_FILE: certFile,
    },
  );
  await assert.rejects(start(half, { logger: silentLogger, bus: h.bus, db: h.db }), { code: 'CA_CONFIG' });
  const other = exportCaPem(createCa({ commonName: 'Other CA' }));
  writeFileSync(keyFile, other.privateKeyPem);
  const mismatched = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    {
      HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0',
      HOSTGATE_HEALTH_CERT_ISSUER_CA_CERT_FILE: certFile,
      HOSTGATE_HEALTH_CERT_ISSUER_CA_KEY_FILE: keyFile,
    },
  );
  await assert.rejects(start(mismatched, { logger: silentLogger, bus: h.bus, db: h.db }), {
    code: 'CA_KEY_MISMATCH',
  });
});

test('the CRL is reused while nothing changes and gets a higher number when a revocation lands', async (t) => {
  const h = await startHarness(t);
  const first = parseCrl((await call<unknown, GetCrlResponse__Output>(h.client, 'GetCrl', {})).der);
  const again = parseCrl((await call<unknown, GetCrlResponse__Output>(h.client, 'GetCrl', {})).der);
  assert.equal(again.crlNumber, first.crlNumber);
  assert.equal(first.revoked.length, 0);
  const keys = hostKeys();
  await h.publishVerdict(verdict({ hostId: 'host-crl', keys, pass: true }));
  await h.certificates.until((m) => m.length >= 1);
  await h.issuer.issuer.revokeHost('host-crl', 'lost', 'ops');
  const crl = await call<unknown, GetCrlResponse__Output>(h.client, 'GetCrl', {});
  const after = parseCrl(crl.der);
  assert.ok(after.crlNumber! > first.crlNumber!);
  assert.deepEqual(
    after.revoked.map((r) => r.serial.toString(16)),
    [h.certificates.certificateEvents()[0]!.certificate!.serial],
  );
  const validity = Number(crl.nextUpdate!.seconds) - Number(crl.thisUpdate!.seconds);
  assert.equal(validity, 600);
});
