import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { createCa, exportCaPem } from '../src/ca.ts';
import { HealthCertError } from '../src/errors.ts';
import { toPem } from '../src/pem.ts';
import {
  HOSTGATE_OID_ARC,
  issueHealthCert,
  OID_HOSTGATE_HEALTH,
  parseHealthCert,
} from '../src/health-cert.ts';
import { openssl, opensslSkip, workDir } from './helpers.ts';

const code = (c: string) => (e: unknown) => e instanceof HealthCertError && e.code === c;
const ca = createCa({ commonName: 'HostGate Test CA', validityDays: 365 });
const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PCR_DIGEST = '5d8c6a4b1f0e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbc';
const base = {
  ca,
  hostId: 'h-7f3a9c2e41d0',
  policyClass: 'web-frontend',
  policyVersion: 42,
  verdictId: '0b6f1c9e-3d2a-4e5f-8a7b-9c0d1e2f3a4b',
  pcrDigest: PCR_DIGEST,
};

function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

test('issues a certificate node:crypto verifies against the CA, with the profile fields', () => {
  const notBefore = new Date('2026-11-25T12:00:00.750Z');
  const cert = issueHealthCert({
    ...base,
    subjectPublicKey: ecKey.publicKey,
    notBefore,
    serial: 0x1234abcdn,
  });
  const x = new X509Certificate(cert.der);
  const caX = new X509Certificate(ca.certificateDer);
  assert.equal(x.verify(ca.publicKey), true);
  assert.equal(x.checkIssued(caX), true);
  assert.equal(x.ca, false);
  assert.equal(x.subject, 'CN=h-7f3a9c2e41d0');
  assert.equal(x.issuer, 'O=HostGate\nCN=HostGate Test CA');
  assert.equal(x.subjectAltName, 'URI:urn:hostgate:host:h-7f3a9c2e41d0');
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(x.serialNumber, '1234ABCD');
  assert.equal(new Date(x.validFrom).toISOString(), '2026-11-25T12:00:00.000Z');
  assert.equal(new Date(x.validTo).toISOString(), '2026-11-25T13:00:00.000Z');
  assert.ok(x.publicKey.equals(ecKey.publicKey));
  assert.equal(cert.pem, x.toString());
});

test('parseHealthCert returns what was issued, for EC and RSA subject keys in either form', () => {
  const keys: [Uint8Array | KeyObject, string][] = [
    [ecKey.publicKey, 'ec'],
    [spkiOf(ecKey.publicKey), 'ec'],
    [rsaKey.publicKey, 'rsa'],
    [spkiOf(rsaKey.publicKey), 'rsa'],
    [rsaKey.privateKey, 'rsa'],
  ];
  for (const [subjectPublicKey, keyType] of keys) {
    const cert = issueHealthCert({ ...base, subjectPublicKey, validitySeconds: 600, serial: 77n });
    for (const input of [cert.der, cert.pem]) {
      const info = parseHealthCert(input);
      assert.equal(info.hostId, 'h-7f3a9c2e41d0');
      assert.equal(info.policyClass, 'web-frontend');
      assert.equal(info.policyVersion, 42);
      assert.equal(info.verdictId, '0b6f1c9e-3d2a-4e5f-8a7b-9c0d1e2f3a4b');
      assert.equal(info.pcrDigest, PCR_DIGEST);
      assert.equal(info.serial, 77n);
      assert.equal(info.notAfter.getTime() - info.notBefore.getTime(), 600_000);
      assert.deepEqual(Buffer.from(info.issuer), Buffer.from(ca.subject));
      assert.deepEqual(Buffer.from(info.authorityKeyIdentifier!), Buffer.from(ca.keyIdentifier));
      const expected = keyType === 'rsa' ? rsaKey.publicKey : ecKey.publicKey;
      assert.deepEqual(Buffer.from(info.subjectPublicKeyInfo), Buffer.from(spkiOf(expected)));
      assert.ok(info.subjectPublicKey.equals(expected));
      assert.equal(info.subjectPublicKey.asymmetricKeyType, keyType);
    }
  }
});

