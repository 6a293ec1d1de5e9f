import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { createCa } from '../src/ca.ts';
import { createCrl, MAX_CRL_ENTRIES, parseCrl } from '../src/crl.ts';
import { HealthCertError } from '../src/errors.ts';
import { issueHealthCert } from '../src/health-cert.ts';
import { verifyCrl, verifyHealthCert } from '../src/verify.ts';
import { openssl, opensslSkip, workDir } from './helpers.ts';

const code = (c: string) => (e: unknown) => e instanceof HealthCertError && e.code === c;
const ca = createCa({ commonName: 'HostGate CRL CA', validityDays: 365 });
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const issue = (hostId: string, serial?: bigint) =>
  issueHealthCert({
    ca,
    hostId,
    subjectPublicKey: key,
    policyClass: 'batch',
    policyVersion: 3,
    verdictId: `verdict-${hostId}`,
    pcrDigest: '11'.repeat(32),
    ...(serial === undefined ? {} : { serial }),
  });

test('createCrl: a v2 CRL that parseCrl reads back, with reasons and the CRL number', () => {
  const thisUpdate = new Date('2026-11-25T10:00:00Z');
  const crl = createCrl({
    ca,
    revoked: [
      { serial: 5n, revokedAt: new Date('2026-11-25T09:30:00Z'), reason: 'privilegeWithdrawn' },
      { serial: (1n << 130n) + 7n, revokedAt: new Date('2026-11-25T09:45:00Z') },
      { serial: 6n, revokedAt: new Date('2026-11-25T09:50:00Z'), reason: 'superseded' },
    ],
    thisUpdate,
    nextUpdate: new Date('2026-11-25T11:00:00Z'),
    crlNumber: 17n,
  });
  const parsed = parseCrl(crl.der);
  assert.equal(parsed.crlNumber, 17n);
  assert.equal(parsed.thisUpdate.toISOString(), '2026-11-25T10:00:00.000Z');
  assert.equal(parsed.nextUpdate?.toISOString(), '2026-11-25T11:00:00.000Z');
  assert.deepEqual(Buffer.from(parsed.issuer), Buffer.from(ca.subject));
  assert.deepEqual(Buffer.from(parsed.authorityKeyIdentifier!), Buffer.from(ca.keyIdentifier));
  assert.deepEqual(
    parsed.revoked.map((r) => [r.serial, r.revokedAt.toISOString(), r.reason]),
    [
      [5n, '2026-11-25T09:30:00.000Z', 'privilegeWithdrawn'],
      [(1n << 130n) + 7n, '2026-11-25T09:45:00.000Z', 'unspecified'],
      [6n, '2026-11-25T09:50:00.000Z', 'superseded'],
    ],
  );
  assert.deepEqual(parseCrl(crl.pem).revoked.length, 3);
  assert.equal(verifyCrl(crl.der, { trusted: ca, at: new Date('2026-11-25T10:30:00Z') }).crlNumber, 17n);
  assert.throws(
    () => verifyCrl(crl.der, { trusted: ca, at: new Date('2026-11-25T09:59:59Z') }),
    code('CRL_STALE'),
  );
  assert.equal(
    verifyCrl(crl.der, { trusted: ca, at: new Date('2026-11-25T09:59:00Z'), clockSkewSeconds: 60 }).crlNumber,
    17n,
  );
  assert.throws(
    () => verifyCrl(crl.der, { trusted: ca, at: new Date('2026-11-25T11:00:01Z') }),
    code('CRL_STALE'),
  );
  assert.throws(
    () => verifyCrl(crl.der, { trusted: ca, at: new Date(Number.NaN) }),
    code('ARGUMENT_INVALID'),
  );
  // Default CRL number: thisUpdate in seconds, so successive CRLs number upwards.
  const a = createCrl({ ca, revoked: [], thisUpdate, nextUpdate: new Date('2026-11-26T00:00:00Z') });
  assert.equal(a.crlNumber, BigInt(Date.parse('2026-11-25T10:00:00Z') / 1000));
  assert.deepEqual(parseCrl(a.der).revoked, []);
});

