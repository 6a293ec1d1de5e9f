import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import {
  codec,
  decodeCertificateEvent,
  decodeDeadLetter,
  decodeEvidence,
  decodeMeasurements,
  decodeSocEvent,
  decodeVerdict,
  encodeCertificateEvent,
  encodeDeadLetter,
  encodeEvidence,
  encodeMeasurements,
  encodeSocEvent,
  encodeVerdict,
  hostgateRoot,
  KAFKA_PAYLOAD_NAMES,
  ProtoCodecError,
} from '../src/index.ts';
import {
  certificateEvent,
  deadLetter,
  evidence,
  measurements,
  samples,
  socEvent,
  verdict,
} from './samples.ts';

// A round trip only proves something for the fields a sample sets: every field of every message
// in the tree must hold a non-default value at least once.
function assertEverySet(type: protobuf.Type, value: unknown, where: string): void {
  const seen = new Map<string, boolean>();
  const mark = (at: string, ok: boolean) => seen.set(at, (seen.get(at) ?? false) || ok);
  const walk = (t: protobuf.Type, v: unknown, path: string): void => {
    assert.equal(typeof v, 'object', path);
    const obj = v as Record<string, unknown>;
    for (const field of t.fieldsArray) {
      const x = obj[field.name];
      const at = `${path}.${field.name}`;
      if (field instanceof protobuf.MapField) {
        mark(at, x !== null && typeof x === 'object' && Object.keys(x).length > 0);
        continue;
      }
      const items = field.repeated ? (Array.isArray(x) ? x : []) : [x];
      mark(at, false);
      for (const item of items) {
        if (field.resolvedType instanceof protobuf.Type) {
          mark(at, item !== null && item !== undefined);
          if (item !== null && item !== undefined) walk(field.resolvedType, item, at);
        } else if (field.resolvedType instanceof protobuf.Enum)
          mark(at, !String(item).endsWith('UNSPECIFIED'));
        else if (Buffer.isBuffer(item)) mark(at, item.length > 0);
        else mark(at, item !== '' && item !== 0 && item !== '0' && item !== false && item != null);
      }
    }
  };
  walk(type, value, where);
  const unset = [...seen].filter(([, ok]) => !ok).map(([at]) => at);
  assert.deepEqual(unset, [], `fields never set to a non-default value in ${where}`);
}

test('every Kafka payload round-trips with every field set', () => {
  assert.deepEqual([...KAFKA_PAYLOAD_NAMES].sort(), Object.keys(samples).sort());
  for (const name of KAFKA_PAYLOAD_NAMES) {
    const sample = samples[name];
    assertEverySet(hostgateRoot().lookupType(`hostgate.v1.${name}`), sample, name);
    const c = codec(name);
    const wire = c.encode(sample as never);
    assert.ok(Buffer.isBuffer(wire));
    assert.deepEqual(c.decode(wire), sample, name);
    // A plain Uint8Array (not a Buffer) decodes the same, with Buffer bytes fields.
    assert.deepEqual(c.decode(new Uint8Array(wire)), sample, `${name} from Uint8Array`);
  }
});

test('the named helpers are the generic codecs', () => {
  assert.deepEqual(decodeEvidence(encodeEvidence(evidence)), evidence);
  assert.deepEqual(decodeMeasurements(encodeMeasurements(measurements)), measurements);
  assert.deepEqual(decodeVerdict(encodeVerdict(verdict)), verdict);
  assert.deepEqual(decodeCertificateEvent(encodeCertificateEvent(certificateEvent)), certificateEvent);
  assert.deepEqual(decodeSocEvent(encodeSocEvent(socEvent)), socEvent);
  assert.deepEqual(decodeDeadLetter(encodeDeadLetter(deadLetter)), deadLetter);
});

test('wire bytes match the protobuf encoding computed by hand', () => {
  // field 1, wire type 2 (0x0a), length 1, 'a'
  assert.deepEqual([...encodeEvidence({ attestationId: 'a' })], [0x0a, 0x01, 0x61]);
  // DeadLetter.offset is field 3 varint (0x18); 300 = 0xac 0x02. Accepts a number or a string.
  assert.deepEqual([...encodeDeadLetter({ offset: 300 })], [0x18, 0xac, 0x02]);
  assert.deepEqual([...encodeDeadLetter({ offset: '300' })], [0x18, 0xac, 0x02]);
  // Verdict.pass is field 4 varint (0x20).
  assert.deepEqual([...encodeVerdict({ pass: true })], [0x20, 0x01]);
  // Refusal.code inside CertificateEvent.refusals (field 7): NO_POLICY is 60 (0x3c).
  assert.deepEqual(
    [...encodeCertificateEvent({ refusals: [{ code: 'NO_POLICY' }] })],
    [0x3a, 0x02, 0x08, 0x3c],
  );
});

