// issueHealthCert writes its TBSCertificate in one pass; this holds it to the bytes of the
// encoder-per-level builder it replaced (kept below as the reference) for varied inputs.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, verify } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { type CreateCaOptions, createCa, type HealthCa } from '../src/ca.ts';
import {
  encodeBitString,
  encodeExplicit,
  encodeImplicit,
  encodeInteger,
  encodeNamedBits,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeTime,
  encodeUtf8String,
} from '../src/der.ts';
import { HOST_URI_PREFIX, issueHealthCert, OID_HOSTGATE_HEALTH } from '../src/health-cert.ts';
import {
  ecdsaWithSha256Algorithm,
  encodeExtension,
  encodeName,
  KU_DIGITAL_SIGNATURE,
  keyIdentifier,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_COMMON_NAME,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_KP_CLIENT_AUTH,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_IDENTIFIER,
  parseCertificate,
  signEcdsaSha256,
} from '../src/x509.ts';

interface ReferenceInput {
  ca: HealthCa;
  hostId: string;
  spki: Uint8Array;
  serial: bigint;
  notBefore: Date;
  notAfter: Date;
  policyClass: string;
  policyVersion: number;
  verdictId: string;
  pcrDigest: string;
}

/** The TBSCertificate as issueHealthCert built it before the one-pass writer, level by level. */
function referenceTbs(r: ReferenceInput): Uint8Array {
  const health = encodeSequence(
    encodeInteger(1),
    encodeUtf8String(r.policyClass),
    encodeInteger(r.policyVersion),
    encodeUtf8String(r.verdictId),
    encodeOctetString(new Uint8Array(Buffer.from(r.pcrDigest, 'hex'))),
  );
  const extensions = encodeSequence(
    encodeExtension(OID_BASIC_CONSTRAINTS, true, encodeSequence()),
    encodeExtension(OID_KEY_USAGE, true, encodeNamedBits([KU_DIGITAL_SIGNATURE])),
    encodeExtension(OID_EXT_KEY_USAGE, false, encodeSequence(encodeOid(OID_KP_CLIENT_AUTH))),
    encodeExtension(
      OID_SUBJECT_ALT_NAME,
      false,
      encodeSequence(encodeImplicit(6, new TextEncoder().encode(HOST_URI_PREFIX + r.hostId))),
    ),
    encodeExtension(OID_SUBJECT_KEY_IDENTIFIER, false, encodeOctetString(keyIdentifier(r.spki))),
    encodeExtension(
      OID_AUTHORITY_KEY_IDENTIFIER,
      false,
      encodeSequence(encodeImplicit(0, r.ca.keyIdentifier)),
    ),
    encodeExtension(OID_HOSTGATE_HEALTH, false, health),
  );
  return encodeSequence(
    encodeExplicit(0, encodeInteger(2)),
    encodeInteger(r.serial),
    ecdsaWithSha256Algorithm(),
    r.ca.subject,
    encodeSequence(encodeTime(r.notBefore), encodeTime(r.notAfter)),
    encodeName([[OID_COMMON_NAME, r.hostId]]),
    r.spki,
    encodeExplicit(3, extensions),
  );
}

/** The signed wrapper as signEcdsaSha256 built it, around a given signature. */
function referenceSigned(tbs: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeSequence(tbs, ecdsaWithSha256Algorithm(), encodeBitString(signature));
}

const spkiOf = (key: KeyObject) => new Uint8Array(key.export({ type: 'spki', format: 'der' }));

// Two CAs with Names of different lengths (a long one puts the issuer past 127 octets), living
// past 2050 so certificates can straddle the UTCTime/GeneralizedTime switch.
const caOptions: CreateCaOptions[] = [
  { commonName: 'HostGate Test CA', validityDays: 36500, notBefore: new Date('1960-01-01T00:00:00Z') },
  {
    commonName: 'C'.repeat(64),
    organization: 'Ö'.repeat(40),
    validityDays: 36500,
    notBefore: new Date('1970-06-15T08:09:10Z'),
  },
];
const cas = caOptions.map((o) => createCa(o));
const keys: KeyObject[] = [
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
  generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
  generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey,
  generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
  generateKeyPairSync('rsa', { modulusLength: 4096 }).publicKey,
];
const spkis = keys.map(spkiOf);

const hostIdChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-'.split('');
const hostId = fc
  .tuple(
    fc.constantFrom(...hostIdChars.slice(0, 62)),
    fc.array(fc.constantFrom(...hostIdChars), { maxLength: 63 }),
  )
  .map(([first, rest]) => first + rest.join(''));
// Labels of 1-128 UTF-16 units without control characters: ASCII, 2-, 3- and 4-octet UTF-8.
const labelChar = fc.oneof(
  fc.constantFrom('a', 'Z', '9', ' ', '-', '/'),
  fc.constantFrom('é', 'ß', 'Ω', 'ж'),
  fc.constantFrom('€', '中', '\uFFFD'),
  fc.constantFrom('😀', '𝄞', '\u{F0000}', '\u{10FFFD}'),
);
const label = fc
  .array(labelChar, { minLength: 1, maxLength: 64 })
  .map((chars) => chars.join(''))
  .filter((s) => s.length <= 128);
const pcrDigest = fc
  .integer({ min: 20, max: 64 })
  .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
  .map((b) => Buffer.from(b).toString('hex'));