test('createCrl refuses bad arguments', () => {
  const next = new Date(Date.now() + 3_600_000);
  const at = new Date();
  assert.throws(() => createCrl({ ca, revoked: [], nextUpdate: new Date(0) }), code('ARGUMENT_INVALID'));
  assert.throws(
    () =>
      createCrl({
        ca,
        revoked: [
          { serial: 1n, revokedAt: at },
          { serial: 1n, revokedAt: at },
        ],
        nextUpdate: next,
      }),
    code('ARGUMENT_INVALID'),
  );
  assert.throws(
    () => createCrl({ ca, revoked: [{ serial: 0n, revokedAt: at }], nextUpdate: next }),
    code('ARGUMENT_INVALID'),
  );
  assert.throws(
    () =>
      createCrl({ ca, revoked: [{ serial: 1n, revokedAt: at, reason: 'nope' as never }], nextUpdate: next }),
    code('ARGUMENT_INVALID'),
  );
  assert.throws(
    () => createCrl({ ca, revoked: [], nextUpdate: next, crlNumber: -1n }),
    code('ARGUMENT_INVALID'),
  );
  const tooMany = Array.from({ length: MAX_CRL_ENTRIES + 1 }, (_, i) => ({
    serial: BigInt(i + 1),
    revokedAt: at,
  }));
  assert.throws(() => createCrl({ ca, revoked: tooMany, nextUpdate: next }), code('ARGUMENT_INVALID'));
});

test('openssl reads the CRL and refuses a revoked certificate with -crl_check', {
  skip: opensslSkip,
}, (t) => {
  const dir = workDir(t);
  const revoked = issue('h-revoked');
  const live = issue('h-live');
  const now = Date.now();
  const crl = createCrl({
    ca,
    revoked: [{ serial: revoked.serial, revokedAt: new Date(now - 1000), reason: 'privilegeWithdrawn' }],
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 3_600_000),
    crlNumber: 9n,
  });
  const caFile = dir.write('ca.pem', ca.certificatePem);
  const crlFile = dir.write('crl.pem', crl.pem);
  const shown = openssl('crl', '-in', crlFile, '-noout', '-text', '-CAfile', caFile);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout + shown.stderr, /verify OK/);
  assert.match(shown.stdout, /Version 2 \(0x1\)/);
  assert.match(shown.stdout, /X509v3 CRL Number:\s+9/);
  assert.match(shown.stdout, /Privilege Withdrawn/);
  assert.match(shown.stdout, new RegExp(`Serial Number: 0?${revoked.serial.toString(16).toUpperCase()}`));
  const bad = openssl(
    'verify',
    '-crl_check',
    '-CRLfile',
    crlFile,
    '-CAfile',
    caFile,
    dir.write('revoked.pem', revoked.pem),
  );
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /certificate revoked/);
  const good = openssl(
    'verify',
    '-crl_check',
    '-CRLfile',
    crlFile,
    '-CAfile',
    caFile,
    dir.write('live.pem', live.pem),
  );
  assert.equal(good.status, 0, good.stdout + good.stderr);
  // A CRL signed by another CA with the same name is not accepted by openssl either.
  const impostor = createCa({ commonName: 'HostGate CRL CA', validityDays: 365 });
  const forged = createCrl({ ca: impostor, revoked: [], nextUpdate: new Date(now + 3_600_000) });
  const r = openssl('crl', '-in', dir.write('forged.pem', forged.pem), '-noout', '-CAfile', caFile);
  // OpenSSL 3.0 `crl` reports the failure but still exits 0, so read what it says.
  assert.match(r.stdout + r.stderr, /verify failure/);
  assert.doesNotMatch(r.stdout + r.stderr, /verify OK/);
});

