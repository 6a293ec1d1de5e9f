// Negative paths of the certificate and CRL readers: certificates built field by field here,
// each breaking one rule, must be refused with the code for that rule.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { createCa } from '../src/ca.ts';
import { parseCrl } from '../src/crl.ts';
import {
  encodeBitString,
  encodeBoolean,
  encodeEnumerated,
  encodeExplicit,
  encodeImplicit,
  encodeInteger,
  encodeNamedBits,
  encodeNull,
  encodeOctetString,
  encodeOid,
  encodePrintableString,
  encodeSequence,
  encodeSetOf,
  encodeTime,
  encodeUtf8String,
} from '../src/der.ts';
import { DerError, HealthCertError } from '../src/errors.ts';
import { OID_HOSTGATE_HEALTH, parseHealthCert } from '../src/health-cert.ts';
import { fromPem, fromPemAll, toPem } from '../src/pem.ts';
import { signEcdsaSha256 } from '../src/x509.ts';

const ca = createCa({ commonName: 'HostGate Profile CA', validityDays: 30 });
const spki = new Uint8Array(
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }),
);
const ECDSA_SHA256 = encodeSequence(encodeOid('1.2.840.10045.4.3.2'));
const ext = (oid: string, value: Uint8Array, critical?: boolean) =>
  critical === undefined
    ? encodeSequence(encodeOid(oid), encodeOctetString(value))
    : encodeSequence(encodeOid(oid), encodeBoolean(critical), encodeOctetString(value));
const cn = (value: Uint8Array) => encodeSequence(encodeSetOf(encodeSequence(encodeOid('2.5.4.3'), value)));
const health = (...fields: Uint8Array[]) => ext(OID_HOSTGATE_HEALTH, encodeSequence(...fields));
const goodHealthFields = () => [
  encodeInteger(1),
  encodeUtf8String('web'),
  encodeInteger(3),
  encodeUtf8String('verdict-1'),
  encodeOctetString(new Uint8Array(32).fill(7)),
];
const goodExtensions = () => [
  ext('2.5.29.19', encodeSequence(), true),
  ext('2.5.29.15', encodeNamedBits([0]), true),
  ext('2.5.29.37', encodeSequence(encodeOid('1.3.6.1.5.5.7.3.2'))),
  ext('2.5.29.17', encodeSequence(encodeImplicit(6, Buffer.from('urn:hostgate:host:h-1')))),
  ext('2.5.29.35', encodeSequence(encodeImplicit(0, ca.keyIdentifier))),
  health(...goodHealthFields()),
];

interface Parts {
  version: Uint8Array | null;
  serial: Uint8Array;
  algorithm: Uint8Array;
  outerAlgorithm: Uint8Array;
  validity: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  extensions: Uint8Array[] | null;
  extra: Uint8Array[];
  signatureBits: ((sig: Uint8Array) => Uint8Array) | null;
}

function build(override: Partial<Parts> = {}): Uint8Array {
  const p: Parts = {
    version: encodeExplicit(0, encodeInteger(2)),
    serial: encodeInteger(10),
    algorithm: ECDSA_SHA256,
    outerAlgorithm: ECDSA_SHA256,
    validity: encodeSequence(
      encodeTime(new Date('2026-11-25T00:00:00Z')),
      encodeTime(new Date('2026-11-25T01:00:00Z')),
    ),
    subject: cn(encodeUtf8String('h-1')),
    spki,
    extensions: goodExtensions(),
    extra: [],
    signatureBits: null,
    ...override,
  };
  const fields = [
    ...(p.version ? [p.version] : []),
    p.serial,
    p.algorithm,
    ca.subject,
    p.validity,
    p.subject,
    p.spki,
    ...p.extra,
    ...(p.extensions ? [encodeExplicit(3, encodeSequence(...p.extensions))] : []),
  ];
  const tbs = encodeSequence(...fields);
  const signed = signEcdsaSha256(tbs, ca.privateKey);
  if (p.outerAlgorithm === ECDSA_SHA256 && p.signatureBits === null) return signed;
  // Re-assemble with the altered outer fields; the signature value itself is irrelevant here.
  const bits = p.signatureBits ? p.signatureBits(new Uint8Array(64)) : encodeBitString(new Uint8Array(64));
  return encodeSequence(tbs, p.outerAlgorithm, bits);
}

