// Enrollment against a real TPM (swtpm with an EK certificate from its local CA): the EK chain, the
// credential activation, and a real quote + certify accepted by the collector afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AttestRequest__Output } from '@hostgate/protos';
import { startSwtpm, type Swtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { parsePcrList } from '@hostgate/tpm2-js-lite';
import {
  eccAkTemplate,
  eccSigningKeyTemplate,
  rsaAkTemplate,
  TPM_RH,
  Tpm,
} from '@hostgate/tpm2-js-lite/client';
import { QuoteCollector } from '../src/collector.ts';
import { QuoteCollectorStore } from '../src/store.ts';
import { openTestDb, REQUIRED, TestClock } from './helpers.ts';

function opensslMissing(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'openssl not on PATH (needed to make an untrusted root)';
  }
}

/** A self-signed CA that signed nothing we will see: the "wrong vendor" root. */
function untrustedRoot(): X509Certificate {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hg-qc-root-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=Some Other TPM Vendor Root',
        '-days',
        '2',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    return new X509Certificate(readFileSync(path.join(dir, 'c.pem')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const skip = swtpmMissing() ?? opensslMissing();

describe('enrollment with swtpm', { skip }, () => {
  let swtpm: Swtpm;
  let tpm: Tpm;
  let db: Awaited<ReturnType<typeof openTestDb>>;
  before(async () => {
    swtpm = await startSwtpm({ ekCert: true });
    tpm = Tpm.open(swtpm.address);
    db = await openTestDb('pglite');
  });
  after(async () => {
    await tpm?.close();
    await swtpm?.stop();
    await db?.close();
  });

  const collectorWith = (roots: X509Certificate[], clock: TestClock) =>
    new QuoteCollector({
      store: new QuoteCollectorStore(db.db),
      ekRoots: roots,
      nonceTtlMs: 60_000,
      enrollmentTtlMs: 300_000,
      pcrSelection: parsePcrList(REQUIRED),
      now: clock.now,
    });

  test('EK chain to the local CA root, ActivateCredential proves the AK, a real quote is then accepted', async () => {
    const clock = new TestClock();
    clock.ms = Date.now();
    const collector = collectorWith([new X509Certificate(swtpm.ca!.rootCertPem)], clock);
    const ek = await tpm.createEk('rsa');
    const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, rsaAkTemplate());
    try {
      const ekCert = await tpm.readEkCertificate('rsa');
      assert.ok(ekCert, 'swtpm_setup --create-ek-cert stored an RSA EK certificate');
      const issuer = new X509Certificate(swtpm.ca!.issuerCertPem).raw;
      const req = {
        ekPublic: Buffer.from(ek.public),
        ekCertificate: Buffer.from(ekCert),
        ekCertificateChain: [issuer],
        akPublic: Buffer.from(ak.public),
      };
      const enrolled = await collector.enroll(req);
      assert.deepEqual(enrolled.refusals, []);
      assert.match(enrolled.hostId, /^ek-[0-9a-f]{32}$/);
      // Same EK, same host id (a second enrollment, e.g. a new AK, keeps it).
      const again = await collector.enroll(req);
      assert.equal(again.hostId, enrolled.hostId);
      assert.notEqual(again.enrollmentId, enrolled.enrollmentId);

      // Before activation the AK is not trusted.
      assert.equal((await collector.store.getHost(enrolled.hostId))?.state, 'PENDING_ACTIVATION');

      const secret = await tpm.activateCredentialWithEk(
        ak.handle,
        ek.handle,
        enrolled.credentialBlob,
        enrolled.encryptedSecret,
      );
      const wrong = Uint8Array.from(secret, (b) => b ^ 0xff);
      const bad = await collector.activate(enrolled.enrollmentId, wrong);
      assert.deepEqual(
        bad.refusals.map((r) => r.code),
        ['ACTIVATION_FAILED'],
      );
      const ok = await collector.activate(enrolled.enrollmentId, secret);
      assert.deepEqual(ok.refusals, []);
      assert.equal(ok.state, 'ACTIVE');
      assert.equal(ok.hostId, enrolled.hostId);
      // An enrollment activates once.
      assert.deepEqual(
        (await collector.activate(enrolled.enrollmentId, secret)).refusals.map((r) => r.code),
        ['ENROLLMENT_UNKNOWN'],
      );
      // The second (never answered) enrollment expires.
      clock.advance(300_000);
      assert.deepEqual(
        (await collector.activate(again.enrollmentId, secret)).refusals.map((r) => r.code),
        ['ENROLLMENT_EXPIRED'],
      );
      await tpm.flushContext(ek.handle);

      // A real TPM2_Quote and TPM2_Certify pass every collector check.
      const key = await tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
      try {
        const challenge = await collector.challenge(ak.name);
        assert.ok(typeof challenge === 'object');
        const selection = [{ hash: 'sha256' as const, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }];
        const quote = await tpm.quote(ak.handle, challenge.nonce, selection);
        const values = await tpm.pcrRead(selection);
        const certify = await tpm.certify(key.handle, ak.handle, challenge.nonce);
        const attestReq: AttestRequest__Output = {
          akName: Buffer.from(ak.name),
          nonce: Buffer.from(challenge.nonce),
          quote: {
            attest: Buffer.from(quote.attest),
            signature: Buffer.from(quote.signature),
            pcrBanks: [
              {
                hashAlgorithm: 'HASH_ALGORITHM_SHA256',
                pcrs: [...(values.values.get('sha256') ?? [])].map(([index, digest]) => ({
                  index,
                  digest: Buffer.from(digest),
                })),
              },
            ],
          },
          eventLog: Buffer.alloc(0),
          certifiedKey: {
            keyPublic: Buffer.from(key.public),
            certifyAttest: Buffer.from(certify.attest),
            certifySignature: Buffer.from(certify.signature),
          },
        };
        const r = await collector.attest(attestReq);
        assert.equal(r.kind, 'accepted', r.kind === 'refused' ? JSON.stringify(r.refusals) : '');
        // The same quote again: the nonce is spent.
        const replay = await collector.attest(attestReq);
        assert.deepEqual(replay.kind === 'refused' ? replay.refusals.map((x) => x.code) : [], [
          'NONCE_REUSED',
        ]);
      } finally {
        await tpm.flushContext(key.handle);
      }
    } finally {
      await tpm.flushContext(ak.handle).catch(() => {});
      await tpm.flushContext(ek.handle).catch(() => {});
    }
  });

  test('EK_CERT_UNTRUSTED with another vendor root or none; EK_CERT_MISMATCH with another EK; KEY_INVALID for an unrestricted AK', async () => {
    const clock = new TestClock();
    clock.ms = Date.now();
    const ek = await tpm.createEk('rsa');
    const ekCert = await tpm.readEkCertificate('rsa');
    await tpm.flushContext(ek.handle);
    const eccEk = await tpm.createEk('ecc');
    await tpm.flushContext(eccEk.handle);
    const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, eccAkTemplate());
    await tpm.flushContext(ak.handle);
    const signer = await tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
    await tpm.flushContext(signer.handle);
    assert.ok(ekCert);
    const base = {
      ekPublic: Buffer.from(ek.public),
      ekCertificate: Buffer.from(ekCert),
      ekCertificateChain: [new X509Certificate(swtpm.ca!.issuerCertPem).raw],
      akPublic: Buffer.from(ak.public),
    };
    const codes = async (roots: X509Certificate[], req: typeof base) =>
      (await collectorWith(roots, clock).enroll(req)).refusals.map((r) => r.code);
    const trusted = [new X509Certificate(swtpm.ca!.rootCertPem)];
    assert.deepEqual(await codes(trusted, base), []);
    assert.deepEqual(await codes([untrustedRoot()], base), ['EK_CERT_UNTRUSTED']);
    assert.deepEqual(await codes([], base), ['EK_CERT_UNTRUSTED']);
    assert.deepEqual(
      await codes(trusted, { ...base, ekCertificateChain: [] }),
      ['EK_CERT_UNTRUSTED'],
      'the intermediate is needed',
    );
    assert.deepEqual(await codes(trusted, { ...base, ekPublic: Buffer.from(eccEk.public) }), [
      'EK_CERT_MISMATCH',
    ]);
    assert.deepEqual(await codes(trusted, { ...base, akPublic: Buffer.from(signer.public) }), [
      'KEY_INVALID',
    ]);
    const garbage = Buffer.from(ekCert);
    garbage[garbage.length - 5] = (garbage[garbage.length - 5] ?? 0) ^ 0xff;
    const tampered = await codes(trusted, { ...base, ekCertificate: garbage });
    assert.ok(
      tampered.includes('EK_CERT_UNTRUSTED') || tampered.includes('EK_CERT_INVALID'),
      tampered.join(),
    );
  });
});