test('node:crypto X509Certificate and our verifier agree on a revoked, expired and foreign certificate', () => {
  const cert = issue('h-one', 1001n);
  const x = new X509Certificate(cert.der);
  assert.equal(x.verify(ca.publicKey), true);
  const inWindow = new Date(cert.notBefore.getTime() + 60_000);
  const ok = verifyHealthCert(cert.der, { trusted: ca.certificatePem, at: inWindow });
  assert.equal(ok.hostId, 'h-one');
  assert.throws(
    () => verifyHealthCert(cert.der, { trusted: ca, at: new Date(cert.notAfter.getTime() + 1000) }),
    code('EXPIRED'),
  );
  assert.throws(
    () => verifyHealthCert(cert.der, { trusted: ca, at: new Date(cert.notBefore.getTime() - 1000) }),
    code('NOT_YET_VALID'),
  );
  // A scheduler whose clock lags the issuer's by a few seconds, told to tolerate it.
  assert.equal(
    verifyHealthCert(cert.der, {
      trusted: ca,
      at: new Date(cert.notBefore.getTime() - 5000),
      clockSkewSeconds: 10,
    }).hostId,
    'h-one',
  );
  assert.throws(
    () =>
      verifyHealthCert(cert.der, {
        trusted: ca,
        at: new Date(cert.notAfter.getTime() + 11_000),
        clockSkewSeconds: 10,
      }),
    code('EXPIRED'),
  );
  assert.throws(
    () => verifyHealthCert(cert.der, { trusted: ca, at: new Date(Number.NaN) }),
    code('ARGUMENT_INVALID'),
  );
  assert.throws(
    () => verifyHealthCert(cert.der, { trusted: ca, clockSkewSeconds: -1 }),
    code('ARGUMENT_INVALID'),
  );
  const other = createCa({ commonName: 'Someone Else' });
  assert.throws(() => verifyHealthCert(cert.der, { trusted: other, at: inWindow }), code('ISSUER_MISMATCH'));
  // Same name, other key: found by name but the key identifier or signature gives it away.
  const twin = createCa({ commonName: 'HostGate CRL CA', validityDays: 365 });
  assert.throws(() => verifyHealthCert(cert.der, { trusted: twin, at: inWindow }), code('ISSUER_MISMATCH'));
  // A bundle with both: the right one is picked.
  assert.equal(
    verifyHealthCert(cert.pem, { trusted: twin.certificatePem + ca.certificatePem, at: inWindow }).serial,
    1001n,
  );
  const crl = createCrl({
    ca,
    revoked: [{ serial: 1001n, revokedAt: inWindow, reason: 'privilegeWithdrawn' }],
    thisUpdate: inWindow,
    nextUpdate: new Date(inWindow.getTime() + 600_000),
  });
  const later = new Date(inWindow.getTime() + 1000);
  assert.throws(() => verifyHealthCert(cert.der, { trusted: ca, at: later, crl: crl.der }), code('REVOKED'));
  assert.equal(
    verifyHealthCert(issue('h-two').der, { trusted: ca, crl: crl.pem, at: later }).hostId,
    'h-two',
  );
  assert.throws(
    () =>
      verifyHealthCert(cert.der, { trusted: ca, at: new Date(inWindow.getTime() + 700_000), crl: crl.der }),
    code('CRL_STALE'),
  );
  const forged = createCrl({ ca: twin, revoked: [], thisUpdate: inWindow, nextUpdate: crl.nextUpdate });
  assert.throws(
    () => verifyHealthCert(cert.der, { trusted: ca, at: later, crl: forged.der }),
    code('ISSUER_MISMATCH'),
  );
});

test('a one-byte change to a certificate or CRL fails our verification', () => {
  const cert = issue('h-tamper');
  const at = new Date(cert.notBefore.getTime() + 1000);
  const crl = createCrl({
    ca,
    revoked: [{ serial: 99n, revokedAt: at }],
    thisUpdate: at,
    nextUpdate: cert.notAfter,
  });
  for (const [bytes, verifyIt] of [
    [cert.der, (b: Uint8Array) => verifyHealthCert(b, { trusted: ca, at })],
    [crl.der, (b: Uint8Array) => verifyCrl(b, { trusted: ca, at })],
  ] as const) {
    let refused = 0;
    for (let i = 0; i < bytes.length; i++) {
      const copy = bytes.slice();
      copy[i]! ^= 0x80;
      assert.throws(
        () => verifyIt(copy),
        (e: unknown) => typeof (e as { code?: unknown }).code === 'string',
        `byte ${i}`,
      );
      refused++;
    }
    assert.equal(refused, bytes.length);
  }
});
