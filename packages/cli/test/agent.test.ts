// hostgate agent, spawned as a host would run it, against swtpm and a quote-collector started in
// this process (PGlite, in-process bus) whose downstream is a stub answering each Evidence.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, randomUUID, X509Certificate } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { InProcessBus } from '@hostgate/bus';
import {
  type CertificateEvent,
  decodeEvidence,
  encodeCertificateEvent,
  type Evidence__Output,
  KAFKA_TOPICS,
} from '@hostgate/protos';
import { configSchema, SERVICE_NAME, start } from '@hostgate/quote-collector';
import {
  createLogger,
  type EmbeddedPostgres,
  loadServiceConfig,
  openEmbeddedPostgres,
  type RunningService,
} from '@hostgate/service-runtime';
import { startSwtpm, type Swtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { createCa, issueHealthCert } from '@hostgate/health-cert';
import { TPMA, unmarshalTpmtPublic } from '@hostgate/tpm2-js-lite';
import { eccSigningKeyTemplate, TPM_RH, Tpm } from '@hostgate/tpm2-js-lite/client';
import { softwareAk } from '@hostgate/tpm2-js-lite/testing';
import { createServiceClient } from '../src/grpc-client.ts';
import { assertUsageError } from './usage-error.ts';

const bin = path.resolve(import.meta.dirname, '../bin/hostgate');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawned asynchronously: the collector answering it runs in this very process. */
function hostgate(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      bin,
      ['agent', ...args],
      { env: { ...process.env, HOSTGATE_NODE: process.execPath, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test('usage errors exit 2; an unreadable event log exits 1 before touching the TPM', async () => {
  let r = await hostgate(['enroll', '--json']);
  assertUsageError(r, 'agent', 'enroll --json');
  assert.match(r.stderr, /--tpm is required/);
  r = await hostgate(['attest', '--tpm', 'swtpm:127.0.0.1:1']);
  assertUsageError(r, 'agent', 'attest without --out');
  assert.match(r.stderr, /--out FILE is required/);
  r = await hostgate(['attest', '--tpm', 'nonsense', '--out', 'x']);
  assertUsageError(r, 'agent', 'attest --tpm nonsense');
  r = await hostgate(['frobnicate']);
  assertUsageError(r, 'agent', 'agent frobnicate');
  r = await hostgate([]);
  assertUsageError(r, 'agent', 'agent');
  r = await hostgate(['enroll', '--tpm', 'swtpm:127.0.0.1:1', '--bogus']);
  assertUsageError(r, 'agent', 'enroll --bogus');
  const missingLog = ['attest', '--tpm', 'swtpm:127.0.0.1:1', '--out', 'x', '--eventlog', '/nonexistent/log'];
  r = await hostgate(missingLog);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /EVENTLOG_UNREADABLE: cannot read the event log \/nonexistent\/log: ENOENT/);
  r = await hostgate([...missingLog, '--json']);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, 'EVENTLOG_UNREADABLE');
  // Without --eventlog (nor --extend-from) the kernel's log is read; here, usually, it cannot be.
  const kernelLog = '/sys/kernel/security/tpm0/binary_bios_measurements';
  const readable = await access(kernelLog, fsConstants.R_OK).then(
    () => true,
    () => false,
  );
  r = await hostgate(['attest', '--tpm', 'swtpm:127.0.0.1:1', '--out', 'x']);
  assert.equal(r.code, 1);
  if (!readable) {
    assert.match(
      r.stderr,
      /EVENTLOG_UNREADABLE: cannot read the event log \/sys\/kernel\/security\/tpm0\/binary_bios_measurements: \w+ \(run as root/,
    );
  }
});

// A crypto-agile (TCG PFP) event log with SHA-1 and SHA-256 digests, built here byte by byte.
function syntheticLog(events: { pcr: number; type: number; data: string }[]): Uint8Array {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    return b;
  };
  const specId = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0), // platformClass
    Buffer.from([0, 2, 0, 2]), // specVersionMinor, Major, errata, uintnSize (2 = 64-bit)
    u32(2),
    u16(0x0004),
    u16(20),
    u16(0x000b),
    u16(32),
    Buffer.from([0]), // vendorInfoSize
  ]);
  // The header record is a TCG_PCR_EVENT (SHA-1 format): PCR 0, EV_NO_ACTION, zero digest.
  parts.push(u32(0), u32(3), Buffer.alloc(20), u32(specId.length), specId);
  for (const e of events) {
    const data = Buffer.from(e.data);
    parts.push(
      u32(e.pcr),
      u32(e.type),
      u32(2),
      u16(0x0004),
      createHash('sha1').update(data).digest(),
      u16(0x000b),
      createHash('sha256').update(data).digest(),
      u32(data.length),
      data,
    );
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** Some other P-256 signing key's TPMT_PUBLIC (not the TPM's). */
function softwareSubjectKey(): Uint8Array {
  return softwareAk('p256', {
    attributes: TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.sign,
  }).publicBytes;
}

