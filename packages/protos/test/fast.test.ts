// The fast codec path (src/fast.ts) against the protobufjs codec it replaced (reference-codec.ts):
// generated messages (random values, edge cases, wrong types) encode to the same bytes or fail the
// same way; their encodings, and mutated / truncated / hostile bytes, decode to the same objects
// (same keys in the same order, Buffers) or fail with the same code, offset and message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { BAIL, fastDecode, fastEncode, fastSupported, fastTypeOf } from '../src/fast.ts';
import {
  codec,
  hostgateRoot,
  KAFKA_PAYLOAD_NAMES,
  type KafkaPayloadName,
  ProtoCodecError,
} from '../src/index.ts';
import { referenceCodec } from './reference-codec.ts';
import { evidence, samples } from './samples.ts';

let seed = 0x2545f491;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;

const STRINGS = [
  '',
  'a',
  'h-0123',
  'é',
  '✓ grub — ',
  '😀',
  'x'.repeat(63),
  'y'.repeat(64),
  'ü'.repeat(40),
  '1',
  '0',
];
const UINT32 = [0, 1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1];
const INT32 = [0, 1, -1, 127, 128, -128, 2 ** 31 - 1, -(2 ** 31), 300];
const LONGS = [
  '0',
  '1',
  '-1',
  '127',
  '128',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '9223372036854775807',
  '-9223372036854775808',
  '9223372036854775808',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999',
  '-99999999999999999999',
  '-62135596800',
  '000123',
  '-0',
  '123456789012345',
  '1234567890123456',
  '-123456789012345',
  '-1234567890123456',
];
const SAFE = [0, 1, 300, 2 ** 32, 2 ** 53 - 1, -1, -(2 ** 53 - 1), -(2 ** 32)];

function bytesValue(): Uint8Array {
  const n = pick([0, 1, 5, 32, 63, 64, 200]);
  const b = Buffer.alloc(n + 4);
  for (let i = 0; i < b.length; i++) b[i] = rnd(256);
  const view = rnd(2) === 0 ? b.subarray(2, 2 + n) : new Uint8Array(b.buffer, b.byteOffset + 1, n);
  return view;
}

/** A value of a field's element type; sometimes of the wrong type when `wrong`. */
function scalar(field: protobuf.Field, wrong: boolean): unknown {
  if (wrong && rnd(4) === 0)
    return pick<unknown>([
      1.5,
      -1,
      'abc',
      true,
      {},
      [],
      new Date(0),
      'AAEC',
      [1, 2],
      NaN,
      2 ** 32,
      '\ud800x',
      '',
      0,
      null,
    ]);
  const e = field.resolvedType;
  if (e instanceof protobuf.Enum) {
    const names = Object.keys(e.values);
    return rnd(5) === 0 ? pick([0, 4, 11, 99, -1]) : pick(names);
  }
  switch (field.type) {
    case 'string':
      return pick(STRINGS);
    case 'bytes':
      return bytesValue();
    case 'bool':
      return rnd(2) === 0;
    case 'uint32':
      return rnd(3) === 0 ? rnd(1000) : pick(UINT32);
    case 'int32':
      return pick(INT32);
    case 'uint64':
      return rnd(4) === 0 ? pick(SAFE.filter((n) => n >= 0)) : pick(LONGS.filter((s) => !s.startsWith('-')));
    case 'int64':
      return rnd(4) === 0 ? pick(SAFE) : pick(LONGS);
    default:
      throw new Error(`no generator for ${field.type}`);
  }
}