function refused(der: Uint8Array, code: string, offset?: number): void {
  assert.throws(
    () => parseHealthCert(der),
    (e: unknown) => {
      assert.ok(e instanceof HealthCertError || e instanceof DerError, String(e));
      assert.equal(e.code, code, e.message);
      if (offset !== undefined) assert.equal(e.offset, offset, e.message);
      return true;
    },
  );
}

test('the hand-built baseline certificate is accepted', () => {
  const info = parseHealthCert(build());
  assert.equal(info.hostId, 'h-1');
  assert.equal(info.policyVersion, 3);
  assert.equal(info.pcrDigest, '07'.repeat(32));
});

test('version, serial, algorithm, validity and layout violations', () => {
  refused(build({ version: null }), 'CERT_VERSION');
  refused(build({ version: encodeExplicit(0, encodeInteger(1)) }), 'CERT_VERSION');
  refused(build({ serial: encodeInteger(0) }), 'CERT_SERIAL');
  refused(build({ serial: encodeInteger(-5) }), 'CERT_SERIAL');
  refused(build({ serial: encodeInteger(1n << 160n) }), 'CERT_SERIAL');
  refused(build({ algorithm: encodeSequence(encodeOid('1.2.840.10045.4.3.3')) }), 'CERT_ALGORITHM');
  refused(
    build({ algorithm: encodeSequence(encodeOid('1.2.840.10045.4.3.2'), encodeNull()) }),
    'CERT_ALGORITHM',
  );
  refused(build({ outerAlgorithm: encodeSequence(encodeOid('1.2.840.10045.4.3.3')) }), 'CERT_ALGORITHM');
  refused(
    build({
      validity: encodeSequence(
        encodeTime(new Date('2026-11-25T01:00:00Z')),
        encodeTime(new Date('2026-11-25T00:00:00Z')),
      ),
    }),
    'CERT_VALIDITY',
  );
  refused(build({ validity: encodeSequence(encodeTime(new Date('2026-11-25T01:00:00Z'))) }), 'CERT_VALIDITY');
  refused(build({ extra: [encodeImplicit(1, Uint8Array.of(0, 1))] }), 'CERT_STRUCTURE');
  refused(build({ signatureBits: () => encodeBitString(Uint8Array.of(0x80), 7) }), 'CERT_STRUCTURE');
  refused(build({ extensions: [] }), 'CERT_EXTENSION');
});

test('subject and key violations', () => {
  refused(
    build({
      subject: encodeSequence(
        encodeSetOf(encodeSequence(encodeOid('2.5.4.10'), encodeUtf8String('x'))),
        encodeSetOf(encodeSequence(encodeOid('2.5.4.3'), encodeUtf8String('h-1'))),
      ),
    }),
    'CERT_NAME',
  );
  refused(build({ subject: cn(encodeUtf8String('h 1')) }), 'CERT_NAME');
  refused(build({ subject: encodeSequence(encodeSetOf()) }), 'CERT_NAME');
  const ed = new Uint8Array(generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }));
  refused(build({ spki: ed }), 'SUBJECT_KEY_UNSUPPORTED');
  const junkKey = encodeSequence(
    encodeSequence(encodeOid('1.2.840.10045.2.1'), encodeOid('1.2.840.10045.3.1.7')),
    encodeBitString(Uint8Array.of(4, 1, 2)),
  );
  const der = build({ spki: junkKey });
  refused(der, 'SUBJECT_KEY_INVALID', Buffer.from(der).indexOf(Buffer.from(junkKey)));
});

