// The public surface other packages rely on: size limits and every DLQ header name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as bus from '../src/index.ts';
import * as kafka from '../src/kafka-bus.ts';

test('index re-exports the Kafka size limits and the dropped-value DLQ header', () => {
  assert.equal(bus.DEFAULT_MAX_MESSAGE_BYTES, kafka.DEFAULT_MAX_MESSAGE_BYTES);
  assert.equal(bus.RECORD_OVERHEAD_BYTES, kafka.RECORD_OVERHEAD_BYTES);
  assert.equal(bus.DLQ_VALUE_DROPPED_HEADER, kafka.DLQ_VALUE_DROPPED_HEADER);
  // DLQ_HEADERS lists every header a dead-lettered message may carry, the dropped-value one included.
  assert.equal(bus.DLQ_HEADERS.valueDropped, kafka.DLQ_VALUE_DROPPED_HEADER);
  const names = Object.values(bus.DLQ_HEADERS);
  assert.equal(new Set(names).size, names.length);
  for (const n of names) assert.match(n, /^hostgate-dlq-[a-z-]+$/);
});