/** A random input object of `type` (the permissive input shape), `depth` levels of sub-messages. */
function generate(type: protobuf.Type, depth: number, wrong: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    const r = rnd(10);
    if (r === 0) continue;
    if (r === 1) {
      o[field.name] = rnd(2) === 0 ? null : undefined;
      continue;
    }
    if (field instanceof protobuf.MapField) {
      const m: Record<string, unknown> = {};
      for (let i = rnd(4); i > 0; i--) m[pick(['k', '', '2', '10', 'é', 'event_index'])] = pick(STRINGS);
      if (wrong && rnd(6) === 0) m['n'] = 5;
      o[field.name] = m;
    } else if (field.resolvedType instanceof protobuf.Type) {
      const sub = () =>
        depth > 0 ? generate(field.resolvedType as protobuf.Type, depth - 1, wrong) : ({} as object);
      o[field.name] = field.repeated ? Array.from({ length: rnd(4) }, sub) : sub();
      if (wrong && rnd(10) === 0) o[field.name] = pick<unknown>(['x', 5, [{}], new Date(0), [null]]);
    } else if (field.repeated) {
      o[field.name] = Array.from({ length: rnd(5) }, () => scalar(field, wrong));
    } else o[field.name] = scalar(field, wrong);
    if (field.partOf && rnd(2) === 0) o[field.partOf.name] = field.name; // virtual field, ignored
  }
  return o;
}

type Outcome = { ok: unknown } | { err: unknown };
function outcome(fn: () => unknown): Outcome {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof ProtoCodecError)
      return { err: { code: e.code, offset: e.offset, typeName: e.typeName, message: e.message } };
    return { err: `not a ProtoCodecError: ${String(e)}` };
  }
}