test('defaults: one hour, a positive random serial, distinct per certificate', () => {
  const a = issueHealthCert({ ...base, subjectPublicKey: ecKey.publicKey });
  const b = issueHealthCert({ ...base, subjectPublicKey: ecKey.publicKey });
  assert.equal(a.notAfter.getTime() - a.notBefore.getTime(), 3_600_000);
  assert.ok(Math.abs(a.notBefore.getTime() - Date.now()) < 5_000);
  assert.ok(a.serial > 0n && a.serial < 1n << 128n);
  assert.notEqual(a.serial, b.serial);
  // Serials come from a pool the CSPRNG refills every 256 certificates: distinct across refills.
  const serials = new Set<bigint>();
  for (let i = 0; i < 600; i++)
    serials.add(issueHealthCert({ ...base, subjectPublicKey: ecKey.publicKey }).serial);
  assert.equal(serials.size, 600);
  // The PEM, made when read, is the DER's.
  assert.equal(a.pem, toPem('CERTIFICATE', a.der));
  assert.equal(a.pem, a.pem);
});

test('refuses bad arguments with ARGUMENT_INVALID or SUBJECT_KEY_*', () => {
  const k = { subjectPublicKey: ecKey.publicKey };
  const bad: [Record<string, unknown>, string][] = [
    [{ hostId: '' }, 'ARGUMENT_INVALID'],
    [{ hostId: 'a'.repeat(65) }, 'ARGUMENT_INVALID'],
    [{ hostId: 'host with space' }, 'ARGUMENT_INVALID'],
    [{ hostId: '-leading' }, 'ARGUMENT_INVALID'],
    [{ policyClass: '' }, 'ARGUMENT_INVALID'],
    [{ policyClass: 'x'.repeat(129) }, 'ARGUMENT_INVALID'],
    [{ policyClass: 'a\nb' }, 'ARGUMENT_INVALID'],
    [{ verdictId: '' }, 'ARGUMENT_INVALID'],
    [{ policyVersion: -1 }, 'ARGUMENT_INVALID'],
    [{ policyVersion: 1.5 }, 'ARGUMENT_INVALID'],
    [{ pcrDigest: 'abc' }, 'ARGUMENT_INVALID'],
    [{ pcrDigest: 'zz'.repeat(32) }, 'ARGUMENT_INVALID'],
    [{ pcrDigest: '00'.repeat(19) }, 'ARGUMENT_INVALID'],
    [{ pcrDigest: '00'.repeat(65) }, 'ARGUMENT_INVALID'],
    [{ validitySeconds: 0 }, 'ARGUMENT_INVALID'],
    [{ validitySeconds: 7 * 86_400 + 1 }, 'ARGUMENT_INVALID'],
    [{ notBefore: new Date(Number.NaN) }, 'ARGUMENT_INVALID'],
    [{ notBefore: new Date(Date.now() + 400 * 86_400_000) }, 'ARGUMENT_INVALID'],
    [{ serial: 0n }, 'ARGUMENT_INVALID'],
    [{ serial: 1n << 159n }, 'ARGUMENT_INVALID'],
    [{ subjectPublicKey: new Uint8Array([0x30, 0x00]) }, 'SUBJECT_KEY_INVALID'],
    [{ subjectPublicKey: generateKeyPairSync('ed25519').publicKey }, 'SUBJECT_KEY_UNSUPPORTED'],
    [
      { subjectPublicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey },
      'SUBJECT_KEY_UNSUPPORTED',
    ],
    [
      { subjectPublicKey: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey },
      'SUBJECT_KEY_UNSUPPORTED',
    ],
  ];
  for (const [override, expected] of bad) {
    assert.throws(
      () => issueHealthCert({ ...base, ...k, ...override } as never),
      code(expected),
      inspect(override),
    );
  }
  // The boundaries themselves are accepted.
  assert.doesNotThrow(() =>
    issueHealthCert({ ...base, ...k, hostId: 'a'.repeat(64), pcrDigest: '00'.repeat(20) }),
  );
  assert.doesNotThrow(() =>
    issueHealthCert({ ...base, ...k, validitySeconds: 7 * 86_400, pcrDigest: '00'.repeat(64) }),
  );
  assert.doesNotThrow(() => issueHealthCert({ ...base, ...k, serial: (1n << 159n) - 1n, policyVersion: 0 }));
  assert.equal(
    parseHealthCert(issueHealthCert({ ...base, ...k, hostId: 'ek_sha256:Ab-9.x' }).der).hostId,
    'ek_sha256:Ab-9.x',
  );
});