// Serials of every octet count 1-20, with and without the top bit of the leading octet set.
const serial = fc
  .integer({ min: 1, max: 159 })
  .chain((bits) =>
    fc.bigInt({ min: 0n, max: (1n << BigInt(bits - 1)) - 1n }).map((low) => (1n << BigInt(bits - 1)) | low),
  );
const policyVersion = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 2_147_483_647 }),
  fc.constantFrom(127, 128, 255, 256, 32_767, 32_768, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);
// Whole seconds from 1965 to 2055, plus the seconds around the 2050 switch.
const notBefore = fc.oneof(
  fc.integer({ min: -157_766_400, max: 2_682_374_400 }).map((s) => new Date(s * 1000)),
  fc.integer({ min: -8 * 86_400, max: 86_400 }).map((d) => new Date(Date.UTC(2050, 0, 1) + d * 1000)),
);
const validitySeconds = fc.oneof(
  fc.integer({ min: 1, max: 7 * 86_400 }),
  fc.constantFrom(1, 3600, 7 * 86_400),
);

function checkSameBytes(input: {
  ca: HealthCa;
  key: number;
  keyAsSpki: boolean;
  hostId: string;
  policyClass: string;
  policyVersion: number;
  verdictId: string;
  pcrDigest: string;
  serial: bigint;
  notBefore: Date;
  validitySeconds: number;
}): void {
  const cert = issueHealthCert({
    ca: input.ca,
    hostId: input.hostId,
    subjectPublicKey: input.keyAsSpki ? spkis[input.key]! : keys[input.key]!,
    notBefore: input.notBefore,
    validitySeconds: input.validitySeconds,
    serial: input.serial,
    policyClass: input.policyClass,
    policyVersion: input.policyVersion,
    verdictId: input.verdictId,
    pcrDigest: input.pcrDigest,
  });
  const parsed = parseCertificate(cert.der);
  const expected = referenceTbs({
    ca: input.ca,
    hostId: input.hostId,
    spki: spkis[input.key]!,
    serial: input.serial,
    notBefore: input.notBefore,
    notAfter: new Date(input.notBefore.getTime() + input.validitySeconds * 1000),
    policyClass: input.policyClass,
    policyVersion: input.policyVersion,
    verdictId: input.verdictId,
    pcrDigest: input.pcrDigest,
  });
  assert.deepEqual(Buffer.from(parsed.tbs), Buffer.from(expected));
  // The signature is random; the rest of the certificate is the reference wrapper around it.
  assert.deepEqual(Buffer.from(cert.der), Buffer.from(referenceSigned(expected, parsed.signature)));
  assert.equal(verify('sha256', expected, input.ca.publicKey, parsed.signature), true);
}

test('the one-pass TBSCertificate is byte for byte the encoder-built one', () => {
  fc.assert(
    fc.property(
      fc.record({
        ca: fc.constantFrom(...cas),
        key: fc.integer({ min: 0, max: keys.length - 1 }),
        keyAsSpki: fc.boolean(),
        hostId,
        policyClass: label,
        policyVersion,
        verdictId: label,
        pcrDigest,
        serial,
        notBefore,
        validitySeconds,
      }),
      (input) => checkSameBytes(input),
    ),
    { numRuns: 400 },
  );
});

test('the one-pass TBSCertificate at the length-form boundaries', () => {
  // Labels whose UTF-8 crosses 127/128 and 255/256 octets move every enclosing length to a longer form.
  const labels = [
    'x',
    'x'.repeat(127),
    'x'.repeat(128),
    'é'.repeat(63) + 'x',
    'é'.repeat(64),
    '€'.repeat(85),
    '€'.repeat(86),
    '😀'.repeat(64),
  ];
  const base = {
    ca: cas[0]!,
    key: 0,
    keyAsSpki: false,
    hostId: 'h',
    policyClass: 'web',
    policyVersion: 1,
    verdictId: 'v',
    pcrDigest: '00'.repeat(20),
    serial: 1n,
    notBefore: new Date('2026-11-25T12:00:00Z'),
    validitySeconds: 3600,
  };
  for (const policyClass of labels) {
    for (const verdictId of labels) checkSameBytes({ ...base, policyClass, verdictId });
  }
  for (const serial of [1n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x8000n, (1n << 159n) - 1n, 1n << 158n]) {
    for (const key of keys.keys()) checkSameBytes({ ...base, serial, key, hostId: 'a'.repeat(64) });
  }
  for (const notBefore of [
    new Date('1965-01-01T00:00:00Z'),
    new Date('2049-12-31T23:00:00Z'),
    new Date('2049-12-31T23:59:59Z'),
    new Date('2050-01-01T00:00:00Z'),
  ]) {
    checkSameBytes({ ...base, notBefore });
  }
});

test('signEcdsaSha256 wraps the signature as the encoders would', () => {
  for (const length of [0, 1, 100, 127, 128, 255, 256, 65_535, 65_536, 70_000]) {
    const tbs = new Uint8Array(length).fill(0x5a);
    const der = signEcdsaSha256(tbs, cas[0]!.privateKey);
    // SEQUENCE header, the TBS, the algorithm, then BIT STRING header (short: the signature is
    // under 128 octets) and the unused-bits octet before the signature.
    const header = der[1]! < 0x80 ? 2 : 2 + (der[1]! & 0x7f);
    const signature = der.subarray(header + tbs.length + ecdsaWithSha256Algorithm().length + 3);
    assert.deepEqual(Buffer.from(der), Buffer.from(referenceSigned(tbs, signature)));
    assert.equal(verify('sha256', tbs, cas[0]!.publicKey, signature), true);
  }
});