/** Keys in order, Buffers by class and contents: deepStrictEqual alone ignores key order. */
function shape(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { Buffer: v.toString('hex') };
  if (v instanceof Uint8Array) return { Uint8Array: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object')
    return Object.entries(v).map(([k, x]) => [k, Object.getPrototypeOf(v) === Object.prototype, shape(x)]);
  return v;
}

function assertSame(a: Outcome, b: Outcome, what: string): void {
  assert.deepStrictEqual(shape(a), shape(b), what);
  assert.deepStrictEqual(a, b, what);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function checkDecode(name: KafkaPayloadName, bytes: Uint8Array, what: string): void {
  const fast = codec(name);
  const ref = referenceCodec(name);
  assertSame(
    outcome(() => fast.decode(bytes)),
    outcome(() => ref.decode(bytes)),
    `${what}: ${name} ${hex(bytes).slice(0, 3000)}`,
  );
}

test('every Kafka payload type takes the fast path, which gives the reference bytes and objects', () => {
  for (const name of KAFKA_PAYLOAD_NAMES) {
    const t = fastTypeOf(hostgateRoot().lookupType(`hostgate.v1.${name}`));
    assert.ok(fastSupported(t), name);
    const wire = referenceCodec(name).encode(samples[name]);
    const encoded = fastEncode(t, samples[name]);
    assert.notEqual(encoded, BAIL, `${name} encode bailed`);
    assert.equal(hex(encoded as Buffer), hex(wire), name);
    const decoded = fastDecode(t, wire);
    assert.notEqual(decoded, BAIL, `${name} decode bailed`);
    assertSame({ ok: decoded }, { ok: referenceCodec(name).decode(wire) }, name);
  }
});

test('generated messages encode to the same bytes and decode to the same objects', () => {
  let fastEncodes = 0;
  for (let i = 0; i < 1500; i++) {
    const name = KAFKA_PAYLOAD_NAMES[i % KAFKA_PAYLOAD_NAMES.length]!;
    const type = hostgateRoot().lookupType(`hostgate.v1.${name}`);
    const message = generate(type, 1 + rnd(4), false);
    const a = outcome(() => codec(name).encode(message as never));
    assertSame(
      a,
      outcome(() => referenceCodec(name).encode(message)),
      `encode #${i} ${name}`,
    );
    if (fastEncode(fastTypeOf(type), message) !== BAIL) fastEncodes++;
    if ('ok' in a) {
      const wire = a.ok as Buffer;
      checkDecode(name, wire, `round trip #${i}`);
      assert.notEqual(fastDecode(fastTypeOf(type), wire), BAIL, `decode #${i} bailed`);
      // a plain Uint8Array and a view into a larger buffer decode the same
      checkDecode(name, new Uint8Array(wire), `Uint8Array #${i}`);
      const padded = Buffer.concat([Buffer.from([1, 2, 3]), wire, Buffer.from([4])]);
      checkDecode(name, padded.subarray(3, 3 + wire.length), `view #${i}`);
      // decoded objects encode back to the same bytes
      const decoded = codec(name).decode(wire);
      assert.equal(hex(codec(name).encode(decoded as never)), hex(referenceCodec(name).encode(decoded)));
    }
  }
  // Lone surrogates take the protobufjs path; everything else here is canonical input.
  assert.ok(fastEncodes > 1000, `only ${fastEncodes} of 1500 encodes took the fast path`);
});

test('wrong-typed and odd inputs encode or fail exactly as before', () => {
  for (let i = 0; i < 3000; i++) {
    const name = KAFKA_PAYLOAD_NAMES[i % KAFKA_PAYLOAD_NAMES.length]!;
    const type = hostgateRoot().lookupType(`hostgate.v1.${name}`);
    const message = generate(type, 1 + rnd(3), true);
    assertSame(
      outcome(() => codec(name).encode(message as never)),
      outcome(() => referenceCodec(name).encode(message)),
      `encode #${i} ${name} ${JSON.stringify(message)?.slice(0, 300)}`,
    );
  }
  const odd: [KafkaPayloadName, unknown][] = [
    ['Evidence', []],
    ['Evidence', new Date(0)],
    ['Evidence', Object.create(null)],
    ['Evidence', hostgateRoot().lookupType('hostgate.v1.Evidence').create({ hostId: 'h' })],
    [
      'Evidence',
      {
        quote: hostgateRoot()
          .lookupType('hostgate.v1.TpmQuote')
          .create({ attest: Buffer.from('a') }),
      },
    ],
    ['Evidence', { nonce: 'AAEC' }],
    ['Evidence', { nonce: [1, 2, 300] }],
    ['Evidence', { nonce: {} }],
    ['Evidence', { quote: 'not an object' }],
    ['Evidence', { quote: { pcrBanks: [null] } }],
    ['Evidence', { quote: { pcrBanks: {} } }],
    ['Evidence', { quoteInfo: { clock: 1.5 } }],
    ['Evidence', { quoteInfo: { clock: -5 } }],
    ['Evidence', { quoteInfo: { clock: '' } }],
    ['Evidence', { quoteInfo: { clock: '12a' } }],
    ['Evidence', { quoteInfo: { clock: 2 ** 60 } }],
    ['Evidence', { quoteInfo: { pcrDigestAlgorithm: 'NOPE' } }],
    ['Evidence', { quoteInfo: { pcrDigestAlgorithm: -3 } }],
    ['Evidence', { quoteInfo: { pcrSelection: [{ pcrs: [1, -1, 2 ** 32, 0.5] }] } }],
    ['Evidence', { hostId: 5, attestationId: '\udc00' }],
    ['DeadLetter', { headers: JSON.parse('{"__proto__": "x", "a": "b"}') }],
    ['DeadLetter', { headers: { a: 1 } }],
    ['DeadLetter', { headers: [] }],
    ['DeadLetter', { offset: { low: 1, high: 2 } }],
    ['DeadLetter', { partition: -5, offset: -5 }],
    ['Measurements', { secureBoot: { enabled: false, _enabled: 'enabled' }, dbxEventIndex: 0 }],
  ];
  for (const [name, message] of odd)
    assertSame(
      outcome(() => codec(name).encode(message as never)),
      outcome(() => referenceCodec(name).encode(message)),
      `encode ${name} ${String(JSON.stringify(message))}`,
    );
});

/** Field `id` with wire type `wire`, then `body`. */
function tagged(id: number, wire: number, body: number[]): number[] {
  const out: number[] = [];
  let tag = id * 8 + wire;
  while (tag > 127) {
    out.push((tag & 127) | 128);
    tag = Math.floor(tag / 128);
  }
  out.push(tag);
  return [...out, ...body];
}

test('hostile and mutated bytes decode or fail exactly as before', () => {
  const cases: [KafkaPayloadName, number[]][] = [
    ['Evidence', []],
    ['Evidence', [0x0a, 0x10, 0x61]],
    ['Evidence', [0x2a, 0x03, 0x0a, 0x05, 0x01, 0x01, 0x02, 0x03, 0x04]],
    ['Evidence', [0x08, 0x01]],
    ['Evidence', [0x00, 0x01]],
    ['Evidence', [0x0b]],
    ['Evidence', [0x0c]],
    ['Evidence', [0x0e]],
    ['Evidence', [0x0a]],
    ['Evidence', [0x98]],
    ['Evidence', [0x98, 0x06, 0x01]],
    ['DeadLetter', [0x10, ...Array(10).fill(0xff), 0x01]],
    ['DeadLetter', [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]], // 6-byte int32: protobufjs reads 10
    ['DeadLetter', [0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]], // 5-byte int32 above 32 bits
    ['DeadLetter', [0x10, ...Array(9).fill(0xff), 0x01]], // -1 as int32
    ['DeadLetter', [0x18, ...Array(9).fill(0xff), 0x01]], // -1 as int64
    ['DeadLetter', [0x18, ...Array(9).fill(0xff), 0x7f]], // 10th byte above bit 63
    ['DeadLetter', [0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]], // 2^63
    ['DeadLetter', [0x18, 0x80, 0x80, 0x80, 0x80, 0x10]], // 2^32
    ['DeadLetter', [0x18, 0x80, 0x00]], // non-canonical 0
    ['DeadLetter', [0x2a, 0x81, 0x80, 0x80, 0x80, 0x00, 0x00]], // 5-byte length 1
    ['DeadLetter', [0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]], // 6-byte length
    ['DeadLetter', [0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00]], // field 2^29-1 (5-byte tag)
    ['DeadLetter', [0xfa, 0xff, 0xff, 0xff, 0x7f, 0x00]], // tag above 32 bits
    ['DeadLetter', [0x32, 0x04, 0x0a, 0x02, 0x6b, 0x31]], // map entry without value
    ['DeadLetter', [0x32, 0x04, 0x12, 0x02, 0x76, 0x31]], // without key
    ['DeadLetter', [0x32, 0x08, 0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62, 0x18, 0x01]], // key twice, unknown field
    ['DeadLetter', [0x32, 0x0d, 0x0a, 0x09, ...Buffer.from('__proto__'), 0x12, 0x00]],
    ['DeadLetter', [0x32, 0x04, 0x0a, 0x02, 0xff, 0xfe]], // invalid UTF-8 key
    ['DeadLetter', [0x32, 0x02, 0x08, 0x01]],
    ['DeadLetter', [0x32, 0x02, 0x00, 0x00]],
    ['DeadLetter', [0x0a, 0x02, 0xc3, 0x28]], // invalid UTF-8
    ['DeadLetter', [0x22, 0x00, 0x2a, 0x00]], // empty bytes
    ['Measurements', [0x4a, 0x00]], // dbx_event_index as length-delimited
    ['Measurements', [0x48, 0x00, 0x48, 0x05]], // oneof member twice
    ['Measurements', [0x3a, 0x02, 0x18, 0x01, 0x3a, 0x02, 0x08, 0x00]], // message twice: replaced
    ['Measurements', [0x22, 0x04, 0x1a, 0x02, 0x03, 0x09]], // packed events_at_fault
    ['Measurements', [0x22, 0x04, 0x18, 0x03, 0x18, 0x09]], // unpacked events_at_fault
    ['Measurements', [0x22, 0x03, 0x1a, 0x01, 0x80, 0x01]], // packed run cut inside a varint
    ['Measurements', [0x22, 0x04, 0x1a, 0x02, 0x80, 0x01, 0x00]],
    ['Measurements', [0x22, 0x02, 0x1a, 0x00]],
    ['Measurements', [0x32, 0x05, 0x32, 0x03, 0x08, 0x63, 0x12]], // digest with unknown enum 99
    ['Measurements', [0x32, 0x04, 0x32, 0x02, 0x08, 0x0b]],
    ['Verdict', [0x20, 0x02]], // bool 2
    ['Verdict', [0x20, 0x80, 0x80, 0x80, 0x80, 0x01]], // bool from a 5-byte varint
    ['Verdict', [0x42, 0x00, 0x42, 0x01, 0x61]],
    ['SocEvent', [0x32, 0x02, 0x08, 0x01]], // time.seconds
    ['SocEvent', [0x32, 0x0b, 0x08, ...Array(9).fill(0xff), 0x01]], // negative seconds
  ];
  for (const [name, bytes] of cases) checkDecode(name, Buffer.from(bytes), 'case');

  // Every unknown wire type in every payload, well-formed or cut short.
  const unknown = [
    tagged(99, 0, [0x96, 0x01]),
    tagged(99, 0, [...Array(9).fill(0x80), 0x01]),
    tagged(99, 0, [...Array(10).fill(0x80), 0x01]),
    tagged(99, 1, [1, 2, 3, 4, 5, 6, 7, 8]),
    tagged(99, 1, [1, 2, 3]),
    tagged(99, 2, [0x02, 0x61, 0x62]),
    tagged(99, 2, [0x05, 0x61]),
    tagged(99, 3, [0x00]),
    tagged(99, 4, []),
    tagged(99, 5, [1, 2, 3, 4]),
    tagged(99, 5, [1, 2]),
    tagged(99, 6, [0]),
    tagged(99, 7, [0]),
    tagged(10, 0, [0x01]), // Evidence's reserved field 10
  ];
  for (const name of KAFKA_PAYLOAD_NAMES) {
    const wire = [...referenceCodec(name).encode(samples[name])];
    for (const u of unknown) {
      checkDecode(name, Buffer.from([...u, ...wire]), 'unknown first');
      checkDecode(name, Buffer.from([...wire, ...u]), 'unknown last');
    }
  }

  // Random mutations of every sample: byte flips, truncations, insertions, deletions.
  for (const name of KAFKA_PAYLOAD_NAMES) {
    const sample = name === 'Evidence' ? { ...evidence, eventLog: Buffer.alloc(300, 0xee) } : samples[name];
    const valid = referenceCodec(name).encode(sample);
    for (let i = 0; i < 1500; i++) {
      let b = [...valid];
      for (let j = 1 + rnd(3); j > 0; j--) {
        const at = rnd(b.length);
        switch (rnd(4)) {
          case 0:
            b[at] = rnd(256);
            break;
          case 1:
            b.splice(at, 0, pick([0x80, 0xff, 0x00, 0x01, rnd(256)]));
            break;
          case 2:
            b.splice(at, 1);
            break;
          default:
            b[at] = (b[at]! ^ (1 << rnd(8))) & 0xff;
        }
      }
      if (rnd(3) === 0) b = b.slice(0, rnd(b.length + 1));
      checkDecode(name, Buffer.from(b), `mutation #${i}`);
    }
  }
});

test('size caps are checked before the fast path', () => {
  const wire = referenceCodec('Evidence').encode(evidence);
  for (const maxBytes of [0, 1000, wire.length - 1, wire.length]) {
    assertSame(
      outcome(() => codec('Evidence').decode(wire, { maxBytes })),
      outcome(() => referenceCodec('Evidence').decode(wire, { maxBytes })),
      `maxBytes ${maxBytes}`,
    );
  }
});
