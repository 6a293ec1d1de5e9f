// The validated measured content is reused only for the same wire bytes, with each record's own ids,
// which the policy library still checks; the cache is bounded; odd wire bytes bypass it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyValidationError } from '@hostgate/policy';
import { decodeMeasurements, encodeMeasurements, type Measurements } from '@hostgate/protos';
import { MeasurementsCache, measuredContentKey, measurementsForPolicy } from '../src/index.ts';
import { measurementsOf } from './harness.ts';

function record(m: Measurements) {
  const bytes = encodeMeasurements(m);
  return { bytes, m: decodeMeasurements(bytes) };
}

test('same measured content: the validated form is reused with the record ids and equals a fresh conversion', () => {
  const cache = new MeasurementsCache();
  const a = record(measurementsOf('att-1', 'host-1').measurements);
  const b = record({
    ...measurementsOf('att-2', 'host-2').measurements,
    replayedAt: { seconds: 99, nanos: 0 },
  });
  const off = record(measurementsOf('att-3', 'host-1', { secureBoot: false }).measurements);
  assert.equal(measuredContentKey(a.bytes)?.key, measuredContentKey(b.bytes)?.key);
  assert.notEqual(measuredContentKey(a.bytes)?.key, measuredContentKey(off.bytes)?.key);
  const first = cache.of(a.m, a.bytes);
  const second = cache.of(b.m, b.bytes);
  assert.deepEqual([cache.hits, cache.misses], [1, 1]);
  assert.deepEqual(first, measurementsForPolicy(a.m));
  assert.deepEqual(second, measurementsForPolicy(b.m));
  assert.deepEqual([second.hostId, second.attestationId], ['host-2', 'att-2']);
  assert.ok(Object.isFrozen(second) && Object.isFrozen(second.events));
  assert.equal(second.events, first.events);
  // Other content is converted on its own.
  const third = cache.of(off.m, off.bytes);
  assert.deepEqual(third, measurementsForPolicy(off.m));
  assert.equal(third.secureBoot.enabled, false);
  assert.deepEqual([cache.hits, cache.misses], [1, 2]);
});

test('ids are still validated on a hit; invalid content is never kept', () => {
  const cache = new MeasurementsCache();
  const a = record(measurementsOf('att-1', 'host-1').measurements);
  cache.of(a.m, a.bytes);
  const long = record({ ...measurementsOf('x'.repeat(5000), 'host-1').measurements });
  assert.equal(measuredContentKey(long.bytes)?.key, measuredContentKey(a.bytes)?.key);
  assert.throws(() => cache.of(long.m, long.bytes), PolicyValidationError);
  assert.throws(() => measurementsForPolicy(long.m), PolicyValidationError);
  // A digest of the wrong length fails validation and is not cached: it fails again.
  const bad = measurementsOf('att-b', 'host-b').measurements;
  bad.pcrBanks![1]!.pcrs![0]!.digest = Buffer.alloc(5);
  const r = record(bad);
  assert.throws(() => cache.of(r.m, r.bytes), PolicyValidationError);
  assert.throws(() => cache.of(r.m, r.bytes), PolicyValidationError);
  assert.equal(cache.size, 1);
});

test('the cache is bounded by entries and by bytes', () => {
  const cache = new MeasurementsCache({ maxEntries: 2 });
  const contents = Array.from({ length: 4 }, (_, i) =>
    record(measurementsOf(`att-${i}`, 'h', { shimDigest: Buffer.alloc(32, i + 1) }).measurements),
  );
  for (const c of contents) cache.of(c.m, c.bytes);
  assert.equal(cache.size, 2);
  cache.of(contents[3]!.m, contents[3]!.bytes);
  cache.of(contents[0]!.m, contents[0]!.bytes);
  assert.deepEqual([cache.hits, cache.misses], [1, 5]);
  const size = measuredContentKey(contents[0]!.bytes)!.size;
  const small = new MeasurementsCache({ maxBytes: size * 2 + 1 });
  for (const c of contents) small.of(c.m, c.bytes);
  assert.equal(small.size, 2);
  const none = new MeasurementsCache({ maxBytes: size - 1 });
  none.of(contents[0]!.m, contents[0]!.bytes);
  assert.equal(none.size, 0);
  assert.throws(() => new MeasurementsCache({ maxEntries: 0 }), RangeError);
});

test('wire bytes that are not plain protobuf get no key (judged without the cache)', () => {
  const { bytes } = record(measurementsOf('att-1', 'host-1').measurements);
  assert.ok(measuredContentKey(bytes));
  for (const odd of [
    bytes.subarray(0, bytes.length - 1), // truncated
    Buffer.from([0x2a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // length past the end
    Buffer.from([0x2a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), // varint too long
    Buffer.from([0x2b]), // group
    Buffer.from([0x02, 0x00]), // field 0
    Buffer.from([0x29, 1, 2, 3]), // fixed64 cut short
  ])
    assert.equal(measuredContentKey(odd), undefined);
  // Content fields anywhere, ids and unknown fields around them: only the content counts.
  const field = (n: number, payload: number[]) => [(n << 3) | 2, payload.length, ...payload];
  const x = Buffer.from([
    ...field(1, [1]),
    ...field(5, [7]),
    ...field(2, [2]),
    ...field(6, [8]),
    ...field(14, [3]),
  ]);
  const y = Buffer.from([...field(5, [7]), ...field(1, [9]), ...field(6, [8]), ...field(15, [4])]);
  assert.equal(measuredContentKey(x)?.key, measuredContentKey(y)?.key);
  assert.equal(measuredContentKey(x)?.size, 6);
  const z = Buffer.from([...field(5, [7]), ...field(6, [9])]);
  assert.notEqual(measuredContentKey(x)?.key, measuredContentKey(z)?.key);
  assert.ok(measuredContentKey(new Uint8Array(0)));
});
