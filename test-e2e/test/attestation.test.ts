// End to end on real parts: swtpm with an EK certificate, Apache Kafka between the four
// services, PostgreSQL (DATABASE_URL) or PGlite. One TPM goes through the happy path and then
// through every way the design says a host must be refused, each with its reason code.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { promisify } from 'node:util';
import type {
  CaptureResponse__Output,
  CheckHostResponse__Output,
  GetCaBundleResponse__Output,
  GetCrlResponse__Output,
  PolicyEvaluatorServiceClient,
  PublishGoldenSetResponse__Output,
  SetHostStateResponse__Output,
  WatchFleetResponse__Output,
  ActivateGoldenSetResponse__Output,
} from '@hostgate/protos';
import { swtpmMissing } from '@hostgate/testkit/swtpm';
import { softwareAk, softwareQuote } from '@hostgate/tpm2-js-lite/testing';
import { unmarshalTpmtPublic } from '@hostgate/tpm2-js-lite';
import {
  callOptions,
  type KafkaBroker,
  kafkaSkipReason,
  type Pipeline,
  startKafka,
  toolMissing,
  startPipeline,
  unary,
} from '../src/harness.ts';
import { appDigests, buildLog, DEFAULT_BOOT_APPS, expectedPcrs, uefiBoot } from '../src/synthetic-log.ts';
import { refusalCodes, SwtpmHost } from '../src/tpm-agent.ts';

const execFileP = promisify(execFile);
const skip = kafkaSkipReason() ?? swtpmMissing() ?? toolMissing('openssl');
// Long enough for an honest quote on a loaded machine, short enough to wait out in the test.
const NONCE_TTL_MS = 5000;

function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

/** SPKI DER of a TPM ECC public area, built with node:crypto from x and y. */
function spkiOfTpmKey(tpmtPublic: Uint8Array): Buffer {
  const pub = unmarshalTpmtPublic(tpmtPublic);
  if (pub.type !== 'ecc') throw new Error('subject key is not ECC');
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64(pub.x), y: b64(pub.y) },
    format: 'jwk',
  });
  return key.export({ type: 'spki', format: 'der' });
}

async function checkHost(p: Pipeline, hostId: string) {
  const res = await unary<CheckHostResponse__Output>((cb) =>
    p.clients.issuer.CheckHost({ hostId }, callOptions(5000), cb),
  );
  return res.status;
}

async function capture(policy: PolicyEvaluatorServiceClient, hostId: string) {
  return unary<CaptureResponse__Output>((cb) =>
    policy.Capture({ hostId, activate: true, description: 'e2e capture' }, callOptions(), cb),
  );
}