test('openssl verifies the certificate and shows every field', { skip: opensslSkip }, (t) => {
  const dir = workDir(t);
  const cert = issueHealthCert({ ...base, subjectPublicKey: rsaKey.publicKey });
  const caFile = dir.write('ca.pem', ca.certificatePem);
  const certFile = dir.write('cert.pem', cert.pem);
  const v = openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, certFile);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /cert\.pem: OK/);
  const text = openssl('x509', '-in', certFile, '-noout', '-text').stdout;
  assert.match(text, /Subject: CN = h-7f3a9c2e41d0/);
  assert.match(text, /Issuer: O = HostGate, CN = HostGate Test CA/);
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /Extended Key Usage:\s+TLS Web Client Authentication/);
  assert.match(text, /Subject Alternative Name:\s+URI:urn:hostgate:host:h-7f3a9c2e41d0/);
  assert.match(text, /Public-Key: \(2048 bit\)/);
  assert.ok(text.includes(`${OID_HOSTGATE_HEALTH}:`), text);
  assert.ok(OID_HOSTGATE_HEALTH.startsWith(`${HOSTGATE_OID_ARC}.`));
  // Read the private extension with openssl's own DER parser.
  const dump = openssl('asn1parse', '-in', certFile).stdout.split('\n');
  const at = dump.findIndex((l) => l.includes(`OBJECT            :${OID_HOSTGATE_HEALTH}`));
  assert.ok(at > 0, 'extension OID in asn1parse');
  assert.doesNotMatch(dump[at + 1]!, /BOOLEAN/, 'the extension is not critical');
  const valueHex = /\[HEX DUMP\]:([0-9A-F]+)/.exec(dump[at + 1]!)?.[1];
  assert.ok(valueHex);
  const inner = openssl(
    'asn1parse',
    '-inform',
    'DER',
    '-in',
    dir.write('ext.der', Buffer.from(valueHex, 'hex')),
  ).stdout;
  assert.match(inner, /INTEGER\s+:01\n/);
  assert.match(inner, /UTF8STRING\s+:web-frontend\n/);
  assert.match(inner, /INTEGER\s+:2A\n/);
  assert.match(inner, /UTF8STRING\s+:0b6f1c9e-3d2a-4e5f-8a7b-9c0d1e2f3a4b\n/);
  assert.match(inner, new RegExp(`OCTET STRING\\s+\\[HEX DUMP\\]:${PCR_DIGEST.toUpperCase()}`));
});

test('openssl refuses a certificate from another CA or with one byte changed', { skip: opensslSkip }, (t) => {
  const dir = workDir(t);
  const caFile = dir.write('ca.pem', ca.certificatePem);
  const other = createCa({ commonName: 'HostGate Test CA', validityDays: 365 });
  const foreign = issueHealthCert({ ...base, ca: other, subjectPublicKey: ecKey.publicKey });
  const r1 = openssl('verify', '-CAfile', caFile, dir.write('foreign.pem', foreign.pem));
  assert.notEqual(r1.status, 0);
  const cert = issueHealthCert({ ...base, subjectPublicKey: ecKey.publicKey });
  const tampered = Buffer.from(cert.der);
  const i = tampered.indexOf(Buffer.from('web-frontend'));
  tampered[i] = 'W'.charCodeAt(0);
  const r2 = openssl('verify', '-CAfile', caFile, dir.write('tampered.der', tampered));
  assert.notEqual(r2.status, 0);
  const pemFile = dir.path('tampered.pem');
  openssl('x509', '-inform', 'DER', '-in', dir.path('tampered.der'), '-out', pemFile);
  const r3 = openssl('verify', '-CAfile', caFile, pemFile);
  assert.notEqual(r3.status, 0);
  assert.match(r3.stdout + r3.stderr, /signature failure/);
  // The changed certificate still parses (the profile is intact) but no longer verifies.
  assert.equal(parseHealthCert(new Uint8Array(tampered)).policyClass, 'Web-frontend');
  assert.equal(new X509Certificate(tampered).verify(ca.publicKey), false);
});

test('every single-byte change to the signed part breaks node:crypto verification', () => {
  const cert = issueHealthCert({ ...base, subjectPublicKey: ecKey.publicKey });
  let parsedButUnverified = 0;
  for (let i = 0; i < cert.der.length; i++) {
    const copy = Buffer.from(cert.der);
    copy[i]! ^= 0x01;
    let x: X509Certificate;
    try {
      x = new X509Certificate(copy);
    } catch {
      continue; // no longer a certificate at all
    }
    assert.equal(x.verify(ca.publicKey), false, `byte ${i}`);
    parsedButUnverified++;
  }
  assert.ok(parsedButUnverified > cert.der.length / 2);
});