const EV_POST_CODE = 0x1;
const EV_SEPARATOR = 0x4;
const EV_NO_ACTION = 0x3;

describe('hostgate agent enroll + attest against swtpm', { skip: swtpmMissing() }, () => {
  let swtpm: Swtpm;
  let dir: string;
  let embedded: EmbeddedPostgres;
  let bus: InProcessBus;
  let svc: RunningService;
  let server: string;
  const evidence: Evidence__Output[] = [];
  /** What the stub downstream answers next. */
  let answer: (e: Evidence__Output) => Partial<CertificateEvent> = () => ({});
  const ca = createCa({ commonName: 'HostGate agent test CA' });
  /** A real health certificate for the key the Evidence certified (what the issuer would do). */
  const issueFor = (e: Evidence__Output, keyPublic?: Uint8Array) => {
    const k = unmarshalTpmtPublic(keyPublic ?? e.certifiedKey!.keyPublic);
    if (k.type !== 'ecc') throw new Error('expected an ECC subject key');
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
    const subjectPublicKey = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64(k.x), y: b64(k.y) },
      format: 'jwk',
    });
    return issueHealthCert({
      ca,
      hostId: e.hostId,
      subjectPublicKey,
      policyClass: 'default',
      policyVersion: 1,
      verdictId: randomUUID(),
      pcrDigest: Buffer.from(e.quoteInfo!.pcrDigest).toString('hex'),
    });
  };
  let lastIssued: Uint8Array | undefined;
  /** A quote-collector in this process trusting the EK roots in the PEM file `roots`, on database `db`. */
  const startCollector = (roots: string, db: string) =>
    start(
      loadServiceConfig(
        { name: SERVICE_NAME, config: configSchema },
        { HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '127.0.0.1:0', HOSTGATE_EK_ROOTS: roots },
      ),
      {
        logger: createLogger({
          service: SERVICE_NAME,
          level: 'silent',
          destination: new Writable({ write: (_c, _e, cb) => cb() }),
        }),
        bus,
        db: embedded.db(db),
      },
    );
  /** `hostgate agent attest` against this swtpm and collector, `flags` after those two. */
  const attest = (...flags: string[]) =>
    hostgate(['attest', '--tpm', swtpm.address, '--server', server, ...flags]);

  before(async () => {
    swtpm = await startSwtpm({ ekCert: true });
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-agent-'));
    const roots = path.join(dir, 'ek-roots.pem');
    // The swtpm local CA: root and the intermediate that signed the EK certificate.
    await writeFile(roots, swtpm.ca!.rootCertPem + swtpm.ca!.issuerCertPem);
    embedded = await openEmbeddedPostgres(undefined);
    bus = new InProcessBus();
    svc = await startCollector(roots, 'quote_collector');
    server = svc.address;
    await bus.subscribe({
      topic: KAFKA_TOPICS.evidence,
      group: 'stub-downstream',
      handler: async (m) => {
        const e = decodeEvidence(m.value);
        evidence.push(e);
        await bus.publish(
          KAFKA_TOPICS.certificates,
          e.hostId,
          encodeCertificateEvent({
            eventId: randomUUID(),
            hostId: e.hostId,
            attestationId: e.attestationId,
            ...answer(e),
          }),
        );
      },
    });
  });
  after(async () => {
    await svc?.stop();
    await bus?.close();
    await embedded?.close();
    await swtpm?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('enroll prints the host id; attest --extend-from writes the certificate; refusals exit 1 with every reason', async () => {
    const enrolled = await hostgate(['enroll', '--tpm', swtpm.address, '--server', server]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const { hostId } = JSON.parse(enrolled.stdout) as { hostId: string };
    assert.match(hostId, /^ek-[0-9a-f]{32}$/);
    // Enrolling again (same EK, same AK) keeps the host id.
    const again = await hostgate(['enroll', '--tpm', swtpm.address, '--server', server, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).hostId, hostId);

    const log = syntheticLog([
      { pcr: 0, type: EV_POST_CODE, data: 'firmware volume' },
      { pcr: 7, type: EV_SEPARATOR, data: '\0\0\0\0' },
      { pcr: 4, type: EV_POST_CODE, data: 'bootloader' },
      { pcr: 14, type: EV_POST_CODE, data: 'mok list' },
      { pcr: 17, type: EV_POST_CODE, data: 'DRTM, never extended' },
      { pcr: 5, type: EV_NO_ACTION, data: 'not a measurement' },
    ]);
    const logFile = path.join(dir, 'binary_bios_measurements');
    await writeFile(logFile, log);
    const out = path.join(dir, 'cert.pem');
    answer = (e) => {
      lastIssued = issueFor(e).der;
      return {
        type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
        certificate: { serial: '2a', hostId: e.hostId, der: lastIssued, attestationId: e.attestationId },
      };
    };
    const attested = await attest('--extend-from', logFile, '--out', out);
    assert.equal(attested.code, 0, attested.stderr);
    assert.match(attested.stderr, /extended 4 measurements/);
    const pem = await readFile(out, 'utf8');
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\n/);
    assert.deepEqual(
      Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'),
      Buffer.from(lastIssued!),
    );

    assert.equal(evidence.length, 1);
    const e = evidence[0]!;
    assert.equal(e.hostId, hostId);
    assert.deepEqual(Buffer.from(e.eventLog), Buffer.from(log), 'the extend-from log is the one sent');

    // The TPM's PCRs are what the log replays to (EV_NO_ACTION and PCR 17 left out).
    const expect = (events: string[]) =>
      events.reduce(
        (pcr, d) => createHash('sha256').update(pcr).update(createHash('sha256').update(d).digest()).digest(),
        Buffer.alloc(32),
      );
    const tpm = Tpm.open(swtpm.address);
    try {
      const pcrs = await tpm.pcrRead([{ hash: 'sha256', pcrs: [0, 4, 5, 7, 14] }]);
      const bank = pcrs.values.get('sha256')!;
      assert.deepEqual(Buffer.from(bank.get(0)!), expect(['firmware volume']));
      assert.deepEqual(Buffer.from(bank.get(4)!), expect(['bootloader']));
      assert.deepEqual(Buffer.from(bank.get(7)!), expect(['\0\0\0\0']));
      assert.deepEqual(Buffer.from(bank.get(14)!), expect(['mok list']));
      assert.deepEqual(Buffer.from(bank.get(5)!), Buffer.alloc(32));
      // The certificate's key is the TPM's: the same primary re-created gives the same public key.
      const key = await tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
      await tpm.flushContext(key.handle);
      const tpmKey = unmarshalTpmtPublic(key.public);
      const certKey = new X509Certificate(pem).publicKey.export({ format: 'jwk' });
      assert.ok(tpmKey.type === 'ecc');
      assert.equal(certKey.x, Buffer.from(tpmKey.x).toString('base64url'));
      assert.equal(certKey.y, Buffer.from(tpmKey.y).toString('base64url'));
      // The quoted values sent are the TPM's.
      const sent = e.quote?.pcrBanks.find((b) => b.hashAlgorithm === 'HASH_ALGORITHM_SHA256');
      assert.deepEqual(
        Buffer.from(sent?.pcrs.find((p) => p.index === 4)?.digest ?? []),
        expect(['bootloader']),
      );
    } finally {
      await tpm.close();
    }

    // Again with --json: the PCRs already hold the log, nothing is extended twice.
    const second = await attest('--extend-from', logFile, '--out', out, '--json');
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.equal(summary.hostId, hostId);
    assert.equal(summary.serial, '2a');
    assert.equal(summary.attestationId, evidence[1]?.attestationId);

    // A certificate for another key is not kept (exit 1, nothing written).
    answer = (e) => ({
      type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
      certificate: {
        serial: '2b',
        hostId: e.hostId,
        der: issueFor(e, softwareSubjectKey()).der,
        attestationId: e.attestationId,
      },
    });
    const wrongKey = path.join(dir, 'wrong.pem');
    const mismatch = await attest('--eventlog', logFile, '--out', wrongKey);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /CERTIFICATE_KEY_MISMATCH/);
    await assert.rejects(readFile(wrongKey), { code: 'ENOENT' });

    // Refused downstream: exit 1 and every reason, as text and as JSON.
    answer = () => ({
      type: 'CERTIFICATE_EVENT_TYPE_REFUSED',
      refusals: [
        { code: 'NO_POLICY', message: "host class 'default' has no active golden set" },
        { code: 'SECURE_BOOT_OFF', message: 'Secure Boot is not enabled', details: { event_index: '3' } },
      ],
    });
    const refused = await attest('--eventlog', logFile, '--out', path.join(dir, 'no.pem'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^NO_POLICY: host class 'default' has no active golden set$/m);
    assert.match(refused.stderr, /^SECURE_BOOT_OFF: Secure Boot is not enabled$/m);
    const refusedJson = await attest('--eventlog', logFile, '--out', path.join(dir, 'no.pem'), '--json');
    assert.equal(refusedJson.code, 1);
    const body = JSON.parse(refusedJson.stdout);
    assert.equal(body.refused, true);
    assert.equal(body.hostId, hostId);
    assert.deepEqual(
      body.refusals.map((r: { code: string }) => r.code),
      ['NO_POLICY', 'SECURE_BOOT_OFF'],
    );
    assert.equal(body.refusals[1].details.event_index, '3');
    await assert.rejects(readFile(path.join(dir, 'no.pem')), { code: 'ENOENT' });

    // The collector's own refusals reach the agent the same way: an operator disables the host.
    const qc = createServiceClient('quote-collector', { server });
    try {
      await new Promise((resolve, reject) =>
        qc.SetHostState({ hostId, state: 'HOST_STATE_DISABLED', reason: 'test' }, (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
    } finally {
      qc.close();
    }
    const disabled = await attest('--eventlog', logFile, '--out', path.join(dir, 'no.pem'));
    assert.equal(disabled.code, 1);
    assert.match(disabled.stderr, /^HOST_DISABLED: host ek-[0-9a-f]{32} is disabled by an operator: test$/m);

    // No collector at all: exit 1 with a line that says so.
    const nothing = await hostgate(['enroll', '--tpm', swtpm.address, '--server', '127.0.0.1:1']);
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /UNAVAILABLE: cannot reach 127\.0\.0\.1:1/);
  });

  test('enroll against roots without the intermediate: EK_CERT_UNTRUSTED, then accepted with --ek-chain', async () => {
    const rootOnly = path.join(dir, 'root-only.pem');
    const chain = path.join(dir, 'chain.pem');
    await writeFile(rootOnly, swtpm.ca!.rootCertPem);
    await writeFile(chain, swtpm.ca!.issuerCertPem);
    const other = await startCollector(rootOnly, 'quote_collector_root_only');
    try {
      const refused = await hostgate(['enroll', '--tpm', swtpm.address, '--server', other.address, '--json']);
      assert.equal(refused.code, 1);
      const body = JSON.parse(refused.stdout);
      assert.equal(body.refused, true);
      assert.deepEqual(
        body.refusals.map((r: { code: string }) => r.code),
        ['EK_CERT_UNTRUSTED'],
      );
      const ok = await hostgate([
        'enroll',
        '--tpm',
        swtpm.address,
        '--server',
        other.address,
        '--ek-chain',
        chain,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(JSON.parse(ok.stdout).hostId, /^ek-[0-9a-f]{32}$/);
    } finally {
      await other.stop();
    }
  });
});
