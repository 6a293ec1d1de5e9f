import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { marshalAttest, type TpmsAttest, unmarshalAttest } from '../src/attest.ts';
import { eccAkTemplate, eccEkTemplate, rsaAkTemplate, rsaEkTemplate } from '../src/client/templates.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST_ATTEST } from '../src/constants.ts';
import { objectName } from '../src/crypto.ts';
import { Tpm2Error } from '../src/errors.ts';
import { derCertificateBytes } from '../src/ek-cert.ts';
import {
  marshalDigestList,
  marshalPcrSelectionList,
  parsePcrList,
  type PcrSelection,
  pcrSelection,
  selectedPcrs,
  unmarshalDigestList,
  unmarshalPcrSelectionList,
} from '../src/pcr.ts';
import {
  ekTemplate,
  ekTemplateOf,
  isRestrictedSigningKey,
  marshalPublic,
  marshalTpmtPublic,
  type TpmPublic,
  unmarshalPublic,
  unmarshalTpmtPublic,
} from '../src/public.ts';
import { marshalSignature, type TpmtSignature, unmarshalSignature } from '../src/signature.ts';
import { parsePcrValues, parseSerializedPcrs, serializePcrs } from '../src/tpm2-tools-files.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const hashAlg = fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512);
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const symDef = fc.oneof(
  fc.constant({ algorithm: TPM_ALG.NULL }),
  fc.record({ algorithm: fc.constantFrom(TPM_ALG.AES, TPM_ALG.CAMELLIA), keyBits: u16, mode: u16 }),
);
const rsaScheme = fc.oneof(
  fc.record({ scheme: fc.constantFrom(TPM_ALG.NULL, TPM_ALG.RSAES) }),
  fc.record({ scheme: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.OAEP), hashAlg }),
);
const eccScheme = fc.oneof(
  fc.record({ scheme: fc.constant(TPM_ALG.NULL) }),
  fc.record({ scheme: fc.constantFrom(TPM_ALG.ECDSA, TPM_ALG.ECDH, TPM_ALG.ECSCHNORR), hashAlg }),
  fc.record({ scheme: fc.constant(TPM_ALG.ECDAA), hashAlg, count: u16 }),
);
const kdf = fc.oneof(
  fc.record({ scheme: fc.constant(TPM_ALG.NULL) }),
  fc.record({ scheme: fc.constantFrom(TPM_ALG.KDF1_SP800_56A, TPM_ALG.MGF1), hashAlg }),
);
const common = { nameAlg: hashAlg, objectAttributes: u32, authPolicy: bytes(64), symmetric: symDef };
const tpmPublic: fc.Arbitrary<TpmPublic> = fc.oneof(
  fc.record({
    type: fc.constant('rsa' as const),
    ...common,
    scheme: rsaScheme,
    keyBits: u16,
    exponent: u32,
    modulus: bytes(512),
  }),
  fc.record({
    type: fc.constant('ecc' as const),
    ...common,
    scheme: eccScheme,
    curveId: u16,
    kdf,
    x: bytes(66),
    y: bytes(66),
  }),
);
const selection: fc.Arbitrary<PcrSelection> = fc.record({ hashAlg, select: bytes(32) });
const signature: fc.Arbitrary<TpmtSignature> = fc.oneof(
  fc.record({
    kind: fc.constant('rsa' as const),
    sigAlg: fc.constantFrom(TPM_ALG.RSASSA, TPM_ALG.RSAPSS),
    hashAlg,
    sig: bytes(512),
  }),
  fc.record({
    kind: fc.constant('ecc' as const),
    sigAlg: fc.constantFrom(TPM_ALG.ECDSA, TPM_ALG.ECDAA, TPM_ALG.SM2, TPM_ALG.ECSCHNORR),
    hashAlg,
    r: bytes(66),
    s: bytes(66),
  }),
  fc.record({ kind: fc.constant('null' as const), sigAlg: fc.constant(TPM_ALG.NULL) }),
  fc.record({
    kind: fc.constant('hmac' as const),
    sigAlg: fc.constant(TPM_ALG.HMAC),
    hashAlg: fc.constant(TPM_ALG.SHA256),
    digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
);
const attest: fc.Arbitrary<TpmsAttest> = fc
  .record({
    magic: fc.constant(TPM_GENERATED_VALUE),
    type: fc.constantFrom(TPM_ST_ATTEST.QUOTE, TPM_ST_ATTEST.CERTIFY),
    qualifiedSigner: bytes(66),
    extraData: bytes(66),
    clockInfo: fc.record({
      clock: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      resetCount: u32,
      restartCount: u32,
      safe: fc.boolean(),
    }),
    firmwareVersion: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  })
  .chain((h) =>
    (h.type === TPM_ST_ATTEST.QUOTE
      ? fc.record({
          kind: fc.constant('quote' as const),
          pcrSelect: fc.array(selection, { maxLength: 16 }),
          pcrDigest: bytes(64),
        })
      : fc.record({ kind: fc.constant('certify' as const), name: bytes(66), qualifiedName: bytes(66) })
    ).map((attested) => ({ ...h, attested }) as TpmsAttest),
  );

/** Runs `parse` and requires that it returns or throws a Tpm2Error whose offset lies within the input. */
function typedOnly(parse: (b: Uint8Array) => unknown, input: Uint8Array): void {
  try {
    parse(input);
  } catch (err) {
    if (!(err instanceof Tpm2Error)) throw err;
    assert.ok(err.offset >= 0 && err.offset <= input.length, `offset ${err.offset} outside ${input.length}`);
  }
}

/** Byte-level mutations of a valid encoding: flips, truncation, extension, overwritten size fields. */
const mutated = (valid: fc.Arbitrary<Uint8Array>) =>
  fc
    .tuple(valid, fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'truncate', 'extend', 'set'))
    .map(([b, at, v, how]) => {
      if (b.length === 0) return b;
      const i = at % b.length;
      if (how === 'truncate') return b.slice(0, i);
      if (how === 'extend') return Uint8Array.from([...b, v]);
      const out = b.slice();
      out[i] = how === 'flip' ? out[i]! ^ (1 << (v % 8)) : v;
      return out;
    });

const cases: { name: string; arb: fc.Arbitrary<Uint8Array>; parse: (b: Uint8Array) => unknown }[] = [
  { name: 'TPMT_PUBLIC', arb: tpmPublic.map(marshalTpmtPublic), parse: unmarshalTpmtPublic },
  { name: 'TPM2B_PUBLIC', arb: tpmPublic.map(marshalPublic), parse: unmarshalPublic },
  { name: 'TPMS_ATTEST', arb: attest.map(marshalAttest), parse: unmarshalAttest },
  { name: 'TPMT_SIGNATURE', arb: signature.map(marshalSignature), parse: unmarshalSignature },
  {
    name: 'TPML_PCR_SELECTION',
    arb: fc.array(selection, { maxLength: 16 }).map(marshalPcrSelectionList),
    parse: unmarshalPcrSelectionList,
  },
  {
    name: 'TPML_DIGEST',
    arb: fc.array(bytes(64), { maxLength: 8 }).map(marshalDigestList),
    parse: unmarshalDigestList,
  },
];

describe('round trips (fast-check)', () => {
  test('TPMT_PUBLIC and TPM2B_PUBLIC', () => {
    fc.assert(
      fc.property(tpmPublic, (p) => {
        assert.deepEqual(unmarshalTpmtPublic(marshalTpmtPublic(p)), structuredClone(p));
        assert.deepEqual(unmarshalPublic(marshalPublic(p)), structuredClone(p));
      }),
    );
  });
  test('TPMS_ATTEST', () => {
    fc.assert(
      fc.property(attest, (a) => assert.deepEqual(unmarshalAttest(marshalAttest(a)), structuredClone(a))),
    );
  });
  test('TPMT_SIGNATURE', () => {
    fc.assert(
      fc.property(signature, (s) =>
        assert.deepEqual(unmarshalSignature(marshalSignature(s)), structuredClone(s)),
      ),
    );
  });
  test('TPML_PCR_SELECTION and TPML_DIGEST', () => {
    fc.assert(
      fc.property(fc.array(selection, { maxLength: 16 }), (l) =>
        assert.deepEqual(unmarshalPcrSelectionList(marshalPcrSelectionList(l)), structuredClone(l)),
      ),
    );
    fc.assert(
      fc.property(fc.array(bytes(64), { maxLength: 8 }), (l) =>
        assert.deepEqual(unmarshalDigestList(marshalDigestList(l)), l),
      ),
    );
  });
});

describe('hostile input raises only Tpm2Error with an offset inside the input (fast-check)', () => {
  for (const c of cases) {
    test(c.name, () => {
      fc.assert(
        fc.property(mutated(c.arb), (b) => typedOnly(c.parse, b)),
        { numRuns: 2000 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (b) => typedOnly(c.parse, b)),
        { numRuns: 1000 },
      );
    });
  }
});

describe('TPMT_PUBLIC against the client templates (independently built bytes)', () => {
  test('the RSA AK template reads as a restricted RSASSA-SHA256 2048-bit signing key', () => {
    const p = unmarshalTpmtPublic(rsaAkTemplate());
    assert.equal(p.type, 'rsa');
    assert.equal(p.nameAlg, 0x000b);
    assert.equal(p.objectAttributes, 0x00050072);
    assert.deepEqual(p.scheme, { scheme: 0x0014, hashAlg: 0x000b });
    assert.equal(p.type === 'rsa' && p.keyBits, 2048);
    assert.ok(isRestrictedSigningKey(p));
    assert.equal(hex(rsaAkTemplate()), '0001000b00050072000000100014000b0800000000000000');
  });
  test('the ECC AK template reads as ECDSA-SHA256 on P-256', () => {
    const p = unmarshalTpmtPublic(eccAkTemplate());
    assert.equal(p.type === 'ecc' && p.curveId, 3);
    assert.deepEqual(p.scheme, { scheme: 0x0018, hashAlg: 0x000b });
    assert.ok(isRestrictedSigningKey(p));
  });
  test('the EK templates are recognised as L-1 and L-2 and are not signing keys', () => {
    const rsa = unmarshalTpmtPublic(rsaEkTemplate());
    const ecc = unmarshalTpmtPublic(eccEkTemplate());
    assert.equal(ekTemplateOf(rsa), 'L-1 (RSA 2048)');
    assert.equal(ekTemplateOf(ecc), 'L-2 (ECC NIST P-256)');
    assert.equal(ekTemplateOf(unmarshalTpmtPublic(rsaAkTemplate())), undefined);
    assert.equal(ekTemplateOf(ekTemplate('ecc384')), 'H-3 (ECC NIST P-384)');
    // H-3 (EK Credential Profile 2.0 high-range template), written out by hand: PolicyB SHA-384, AES-256-CFB, empty unique.
    assert.equal(
      hex(marshalTpmtPublic(ekTemplate('ecc384'))),
      '0023000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12' +
        '00060100004300100004001000000000',
    );
    assert.ok(!isRestrictedSigningKey(rsa));
    // EK Credential Profile 2.0 templates L-1 and L-2, written out by hand.
    const policy = '0020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';
    const head = `000b000300b2${policy}0006008000430010`;
    assert.equal(
      hex(marshalTpmtPublic(ekTemplate('rsa'))),
      `0001${head}080000000000${'0100'}${'00'.repeat(256)}`,
    );
    assert.equal(
      hex(marshalTpmtPublic(ekTemplate('ecc'))),
      `0023${head}00030010${'0020'}${'00'.repeat(32)}0020${'00'.repeat(32)}`,
    );
  });
  test('object name is nameAlg ‖ SHA-256 of the marshaled area', () => {
    const t = rsaAkTemplate();
    const expected = `000b${createHash('sha256').update(t).digest('hex')}`;
    assert.equal(hex(objectName(t)), expected);
    assert.equal(hex(objectName(unmarshalTpmtPublic(t))), expected);
  });
});

describe('rejections name the code and offset', () => {
  test('TPMT_PUBLIC of an unknown type, hash or scheme', () => {
    const t = rsaAkTemplate();
    const badType = t.slice();
    badType[1] = 0x25; // TPM_ALG_SYMCIPHER
    assert.throws(() => unmarshalTpmtPublic(badType), { code: 'UNSUPPORTED_ALGORITHM', offset: 0 });
    const badHash = t.slice();
    badHash[3] = 0x99;
    assert.throws(() => unmarshalTpmtPublic(badHash), { code: 'UNSUPPORTED_ALGORITHM', offset: 2 });
    assert.throws(() => unmarshalTpmtPublic(t.subarray(0, t.length - 1)), { code: 'MALFORMED' });
    assert.throws(() => unmarshalTpmtPublic(Uint8Array.from([...t, 0])), {
      code: 'MALFORMED',
      offset: t.length,
    });
    // TPM2B_PUBLIC offsets count the 2-byte prefix.
    const wrapped = Uint8Array.from([t.length >> 8, t.length & 0xff, ...badHash]);
    assert.throws(() => unmarshalPublic(wrapped), { code: 'UNSUPPORTED_ALGORITHM', offset: 4 });
  });
  test('an oversized RSA modulus length is MALFORMED at its size field', () => {
    const t = rsaAkTemplate();
    const big = Uint8Array.from([...t.subarray(0, t.length - 2), 0x02, 0x01]); // 513 bytes
    assert.throws(() => unmarshalTpmtPublic(big), { code: 'MALFORMED', offset: t.length - 2 });
  });
  test('TPMS_ATTEST magic, type, safe flag', () => {
    const a = new Uint8Array(40);
    assert.throws(() => unmarshalAttest(a), { code: 'BAD_MAGIC', offset: 0 });
    new DataView(a.buffer).setUint32(0, TPM_GENERATED_VALUE);
    new DataView(a.buffer).setUint16(4, 0x1234);
    assert.throws(() => unmarshalAttest(a), { code: 'WRONG_TYPE', offset: 4 });
    new DataView(a.buffer).setUint16(4, TPM_ST_ATTEST.QUOTE);
    a[26] = 2; // safe (after magic 4, type 2, two empty TPM2Bs 4, clock 8, counters 8)
    assert.throws(() => unmarshalAttest(a), { code: 'MALFORMED', offset: 26 });
    assert.throws(() => unmarshalAttest(new Uint8Array(4096)), { code: 'MALFORMED' });
  });
  test('TPML_PCR_SELECTION counts and sizes are capped', () => {
    assert.throws(() => unmarshalPcrSelectionList(Uint8Array.of(0, 0, 0, 17)), {
      code: 'MALFORMED',
      offset: 0,
    });
    assert.throws(() => unmarshalPcrSelectionList(Uint8Array.of(0, 0, 0, 1, 0, 0x0b, 33)), {
      code: 'MALFORMED',
      offset: 6,
    });
    assert.throws(() => unmarshalPcrSelectionList(Uint8Array.of(0, 0, 0, 1, 0, 0x0b, 3, 0xff)), {
      code: 'MALFORMED',
    });
    assert.throws(() => unmarshalPcrSelectionList(Uint8Array.of(0, 0, 0, 1, 0, 0x42, 0)), {
      code: 'UNSUPPORTED_ALGORITHM',
      offset: 4,
    });
    assert.throws(() => unmarshalDigestList(Uint8Array.of(0, 0, 0, 9)), { code: 'MALFORMED', offset: 0 });
    assert.throws(() => unmarshalDigestList(Uint8Array.of(0, 0, 0, 1, 0, 65)), {
      code: 'MALFORMED',
      offset: 4,
    });
  });
  test('TPMT_SIGNATURE with an unknown algorithm or hash', () => {
    assert.throws(() => unmarshalSignature(Uint8Array.of(0, 0x99)), {
      code: 'UNSUPPORTED_ALGORITHM',
      offset: 0,
    });
    assert.throws(() => unmarshalSignature(Uint8Array.of(0, 0x18, 0, 0x99)), {
      code: 'UNSUPPORTED_ALGORITHM',
      offset: 2,
    });
    assert.throws(() => unmarshalSignature(Uint8Array.of(0, 0x18, 0, 0x0b, 0, 67)), {
      code: 'MALFORMED',
      offset: 4,
    });
  });
  test('PCR list syntax and bitmaps', () => {
    const [sel] = parsePcrList('sha256:0,1,7,16');
    assert.equal(hex(sel!.select), '830001');
    assert.deepEqual(selectedPcrs(sel!.select), [0, 1, 7, 16]);
    assert.throws(() => parsePcrList('sha256:'), RangeError);
    assert.throws(() => parsePcrList('md5:1'), RangeError);
  });
});

describe('tpm2-tools PCR files (fast-check)', () => {
  const hashes = ['sha1', 'sha256', 'sha384'] as const;
  const sizes = { sha1: 20, sha256: 32, sha384: 48 } as const;
  const banks = fc
    .uniqueArray(
      fc.record({
        hash: fc.constantFrom(...hashes),
        pcrs: fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 24 }),
      }),
      { selector: (b) => b.hash, maxLength: 3 },
    )
    .chain((list) =>
      fc.tuple(
        fc.constant(list),
        fc.array(fc.uint8Array({ minLength: 48, maxLength: 48 }), { minLength: 72, maxLength: 72 }),
      ),
    );
  const build = ([list, pool]: [{ hash: (typeof hashes)[number]; pcrs: number[] }[], Uint8Array[]]) => {
    let k = 0;
    const selection = list.map((b) => pcrSelection(b.hash, b.pcrs));
    const pcrs = new Map(
      list.map((b) => [b.hash, new Map(b.pcrs.map((p) => [p, pool[k++]!.slice(0, sizes[b.hash])]))] as const),
    );
    return { selection, pcrs };
  };
  test('serialized form round-trips; values form reads back', () => {
    fc.assert(
      fc.property(banks, (b) => {
        const { selection, pcrs } = build(b);
        const back = parseSerializedPcrs(serializePcrs(selection, pcrs));
        assert.deepEqual(back.selection, selection);
        assert.deepEqual(back.pcrs, pcrs);
        // The values form: each bank in selection order, PCRs ascending.
        const values = Buffer.concat(
          b[0].flatMap((x) => [...x.pcrs].sort((m, n) => m - n).map((p) => pcrs.get(x.hash)!.get(p)!)),
        );
        assert.deepEqual(parsePcrValues(Uint8Array.from(values), selection), pcrs);
      }),
      { numRuns: 200 },
    );
  });
  test('hostile files raise only Tpm2Error with an offset inside the input', () => {
    const sel = parsePcrList('sha256:0,1,2+sha1:7');
    fc.assert(
      fc.property(mutated(banks.map((b) => serializePcrs(build(b).selection, build(b).pcrs))), (bytes) =>
        typedOnly(parseSerializedPcrs, bytes),
      ),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 800 }), (b) => typedOnly(parseSerializedPcrs, b)),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => typedOnly((x) => parsePcrValues(x, sel), b)),
      { numRuns: 500 },
    );
  });
  test('the DER length reader never throws untyped', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => typedOnly(derCertificateBytes, b)),
      { numRuns: 2000 },
    );
  });
});