describe('attestation through the four services on Kafka, with swtpm', { skip, timeout: 300_000 }, () => {
  let kafka: KafkaBroker;
  let host: SwtpmHost;
  let p: Pipeline;
  let hostId = '';
  let tmp = '';
  /** The certificate the host holds when the revocation test starts (issued in the NONCE_REUSED test). */
  let liveCertDer = new Uint8Array(0);
  const bootEvents = uefiBoot();
  const bootLog = buildLog(bootEvents);

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-certs-'));
    kafka = await startKafka();
    host = await SwtpmHost.create();
    p = await startPipeline({
      kafka,
      ekRoots: host.roots,
      config: { 'quote-collector': { nonceTtlMs: NONCE_TTL_MS } },
    });
    await host.boot(bootEvents, bootLog);
  });
  after(async () => {
    await p?.stop();
    await host?.stop();
    await kafka?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  test('enroll, refused NO_POLICY, capture, then a certificate openssl verifies whose key is in the TPM', {
    timeout: 120_000,
  }, async () => {
    const enrolled = await host.enrollOnly(p.clients.collector);
    assert.deepEqual(enrolled.refusals, [], 'enrollment refused');
    assert.match(enrolled.hostId, /\S/);
    hostId = enrolled.hostId;
    const activated = await host.activate(p.clients.collector, enrolled);
    assert.deepEqual(activated.refusals, []);
    assert.equal(activated.state, 'HOST_STATE_ACTIVE');
    assert.equal(activated.hostId, hostId);

    const first = await host.attest(p.clients.collector);
    assert.equal(first.response.result, 'refused');
    assert.deepEqual(refusalCodes(first.response), ['NO_POLICY']);
    assert.equal(first.response.hostId, hostId);

    const captured = await capture(p.clients.policy, hostId);
    assert.equal(captured.goldenSet?.active, true);
    // The captured PCR 7 is the value a plain SHA-256 replay of our log gives.
    const pcr7 = captured.goldenSet?.rules.find((r) => r.pcrExact?.pcr === 7)?.pcrExact?.allowed[0];
    assert.equal(
      Buffer.from(pcr7 ?? []).toString('hex'),
      Buffer.from(expectedPcrs(bootEvents).get('sha256')?.get(7) ?? []).toString('hex'),
    );

    const second = await host.attest(p.clients.collector);
    assert.equal(second.response.result, 'certificate', JSON.stringify(second.response.refused));
    const cert = second.response.certificate;
    assert.ok(cert !== undefined && cert !== null);
    assert.equal(cert.hostId, hostId);
    const certFile = path.join(tmp, 'host.pem');
    await writeFile(certFile, toPem(cert.der));
    const bundle = await unary<GetCaBundleResponse__Output>((cb) =>
      p.clients.issuer.GetCaBundle({}, callOptions(), cb),
    );
    const caFile = path.join(tmp, 'ca.pem');
    await writeFile(caFile, bundle.pem);
    const verified = await execFileP('openssl', ['verify', '-CAfile', caFile, certFile]);
    assert.match(verified.stdout, /: OK/);
    // Its subject key is the key the TPM certified, and the subject names the host.
    const x509 = new X509Certificate(cert.der);
    assert.deepEqual(
      x509.publicKey.export({ type: 'spki', format: 'der' }),
      spkiOfTpmKey(second.subjectKeyPublic),
    );
    assert.match(x509.subject, new RegExp(`CN=${hostId}`));
    const status = await checkHost(p, hostId);
    assert.equal(status?.health, 'HOST_HEALTH_HEALTHY');
    assert.equal(status?.certificateSerial, cert.serial);
  });

  test('an AK that was never enrolled is refused UNKNOWN_AK', { timeout: 60_000 }, async () => {
    const ak = softwareAk('p256');
    const nonce = new Uint8Array(32).fill(7);
    const pcrs = expectedPcrs(bootEvents);
    const sha256 = new Map([['sha256' as const, pcrs.get('sha256')!]]);
    const quote = softwareQuote({ ak, nonce, pcrs: sha256 });
    const response = await unary<import('@hostgate/protos').AttestResponse__Output>((cb) =>
      p.clients.collector.Attest(
        {
          akName: ak.name,
          nonce,
          quote: {
            attest: quote.attest,
            signature: quote.signature,
            pcrBanks: [
              {
                hashAlgorithm: 'HASH_ALGORITHM_SHA256',
                pcrs: [...sha256.get('sha256')!.entries()].map(([index, digest]) => ({ index, digest })),
              },
            ],
          },
          eventLog: bootLog,
        },
        callOptions(),
        cb,
      ),
    );
    assert.deepEqual(refusalCodes(response), ['UNKNOWN_AK']);
  });

  test('a second AK enrolled but never activated is refused AK_NOT_ACTIVATED', {
    timeout: 60_000,
  }, async () => {
    const enrolled = await host.enrollOnly(p.clients.collector, 'owner');
    assert.deepEqual(enrolled.refusals, []);
    assert.equal(enrolled.hostId, hostId, 'same EK, same host id');
    const r = await host.attest(p.clients.collector, { ak: 'owner' });
    assert.ok(refusalCodes(r.response).includes('AK_NOT_ACTIVATED'), JSON.stringify(r.response));
  });

  test('an EK certificate from an untrusted root is refused EK_CERT_UNTRUSTED', {
    timeout: 60_000,
  }, async () => {
    const stranger = await SwtpmHost.create();
    try {
      const enrolled = await stranger.enrollOnly(p.clients.collector);
      assert.deepEqual(
        enrolled.refusals.map((r) => r.code),
        ['EK_CERT_UNTRUSTED'],
      );
      assert.equal(enrolled.enrollmentId, '');
    } finally {
      await stranger.stop();
    }
  });

  test('a nonce used once is refused NONCE_REUSED the second time', { timeout: 60_000 }, async () => {
    const ok = await host.attest(p.clients.collector);
    assert.equal(ok.response.result, 'certificate', JSON.stringify(ok.response.refused));
    liveCertDer = new Uint8Array(ok.response.certificate?.der ?? []);
    const again = await host.attest(p.clients.collector, {
      nonce: ok.nonce,
      selection: [{ hash: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }],
    });
    assert.ok(refusalCodes(again.response).includes('NONCE_REUSED'), JSON.stringify(again.response));
  });

  test('a nonce answered after its expiry is refused NONCE_EXPIRED', { timeout: 60_000 }, async () => {
    const ch = await host.challenge(p.clients.collector);
    await new Promise((r) => setTimeout(r, NONCE_TTL_MS + 500));
    const late = await host.attest(p.clients.collector, {
      nonce: new Uint8Array(ch.nonce),
      selection: [{ hash: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }],
    });
    assert.ok(refusalCodes(late.response).includes('NONCE_EXPIRED'), JSON.stringify(late.response));
  });

  test('a quote over other PCRs than the challenge asked for is refused PCR_SELECTION_MISMATCH', {
    timeout: 60_000,
  }, async () => {
    const r = await host.attest(p.clients.collector, {
      selection: [{ hash: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6] }],
    });
    assert.ok(refusalCodes(r.response).includes('PCR_SELECTION_MISMATCH'), JSON.stringify(r.response));
  });

  test('an event log edited after the quote is refused EVENTLOG_MISMATCH and revokes the live certificate within 1 s (CheckHost, WatchFleet, CRL)', {
    timeout: 60_000,
  }, async () => {
    const before = await checkHost(p, hostId);
    assert.equal(before?.health, 'HOST_HEALTH_HEALTHY', 'host holds a live certificate before');
    assert.ok(liveCertDer.length > 0);
    // A scheduler checking offline: CA bundle + CRL. Before the refusal the certificate passes.
    const liveFile = path.join(tmp, 'live.pem');
    await writeFile(liveFile, toPem(liveCertDer));
    const caFile = path.join(tmp, 'ca-bundle.pem');
    const bundle = await unary<GetCaBundleResponse__Output>((cb) =>
      p.clients.issuer.GetCaBundle({}, callOptions(), cb),
    );
    await writeFile(caFile, bundle.pem);
    const crlCheck = async () => {
      const crl = await unary<GetCrlResponse__Output>((cb) => p.clients.issuer.GetCrl({}, callOptions(), cb));
      const crlFile = path.join(tmp, 'crl.pem');
      await writeFile(crlFile, toPem(crl.der, 'X509 CRL'));
      return execFileP('openssl', [
        'verify',
        '-crl_check',
        '-CAfile',
        caFile,
        '-CRLfile',
        crlFile,
        liveFile,
      ]).then(
        (r) => r.stdout + r.stderr,
        (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
      );
    };
    assert.match(await crlCheck(), /: OK/);
    // A scheduler watching: the change must arrive on WatchFleet too.
    const changes: WatchFleetResponse__Output[] = [];
    const watch = p.clients.issuer.WatchFleet({ hostIds: [hostId], includeSnapshot: false });
    watch.on('data', (m: WatchFleetResponse__Output) => changes.push(m));
    watch.on('error', () => {}); // CANCELLED when the test closes it
    try {
      await new Promise((r) => setTimeout(r, 200)); // the stream is registered before the change
      // Same events, but the first boot application's digest swapped: PCR 4 no longer replays.
      const edited = bootEvents.map((e, i) =>
        i === bootEvents.findIndex((x) => x.digests !== undefined)
          ? { ...e, digests: appDigests('\\EFI\\other.efi') }
          : e,
      );
      const r = await host.attest(p.clients.collector, { eventLog: buildLog(edited) });
      const refusedAt = Date.now();
      const codes = refusalCodes(r.response);
      assert.ok(codes.includes('EVENTLOG_MISMATCH'), JSON.stringify(r.response));
      const mismatch = r.response.refused?.refusals.find((x) => x.code === 'EVENTLOG_MISMATCH');
      assert.match(JSON.stringify(mismatch), /4/, 'names PCR 4');
      let status = await checkHost(p, hostId);
      while (status?.health !== 'HOST_HEALTH_UNHEALTHY' && Date.now() - refusedAt < 1000) {
        await new Promise((res) => setTimeout(res, 25));
        status = await checkHost(p, hostId);
      }
      assert.equal(
        status?.health,
        'HOST_HEALTH_UNHEALTHY',
        `CheckHost still ${status?.health} 1 s after the refusal`,
      );
      while (
        !changes.some((c) => c.status?.health === 'HOST_HEALTH_UNHEALTHY') &&
        Date.now() - refusedAt < 1000
      )
        await new Promise((res) => setTimeout(res, 25));
      const change = changes.find((c) => c.status?.health === 'HOST_HEALTH_UNHEALTHY');
      assert.ok(
        change !== undefined,
        `no UNHEALTHY change on WatchFleet within 1 s: ${JSON.stringify(changes)}`,
      );
      assert.equal(change.cause, 'FLEET_CHANGE_CAUSE_REFUSED');
      assert.equal(change.status?.hostId, hostId);
    } finally {
      watch.cancel();
    }
    // Offline, the revoked certificate now fails against the current CRL.
    assert.match(await crlCheck(), /certificate revoked/);
  });

  test('an event log over 8 MiB is refused EVIDENCE_TOO_LARGE', { timeout: 60_000 }, async () => {
    const huge = new Uint8Array(9 << 20);
    huge.set(bootLog);
    const r = await host.attest(p.clients.collector, { eventLog: huge });
    assert.ok(refusalCodes(r.response).includes('EVIDENCE_TOO_LARGE'), JSON.stringify(r.response.refused));
  });

  test('a host an operator disabled is refused HOST_DISABLED, and attests again once re-enabled', {
    timeout: 60_000,
  }, async () => {
    const setState = (state: 'HOST_STATE_DISABLED' | 'HOST_STATE_ACTIVE') => {
      const md = new grpc.Metadata();
      md.set('x-hostgate-operator', 'e2e');
      return unary<SetHostStateResponse__Output>((cb) =>
        p.clients.collector.SetHostState({ hostId, state, reason: 'e2e' }, md, callOptions(), cb),
      );
    };
    assert.equal((await setState('HOST_STATE_DISABLED')).host?.state, 'HOST_STATE_DISABLED');
    const refused = await host.attest(p.clients.collector);
    assert.deepEqual(refusalCodes(refused.response), ['HOST_DISABLED']);
    assert.equal((await setState('HOST_STATE_ACTIVE')).host?.state, 'HOST_STATE_ACTIVE');
    const ok = await host.attest(p.clients.collector);
    assert.equal(ok.response.result, 'certificate', JSON.stringify(ok.response.refused));
    assert.equal((await checkHost(p, hostId))?.health, 'HOST_HEALTH_HEALTHY');
  });

  test('a boot with Secure Boot off is refused SECURE_BOOT_OFF', { timeout: 60_000 }, async () => {
    await host.reboot();
    const events = uefiBoot({ secureBoot: false });
    await host.boot(events, buildLog(events));
    const r = await host.attest(p.clients.collector);
    assert.ok(refusalCodes(r.response).includes('SECURE_BOOT_OFF'), JSON.stringify(r.response));
  });

  test('a forbidden boot application is refused FORBIDDEN_DIGEST', { timeout: 60_000 }, async () => {
    const evil = '\\EFI\\evil\\grubx64.efi';
    const published = await unary<PublishGoldenSetResponse__Output>((cb) =>
      p.clients.policy.PublishGoldenSet(
        {
          goldenSet: {
            hostClass: 'default',
            description: 'e2e: Secure Boot and no revoked grub',
            rules: [
              { id: 'secure-boot', secureBootEnabled: {} },
              { id: 'revoked-grub', forbiddenDigests: { digests: [appDigests(evil).sha256] } },
            ],
          },
        },
        callOptions(),
        cb,
      ),
    );
    await unary<ActivateGoldenSetResponse__Output>((cb) =>
      p.clients.policy.ActivateGoldenSet(
        { hostClass: 'default', version: published.goldenSet?.version ?? 0, reason: 'e2e' },
        callOptions(),
        cb,
      ),
    );
    await host.reboot();
    const events = uefiBoot({ bootApps: [...DEFAULT_BOOT_APPS, evil] });
    await host.boot(events, buildLog(events));
    const r = await host.attest(p.clients.collector);
    assert.deepEqual(refusalCodes(r.response), ['FORBIDDEN_DIGEST'], JSON.stringify(r.response));
  });

  test('a TPM whose counters went backwards (an old state replayed) is refused COUNTERS_BACKWARDS', {
    timeout: 90_000,
  }, async () => {
    const snapshot = path.join(tmp, 'tpm-snapshot');
    await host.reboot({ saveTo: snapshot });
    await host.reboot();
    await host.boot(bootEvents, bootLog);
    const ok = await host.attest(p.clients.collector);
    assert.equal(ok.response.result, 'certificate', JSON.stringify(ok.response.refused));
    await host.reboot({ restoreFrom: snapshot });
    await host.boot(bootEvents, bootLog);
    const r = await host.attest(p.clients.collector);
    assert.ok(refusalCodes(r.response).includes('COUNTERS_BACKWARDS'), JSON.stringify(r.response));
  });
});