test('extension violations name the extension at fault', () => {
  const [bc, ku, eku, san, aki, h] = goodExtensions() as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const dup = build({ extensions: [bc, ku, eku, san, aki, h, ku] });
  const first = Buffer.from(dup).indexOf(Buffer.from(ku));
  refused(dup, 'CERT_EXTENSION_DUPLICATE', Buffer.from(dup).indexOf(Buffer.from(ku), first + 1));
  refused(
    build({ extensions: [bc, ext('2.5.29.15', encodeNamedBits([0]), false), eku, san, h] }),
    'CERT_EXTENSION',
  );
  refused(build({ extensions: [bc, ku, eku, h] }), 'CERT_PROFILE'); // no SAN
  refused(build({ extensions: [bc, eku, san, h] }), 'CERT_PROFILE'); // no keyUsage
  refused(build({ extensions: [bc, ku, san, h] }), 'CERT_PROFILE'); // no extKeyUsage
  refused(build({ extensions: [bc, ku, eku, san] }), 'CERT_HEALTH_EXTENSION');
  refused(
    build({ extensions: [bc, ku, eku, san, aki, h, ext('1.2.3.4', encodeNull(), true)] }),
    'CERT_EXTENSION_CRITICAL_UNKNOWN',
  );
  assert.equal(
    parseHealthCert(build({ extensions: [bc, ku, eku, san, h, ext('1.2.3.4', encodeNull())] })).hostId,
    'h-1',
  );
  const otherHost = ext('2.5.29.17', encodeSequence(encodeImplicit(6, Buffer.from('urn:hostgate:host:h-2'))));
  refused(build({ extensions: [bc, ku, eku, otherHost, h] }), 'CERT_PROFILE');
  const twoUris = ext(
    '2.5.29.17',
    encodeSequence(
      encodeImplicit(6, Buffer.from('urn:hostgate:host:h-1')),
      encodeImplicit(6, Buffer.from('urn:x')),
    ),
  );
  refused(build({ extensions: [bc, ku, eku, twoUris, h] }), 'CERT_PROFILE');
  refused(
    build({ extensions: [bc, ext('2.5.29.15', encodeNamedBits([5]), true), eku, san, h] }),
    'CERT_PROFILE',
  );
  refused(
    build({ extensions: [bc, ku, ext('2.5.29.37', encodeSequence(encodeOid('1.3.6.1.5.5.7.3.1'))), san, h] }),
    'CERT_PROFILE',
  );
  refused(
    build({ extensions: [ext('2.5.29.19', encodeSequence(encodeBoolean(true)), true), ku, eku, san, h] }),
    'CERT_PROFILE',
  );
  refused(build({ extensions: [bc, ku, eku, ext('2.5.29.17', encodeInteger(1)), h] }), 'DER_UNEXPECTED_TAG');
});

test('health extension content violations', () => {
  const [bc, ku, eku, san] = goodExtensions() as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const withHealth = (...fields: Uint8Array[]) =>
    build({ extensions: [bc, ku, eku, san, health(...fields)] });
  const [v, pc, pv, vid, digest] = goodHealthFields() as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  refused(withHealth(), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(encodeInteger(2), pc, pv, vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, pc, pv, vid), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, pc, pv, vid, digest, encodeNull()), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, encodeUtf8String(''), pv, vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, encodeUtf8String('a\u0007b'), pv, vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, encodeUtf8String('x'.repeat(129)), pv, vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, encodePrintableString('web'), pv, vid, digest), 'DER_UNEXPECTED_TAG');
  refused(withHealth(v, pc, encodeInteger(-1), vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, pc, encodeInteger(1n << 60n), vid, digest), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, pc, pv, vid, encodeOctetString(new Uint8Array(19))), 'CERT_HEALTH_EXTENSION');
  refused(withHealth(v, pc, pv, vid, encodeOctetString(new Uint8Array(65))), 'CERT_HEALTH_EXTENSION');
  // The limits themselves are accepted.
  assert.equal(
    parseHealthCert(
      withHealth(
        v,
        encodeUtf8String('x'.repeat(128)),
        encodeInteger(0),
        vid,
        encodeOctetString(new Uint8Array(20)),
      ),
    ).policyVersion,
    0,
  );
});

test('PEM reading is strict and reads bundles', () => {
  const der = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x05);
  const pem = toPem('CERTIFICATE', der);
  assert.equal(pem, '-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n');
  assert.deepEqual(fromPem(`junk before\r\n${pem.replaceAll('\n', '\r\n')}`, 'CERTIFICATE'), der);
  assert.equal(fromPemAll(pem + pem + toPem('X509 CRL', der), 'CERTIFICATE').length, 2);
  const code = (c: string) => (e: unknown) => e instanceof HealthCertError && e.code === c;
  assert.throws(() => fromPem(pem, 'X509 CRL'), code('PEM_INVALID'));
  assert.throws(() => fromPem(pem.replace('MAMCAQU=', 'MAMCAQU'), 'CERTIFICATE'), code('PEM_INVALID'));
  assert.throws(() => fromPem(pem.replace('MAMCAQU=', 'MAMCAQV='), 'CERTIFICATE'), code('PEM_INVALID'));
  assert.throws(() => fromPem(pem.replace('MAMCAQU=', 'MAM*AQU='), 'CERTIFICATE'), code('PEM_INVALID'));
  assert.throws(
    () => fromPem(pem.replace('-----END CERTIFICATE-----', ''), 'CERTIFICATE'),
    code('PEM_INVALID'),
  );
  assert.throws(
    () => fromPem('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----', 'CERTIFICATE'),
    code('PEM_INVALID'),
  );
  assert.throws(() => fromPem('x'.repeat((1 << 20) + 1), 'CERTIFICATE'), code('PEM_INVALID'));
  assert.throws(() => fromPemAll('nothing', 'CERTIFICATE'), code('PEM_INVALID'));
});