test('openssl-built certificates: our extension encoding interoperates; a missing or malformed one is refused', {
  skip: opensslSkip,
}, (t) => {
  const dir = workDir(t);
  const { certificatePem, privateKeyPem } = exportCaPem(ca);
  const caFile = dir.write('ca.pem', certificatePem);
  const caKey = dir.write('ca.key', privateKeyPem);
  const leafKey = dir.write('leaf.key', String(ecKey.privateKey.export({ type: 'pkcs8', format: 'pem' })));
  const csr = dir.path('leaf.csr');
  const req = openssl('req', '-new', '-key', leafKey, '-subj', '/CN=h-openssl', '-out', csr);
  assert.equal(req.status, 0, req.stderr);
  const common = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
    'subjectAltName=URI:urn:hostgate:host:h-openssl',
    'authorityKeyIdentifier=keyid',
  ].join('\n');
  const build = (name: string, health: string, sections = ''): string => {
    const ext = dir.write(`${name}.cnf`, `[v3]\n${common}\n${health}\n${sections}`);
    const out = dir.path(`${name}.pem`);
    const r = openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caFile,
      '-CAkey',
      caKey,
      '-days',
      '1',
      '-sha256',
      '-extfile',
      ext,
      '-extensions',
      'v3',
      '-set_serial',
      '4242',
      '-out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    return String(openssl('x509', '-in', out).stdout);
  };
  const good = build(
    'good',
    `${OID_HOSTGATE_HEALTH}=ASN1:SEQUENCE:health`,
    `[health]\nv=INTEGER:1\nc=UTF8String:db-tier\npv=INTEGER:7\nvid=UTF8String:verdict-9\nd=FORMAT:HEX,OCTETSTRING:${'ab'.repeat(32)}\n`,
  );
  const info = parseHealthCert(good);
  assert.deepEqual(
    {
      h: info.hostId,
      c: info.policyClass,
      v: info.policyVersion,
      id: info.verdictId,
      d: info.pcrDigest,
      s: info.serial,
    },
    { h: 'h-openssl', c: 'db-tier', v: 7, id: 'verdict-9', d: 'ab'.repeat(32), s: 4242n },
  );
  assert.throws(() => parseHealthCert(build('none', '')), code('CERT_HEALTH_EXTENSION'));
  const wrongVersion = build(
    'v2',
    `${OID_HOSTGATE_HEALTH}=ASN1:SEQUENCE:health`,
    `[health]\nv=INTEGER:2\nc=UTF8String:db-tier\n`,
  );
  assert.throws(() => parseHealthCert(wrongVersion), code('CERT_HEALTH_EXTENSION'));
  const shortDigest = build(
    'short',
    `${OID_HOSTGATE_HEALTH}=ASN1:SEQUENCE:health`,
    `[health]\nv=INTEGER:1\nc=UTF8String:db-tier\npv=INTEGER:7\nvid=UTF8String:verdict-9\nd=FORMAT:HEX,OCTETSTRING:abcd\n`,
  );
  assert.throws(() => parseHealthCert(shortDigest), code('CERT_HEALTH_EXTENSION'));
  const notSequence = build('utf8', `${OID_HOSTGATE_HEALTH}=ASN1:UTF8String:hello`);
  assert.throws(
    () => parseHealthCert(notSequence),
    (e: unknown) => (e as { code?: string }).code === 'DER_UNEXPECTED_TAG',
  );
  const critical = build(
    'crit',
    `${OID_HOSTGATE_HEALTH}=ASN1:SEQUENCE:health\n1.2.3.4=critical,ASN1:NULL`,
    `[health]\nv=INTEGER:1\nc=UTF8String:db-tier\npv=INTEGER:7\nvid=UTF8String:verdict-9\nd=FORMAT:HEX,OCTETSTRING:${'ab'.repeat(32)}\n`,
  );
  assert.throws(() => parseHealthCert(critical), code('CERT_EXTENSION_CRITICAL_UNKNOWN'));
});

test('parseHealthCert refuses the CA certificate and non-certificates', () => {
  assert.throws(() => parseHealthCert(ca.certificateDer), code('CERT_NAME'));
  assert.throws(() => parseHealthCert('not pem'), code('PEM_INVALID'));
  assert.throws(
    () => parseHealthCert(new Uint8Array(20_000)),
    (e: unknown) => (e as { code?: string }).code === 'DER_INPUT_TOO_LARGE',
  );
});
