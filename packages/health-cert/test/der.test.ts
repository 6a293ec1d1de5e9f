import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  compareBytes,
  decodeDer,
  encodeBitString,
  encodeBoolean,
  encodeElement,
  encodeGeneralizedTime,
  encodeInteger,
  encodeNamedBits,
  encodeNull,
  encodeOctetString,
  encodeOid,
  encodePrintableString,
  encodeSequence,
  encodeSetOf,
  encodeTime,
  encodeTlv,
  encodeUtcTime,
  encodeUtf8String,
  readBitString,
  readBoolean,
  readInteger,
  readNull,
  readOid,
  readString,
  readTime,
  TAG_CLASS_CONTEXT,
  TAG_CLASS_UNIVERSAL,
  TAG_SEQUENCE,
  TAG_SET,
  TAG_UTF8_STRING,
} from '../src/der.ts';
import { DerError } from '../src/errors.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const opensslPresent = spawnSync('openssl', ['version']).status === 0;

function rejects(input: Uint8Array | (() => unknown), code: string, offset?: number): void {
  const run = typeof input === 'function' ? input : () => decodeDer(input);
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof DerError, `expected DerError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (offset !== undefined) assert.equal(e.offset, offset);
    return true;
  });
}

test('encodes X.690 reference values byte for byte', () => {
  // Vectors worked by hand from X.690 §8.3 (INTEGER), §8.19 (OID), §8.6 (BIT STRING), §10.1 (lengths).
  assert.equal(hex(encodeInteger(0)), '020100');
  assert.equal(hex(encodeInteger(127)), '02017f');
  assert.equal(hex(encodeInteger(128)), '02020080');
  assert.equal(hex(encodeInteger(256)), '02020100');
  assert.equal(hex(encodeInteger(-128)), '020180');
  assert.equal(hex(encodeInteger(-129)), '0202ff7f');
  assert.equal(hex(encodeOid('1.2.840.113549')), '06062a864886f70d');
  assert.equal(hex(encodeOid('2.5.4.3')), '0603550403');
  assert.equal(hex(encodeOid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  assert.equal(hex(encodeBoolean(true)), '0101ff');
  assert.equal(hex(encodeNull()), '0500');
  assert.equal(hex(encodeNamedBits([0])), '03020780'); // keyUsage digitalSignature
  assert.equal(hex(encodeNamedBits([5, 6])), '03020106'); // keyCertSign + cRLSign
  assert.equal(hex(encodeOctetString(new Uint8Array(200))).slice(0, 8), '0481c800');
  assert.equal(hex(encodeOctetString(new Uint8Array(300))).slice(0, 8), '0482012c');
  // Length boundaries of the short and long forms.
  assert.equal(hex(encodeOctetString(new Uint8Array(127))).slice(0, 4), '047f');
  assert.equal(hex(encodeOctetString(new Uint8Array(128))).slice(0, 6), '048180');
  assert.equal(hex(encodeOctetString(new Uint8Array(255))).slice(0, 6), '0481ff');
  assert.equal(hex(encodeOctetString(new Uint8Array(256))).slice(0, 8), '04820100');
  assert.equal(hex(encodeOctetString(new Uint8Array(65536))).slice(0, 10), '0483010000');
  assert.equal(encodeOctetString(new Uint8Array(65536)).length, 65536 + 5);
  // OIDs are encoded once and handed out as copies: what a caller does to one never shows again.
  const oid = encodeOid('2.5.4.3');
  oid.fill(0);
  assert.equal(hex(encodeOid('2.5.4.3')), '0603550403');
  assert.equal(
    hex(encodeUtcTime(new Date('2026-11-25T15:04:05Z'))),
    hex(Buffer.from('\x17\x0d261125150405Z')),
  );
  assert.equal(
    hex(encodeTime(new Date('2050-01-01T00:00:00Z'))),
    hex(Buffer.from('\x18\x0f20500101000000Z')),
  );
  // SET OF is sorted by encoding regardless of argument order.
  assert.equal(hex(encodeSetOf(encodeInteger(2), encodeInteger(1))), '3106020101020102');
});

test('OID encodings agree with openssl asn1parse -genstr', {
  skip: !opensslPresent && 'openssl absent',
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hg-der-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const oid of ['2.25.267468689140349052810954370164254171085.1', '1.3.6.1.5.5.7.3.2', '2.999.1']) {
    const out = join(dir, 'oid.der');
    execFileSync('openssl', ['asn1parse', '-genstr', `OID:${oid}`, '-out', out, '-noout']);
    const der = readFileSync(out);
    assert.equal(hex(encodeOid(oid)), der.toString('hex'), oid);
    assert.equal(readOid(decodeDer(new Uint8Array(der))), oid);
  }
});

test('typed readers return the values', () => {
  assert.equal(readInteger(decodeDer(bytes('0202ff7f'))), -129n);
  assert.equal(readInteger(decodeDer(bytes('020900ffffffffffffffff'))), 0xffffffffffffffffn);
  assert.equal(readBoolean(decodeDer(bytes('010100'))), false);
  assert.equal(readNull(decodeDer(bytes('0500'))), null);
  assert.deepEqual(readBitString(decodeDer(bytes('03020106'))), { bytes: bytes('06'), unusedBits: 1 });
  assert.equal(readString(decodeDer(bytes('0c03e282ac')), 'x'), '\u20ac');
  assert.equal(readString(decodeDer(encodePrintableString('Host 1')), 'x'), 'Host 1');
  assert.equal(
    readTime(decodeDer(bytes('170d3439313233313233353935395a'))).toISOString(),
    '2049-12-31T23:59:59.000Z',
  );
  assert.equal(
    readTime(decodeDer(bytes('170d3530303130313030303030305a'))).toISOString(),
    '1950-01-01T00:00:00.000Z',
  );
  assert.equal(
    readTime(decodeDer(encodeGeneralizedTime(new Date('2100-02-28T01:02:03Z')))).toISOString(),
    '2100-02-28T01:02:03.000Z',
  );
  const seq = decodeDer(
    encodeSequence(encodeInteger(1), encodeTlv(TAG_CLASS_CONTEXT, false, 6, bytes('41'))),
  );
  assert.equal(seq.children.length, 2);
  assert.equal(seq.children[1]!.tagClass, TAG_CLASS_CONTEXT);
  assert.equal(seq.children[1]!.offset, 5);
});

test('rejects malformed DER with a code and the offset', () => {
  rejects(bytes(''), 'DER_TRUNCATED', 0);
  rejects(bytes('02'), 'DER_TRUNCATED', 1);
  rejects(bytes('0203 0001'), 'DER_TRUNCATED', 0);
  rejects(bytes('0201 00 00'), 'DER_TRAILING', 3);
  rejects(bytes('1f 01 00'), 'DER_TAG_HIGH_FORM', 0);
  rejects(bytes('00 00'), 'DER_TAG_INVALID', 0);
  rejects(bytes('30 80 0000'), 'DER_LENGTH_INDEFINITE', 1);
  rejects(bytes('04 81 05 0000000000'), 'DER_LENGTH_NON_MINIMAL', 1);
  rejects(bytes('04 82 0005 0000000000'), 'DER_LENGTH_NON_MINIMAL', 1);
  rejects(bytes('04 85 0100000000'), 'DER_LENGTH_TOO_LARGE', 1);
  rejects(bytes('04 84 7fffffff 00'), 'DER_TRUNCATED', 0);
  rejects(bytes('10 00'), 'DER_CONSTRUCTED_EXPECTED', 0);
  rejects(bytes('24 03 040100'), 'DER_PRIMITIVE_EXPECTED', 0);
  rejects(bytes('30 05 020101 0201'), 'DER_TRUNCATED', 5);
  rejects(bytes('31 06 020102 020101'), 'DER_SET_ORDER', 5);
  rejects(() => readInteger(decodeDer(bytes('0200'))), 'DER_INTEGER_INVALID', 2);
  rejects(() => readInteger(decodeDer(bytes('02020001'))), 'DER_INTEGER_INVALID', 2);
  rejects(() => readInteger(decodeDer(bytes('0202ff80'))), 'DER_INTEGER_INVALID', 2);
  rejects(() => readInteger(decodeDer(bytes('0500'))), 'DER_UNEXPECTED_TAG', 0);
  rejects(() => readBoolean(decodeDer(bytes('010101'))), 'DER_BOOLEAN_INVALID', 2);
  rejects(() => readNull(decodeDer(bytes('050100'))), 'DER_NULL_INVALID', 0);
  rejects(() => readBitString(decodeDer(bytes('0300'))), 'DER_BIT_STRING_INVALID', 2);
  rejects(() => readBitString(decodeDer(bytes('030208ff'))), 'DER_BIT_STRING_INVALID', 2);
  rejects(() => readBitString(decodeDer(bytes('030101'))), 'DER_BIT_STRING_INVALID', 2);
  rejects(() => readBitString(decodeDer(bytes('03020101'))), 'DER_BIT_STRING_INVALID', 3);
  rejects(() => readOid(decodeDer(bytes('0600'))), 'DER_OID_INVALID', 2);
  rejects(() => readOid(decodeDer(bytes('0603 2a8001'))), 'DER_OID_INVALID', 3);
  rejects(() => readOid(decodeDer(bytes('0602 2a86'))), 'DER_OID_INVALID', 3);
  rejects(() => readString(decodeDer(bytes('0c02c328')), 'cn'), 'DER_STRING_INVALID', 2);
  rejects(() => readString(decodeDer(bytes('1301 2a')), 'cn'), 'DER_STRING_INVALID', 2);
  rejects(() => readString(decodeDer(bytes('1601 41')), 'cn'), 'DER_UNEXPECTED_TAG', 0);
  rejects(() => readTime(decodeDer(bytes('170d3236313332353030303030305a'))), 'DER_TIME_INVALID', 2);
  rejects(() => readTime(decodeDer(bytes('170d3236303233303030303030305a'))), 'DER_TIME_INVALID', 2);
  rejects(() => readTime(decodeDer(bytes('170b323631313235313530345a'))), 'DER_TIME_INVALID', 2);
  rejects(() => readTime(decodeDer(bytes('170d32363131323531353034303541'))), 'DER_TIME_INVALID', 2);
  rejects(() => readTime(decodeDer(bytes('170d323631313235313530343a305a'))), 'DER_TIME_INVALID', 12);
  rejects(() => readTime(decodeDer(bytes('0500'))), 'DER_UNEXPECTED_TAG', 0);
});

test('caps input size, nesting depth and element count', () => {
  rejects(() => decodeDer(new Uint8Array(10), { maxInputBytes: 9 }), 'DER_INPUT_TOO_LARGE', 0);
  let nested = encodeNull();
  for (let i = 0; i < 40; i++) nested = encodeSequence(nested);
  rejects(nested, 'DER_TOO_DEEP');
  assert.doesNotThrow(() => decodeDer(nested, { maxDepth: 41 }));
  const wide = encodeSequence(...Array.from({ length: 50 }, () => encodeNull()));
  rejects(() => decodeDer(wide, { maxElements: 50 }), 'DER_TOO_MANY_ELEMENTS');
  assert.equal(decodeDer(wide, { maxElements: 51 }).children.length, 50);
  rejects(() => decodeDer(bytes('0201 00 00'), { baseOffset: 100 }), 'DER_TRAILING', 103);
});

test('encoders refuse values DER cannot carry', () => {
  rejects(() => encodeOid('3.1'), 'DER_ENCODE_INVALID');
  rejects(() => encodeOid('1.40'), 'DER_ENCODE_INVALID');
  rejects(() => encodeOid('1'), 'DER_ENCODE_INVALID');
  rejects(() => encodePrintableString('a_b'), 'DER_ENCODE_INVALID');
  rejects(() => encodeUtf8String('\ud800'), 'DER_ENCODE_INVALID');
  rejects(() => encodeUtcTime(new Date('2050-01-01T00:00:00Z')), 'DER_ENCODE_INVALID');
  rejects(() => encodeTime(new Date(1.5)), 'DER_ENCODE_INVALID');
  rejects(() => encodeBitString(bytes('01'), 1), 'DER_ENCODE_INVALID');
  rejects(() => encodeInteger(2 ** 60), 'DER_ENCODE_INVALID');
});

// --- properties ------------------------------------------------------------------------------

type Tree = {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  content: Uint8Array;
  children: Tree[];
};

const primitiveTags = [1, 2, 3, 4, 5, 6, 10, 12, 19, 22, 23, 24];
const leaf: fc.Arbitrary<Tree> = fc
  .record({
    tagClass: fc.integer({ min: 0, max: 3 }),
    tagNumber: fc.integer({ min: 0, max: 30 }),
    universal: fc.constantFrom(...primitiveTags),
    content: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ tagClass, tagNumber, universal, content }) => ({
    tagClass,
    constructed: false,
    tagNumber: tagClass === TAG_CLASS_UNIVERSAL ? universal : tagNumber,
    content,
    children: [],
  }));

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc
      .record({
        tagClass: fc.integer({ min: 0, max: 3 }),
        tagNumber: fc.integer({ min: 0, max: 30 }),
        children: fc.array(tie('node'), { maxLength: 5 }),
      })
      .map(({ tagClass, tagNumber, children }) => ({
        tagClass,
        constructed: true,
        tagNumber:
          tagClass === TAG_CLASS_UNIVERSAL ? (tagNumber % 2 === 0 ? TAG_SEQUENCE : TAG_SET) : tagNumber,
        content: new Uint8Array(0),
        // A universal SET is a SET OF here: DER wants its components in encoding order.
        children:
          tagClass === TAG_CLASS_UNIVERSAL && tagNumber % 2 === 1
            ? [...children].sort((a, b) => compareBytes(encodeElement(a as never), encodeElement(b as never)))
            : children,
      })),
  ),
})).node;

function stripped(el: {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  content: Uint8Array;
  children: readonly unknown[];
}): unknown {
  return {
    tagClass: el.tagClass,
    constructed: el.constructed,
    tagNumber: el.tagNumber,
    content: el.constructed ? null : hex(el.content),
    children: el.children.map((c) => stripped(c as Tree)),
  };
}

test('property: encode → decode → encode is the identity on element trees', () => {
  fc.assert(
    fc.property(tree, (t) => {
      const encoded = encodeElement(t as never);
      const decoded = decodeDer(encoded);
      assert.deepEqual(stripped(decoded), stripped(t));
      assert.equal(hex(encodeElement(decoded)), hex(encoded));
      assert.equal(decoded.encoded.length, encoded.length);
    }),
    { numRuns: 500 },
  );
});

test('property: integers, OIDs, strings and times round trip', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }), (v) => {
      assert.equal(readInteger(decodeDer(encodeInteger(v))), v);
    }),
  );
  const oid = fc
    .tuple(
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 39 }),
      fc.array(fc.bigInt({ min: 0n, max: 1n << 128n }), { maxLength: 6 }),
    )
    .map(([a, b, rest]) => [a, b, ...rest].join('.'));
  fc.assert(fc.property(oid, (o) => assert.equal(readOid(decodeDer(encodeOid(o))), o)));
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
      assert.equal(readString(decodeDer(encodeUtf8String(s)), 's', [TAG_UTF8_STRING]), s);
    }),
  );
  const seconds = fc.integer({ min: -2_000_000_000, max: 253_402_300_799 }).map((s) => new Date(s * 1000));
  fc.assert(
    fc.property(seconds, (d) => assert.equal(readTime(decodeDer(encodeTime(d))).getTime(), d.getTime())),
  );
});

function onlyTypedErrors(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    assert.equal(typeof e.code, 'string');
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0);
  }
}

function readEverything(bytesIn: Uint8Array): void {
  const visit = (el: ReturnType<typeof decodeDer>): void => {
    for (const child of el.children) visit(child);
    if (el.tagClass !== TAG_CLASS_UNIVERSAL) return;
    onlyTypedErrors(() => readInteger(el));
    onlyTypedErrors(() => readBoolean(el));
    onlyTypedErrors(() => readNull(el));
    onlyTypedErrors(() => readBitString(el));
    onlyTypedErrors(() => readOid(el));
    onlyTypedErrors(() => readString(el, 's', [12, 19, 22]));
    onlyTypedErrors(() => readTime(el));
  };
  onlyTypedErrors(() => visit(decodeDer(bytesIn)));
}

test('property: the decoder and readers only ever throw DerError on random bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), readEverything), { numRuns: 2000 });
});

test('property: mutated valid encodings only ever throw DerError', () => {
  const mutation = fc.record({
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
    cut: fc.nat(),
    mode: fc.constantFrom('flip', 'truncate', 'extend'),
  });
  fc.assert(
    fc.property(tree, mutation, (t, m) => {
      const valid = encodeElement(t as never);
      let mutated: Uint8Array = valid.slice();
      if (m.mode === 'flip' && mutated.length > 0) mutated[m.at % mutated.length] = m.value;
      if (m.mode === 'truncate') mutated = mutated.subarray(0, m.cut % (mutated.length + 1));
      if (m.mode === 'extend') mutated = Uint8Array.of(...mutated, m.value);
      readEverything(mutated);
    }),
    { numRuns: 1000 },
  );
});

test('SET and SEQUENCE built by the encoders decode with their tags', () => {
  const set = decodeDer(encodeSetOf(encodeUtf8String('b'), encodeUtf8String('a')));
  assert.equal(set.tagNumber, TAG_SET);
  assert.deepEqual(
    set.children.map((c) => readString(c, 'x')),
    ['a', 'b'],
  );
});