// --- CRLs -------------------------------------------------------------------------------------

function crl(fields: Uint8Array[]): Uint8Array {
  return signEcdsaSha256(encodeSequence(...fields), ca.privateKey);
}
const at = encodeTime(new Date('2026-11-25T00:00:00Z'));
const next = encodeTime(new Date('2026-11-26T00:00:00Z'));
const crlExts = (...e: Uint8Array[]) => encodeExplicit(0, encodeSequence(...e));
const crlNumber = ext('2.5.29.20', encodeInteger(5));

function crlRefused(der: Uint8Array, code: string): void {
  assert.throws(
    () => parseCrl(der),
    (e: unknown) => (e instanceof HealthCertError || e instanceof DerError) && e.code === code,
    code,
  );
}

test('CRL violations', () => {
  const entry = (...f: Uint8Array[]) => encodeSequence(encodeInteger(3), at, ...f);
  const ok = parseCrl(
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, encodeSequence(entry()), crlExts(crlNumber)]),
  );
  assert.equal(ok.crlNumber, 5n);
  assert.equal(ok.revoked.length, 1);
  // No nextUpdate and no extensions are legal to read (verifyCrl then calls the CRL stale).
  assert.equal(parseCrl(crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at])).nextUpdate, null);
  crlRefused(crl([ECDSA_SHA256, ca.subject, at, next]), 'CRL_STRUCTURE'); // v1
  crlRefused(crl([encodeInteger(2), ECDSA_SHA256, ca.subject, at, next]), 'CRL_STRUCTURE');
  crlRefused(crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, encodeSequence()]), 'CRL_STRUCTURE');
  crlRefused(
    crl([
      encodeInteger(1),
      ECDSA_SHA256,
      ca.subject,
      at,
      next,
      encodeSequence(encodeSequence(encodeInteger(3))),
    ]),
    'CRL_STRUCTURE',
  );
  crlRefused(
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, encodeSequence(entry(), entry())]),
    'CRL_STRUCTURE',
  ); // serial twice
  crlRefused(
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, crlExts(crlNumber), encodeNull()]),
    'CRL_STRUCTURE',
  );
  crlRefused(
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, crlExts(ext('2.5.29.20', encodeInteger(-1)))]),
    'CRL_STRUCTURE',
  );
  crlRefused(
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, crlExts(ext('1.2.3', encodeNull(), true))]),
    'CERT_EXTENSION_CRITICAL_UNKNOWN',
  );
  const withEntryExt = (e: Uint8Array) =>
    crl([encodeInteger(1), ECDSA_SHA256, ca.subject, at, next, encodeSequence(entry(encodeSequence(e)))]);
  crlRefused(withEntryExt(ext('1.2.3', encodeNull(), true)), 'CERT_EXTENSION_CRITICAL_UNKNOWN');
  crlRefused(withEntryExt(ext('2.5.29.21', encodeInteger(1))), 'DER_UNEXPECTED_TAG'); // reasonCode is ENUMERATED
  assert.equal(parseCrl(withEntryExt(ext('2.5.29.21', encodeEnumerated(7)))).revoked[0]!.reason, null);
  assert.equal(
    parseCrl(withEntryExt(ext('2.5.29.21', encodeEnumerated(1)))).revoked[0]!.reason,
    'keyCompromise',
  );
  crlRefused(
    crl([encodeInteger(1), encodeSequence(encodeOid('1.2.840.10045.4.3.3')), ca.subject, at, next]),
    'CERT_ALGORITHM',
  );
});