test('unset fields decode to defaults, unknown fields are skipped', () => {
  const d = decodeEvidence(Buffer.from([0x98, 0x06, 0x01])); // field 99, varint 1
  assert.equal(d.attestationId, '');
  assert.equal(d.quote, null);
  assert.deepEqual(d.nonce, Buffer.alloc(0));
  const m = decodeMeasurements(Buffer.alloc(0));
  assert.deepEqual(m.events, []);
  assert.equal(m.dbxEventIndex, undefined);
  assert.equal(m._dbxEventIndex, undefined);
});

function decodeError(
  bytes: number[] | Buffer,
  decode: (b: Uint8Array) => unknown = decodeEvidence,
): ProtoCodecError {
  try {
    decode(Buffer.from(bytes));
  } catch (err) {
    assert.ok(err instanceof ProtoCodecError, `not a ProtoCodecError: ${String(err)}`);
    return err;
  }
  assert.fail(`decoded ${Buffer.from(bytes).toString('hex')}`);
}

test('hostile bytes are refused with a code and the offset', () => {
  // attestation_id claims 16 bytes, 1 is left (protobufjs alone would clamp the string)
  let e = decodeError([0x0a, 0x10, 0x61]);
  assert.equal(e.code, 'PROTO_DECODE');
  assert.equal(e.offset, 1);
  // quote (field 5) is 3 bytes long but its attest (field 1) claims 5: runs past its message
  e = decodeError([0x2a, 0x03, 0x0a, 0x05, 0x01, 0x01, 0x02, 0x03, 0x04]);
  assert.equal(e.offset, 3);
  // attestation_id (string) sent as a varint
  e = decodeError([0x08, 0x01]);
  assert.match(e.message, /wire type 0/);
  assert.equal(e.offset, 0);
  // field number 0
  assert.equal(decodeError([0x00, 0x01]).offset, 0);
  // group wire type
  assert.match(decodeError([0x0b]).message, /wire type 3/);
  // an 11-byte varint in DeadLetter.partition
  e = decodeError([0x10, ...Array(10).fill(0xff), 0x01], decodeDeadLetter);
  assert.equal(e.offset, 1);
  // truncated fixed-size and varint data
  assert.equal(decodeError([0x0a]).offset, 1);
  assert.equal(decodeError([0x98]).offset, 0);
  // a map entry (Refusal.details) whose key runs past the entry
  e = decodeError([0x3a, 0x06, 0x1a, 0x04, 0x0a, 0x05, 0x61, 0x61], decodeCertificateEvent);
  assert.equal(e.code, 'PROTO_DECODE');
  assert.equal(e.offset, 5);
  // a map entry whose string key is sent as a varint
  e = decodeError([0x3a, 0x04, 0x1a, 0x02, 0x08, 0x01], decodeCertificateEvent);
  assert.match(e.message, /wire type 0/);
  assert.equal(e.offset, 4);
  // the same entry well-formed decodes
  assert.deepEqual(
    decodeCertificateEvent(Buffer.from([0x3a, 0x07, 0x1a, 0x05, 0x0a, 0x01, 0x6b, 0x12, 0x00])).refusals[0]
      ?.details,
    { k: '' },
  );
});

test('oversized payloads are refused before decoding', () => {
  const e = decodeError(Buffer.alloc(16 * 1024 * 1024 + 1));
  assert.equal(e.code, 'PROTO_TOO_LARGE');
  assert.throws(
    () => codec('Evidence').decode(encodeEvidence(evidence), { maxBytes: 1000 }),
    (err: unknown) => err instanceof ProtoCodecError && err.code === 'PROTO_TOO_LARGE' && err.offset === 1000,
  );
});

test('mutated payloads decode or fail with ProtoCodecError, never anything else', () => {
  const valid = encodeMeasurements(measurements);
  let seed = 0x9e3779b9;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(valid);
    const n = 1 + (next() % 4);
    for (let j = 0; j < n; j++) b[next() % b.length] = next() & 0xff;
    const cut = i % 3 === 0 ? b.subarray(0, next() % b.length) : b;
    try {
      decodeMeasurements(cut);
    } catch (err) {
      assert.ok(err instanceof ProtoCodecError, String(err));
      assert.ok(err.offset >= 0 && err.offset <= cut.length);
      refused++;
    }
  }
  assert.ok(refused > 100, `only ${refused} of 3000 mutations refused`);
});

test('encoding something that is not the message is a ProtoCodecError', () => {
  assert.throws(
    () => encodeEvidence(null as never),
    (e: unknown) => e instanceof ProtoCodecError && e.code === 'PROTO_ENCODE',
  );
  assert.throws(
    () => encodeEvidence({ quote: 'not an object' } as never),
    (e: unknown) =>
      e instanceof ProtoCodecError && e.code === 'PROTO_ENCODE' && e.typeName === 'hostgate.v1.Evidence',
  );
});
