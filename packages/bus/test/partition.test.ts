import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compatibilityPartitioner } from '@platformatic/kafka';
import { murmur2, partitionForKey } from '../src/partition.ts';

// Computed with Java: org.apache.kafka.common.utils.Utils.murmur2 and toPositive(h) % 7 (kafka-clients 4.1.2).
const JAVA_VECTORS: Array<[string, number, number]> = [
  ['21', -973932308, 3],
  ['foobar', -790332482, 0],
  ['a-little-bit-long-string', -985981536, 1],
  ['a-little-bit-longer-string', -1486304829, 0],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971, 3],
  ['abc', 479470107, 4],
  ['host-0001', 1923175787, 1],
  ['', 275646681, 2],
  ['x', 2121525046, 4],
  ['h\u00e9te', -936996733, 1],
];

test('murmur2 and the key partition match the Java client', () => {
  for (const [key, hash, partitionOf7] of JAVA_VECTORS) {
    assert.equal(murmur2(new TextEncoder().encode(key)), hash, key);
    assert.equal(partitionForKey(key, 7), partitionOf7, key);
  }
});

test('partitionForKey agrees with @platformatic/kafka compatibilityPartitioner for many keys', () => {
  for (let i = 0; i < 2000; i++) {
    const key = `host-${i.toString(36)}-${'z'.repeat(i % 9)}`;
    const expected = compatibilityPartitioner({ topic: 't' }, Buffer.from(key)) % 12;
    assert.equal(partitionForKey(key, 12), expected, key);
  }
});
