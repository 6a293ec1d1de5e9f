// The harness itself: real Kafka, the store, four services SERVING on their own ports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseUrl } from '@hostgate/testkit/postgres';
import { healthOf, kafkaSkipReason, SERVICES, startKafka, startPipeline } from '../src/harness.ts';

const kafkaSkip = kafkaSkipReason();

test('four services start on Kafka with their own stores and report SERVING', {
  skip: kafkaSkip,
  timeout: 120_000,
}, async (t) => {
  const kafka = await startKafka();
  t.after(() => kafka.stop());
  const pipeline = await startPipeline({ kafka });
  t.after(() => pipeline.stop());
  assert.equal(pipeline.bus, 'kafka');
  assert.equal(pipeline.store, databaseUrl() === undefined ? 'pglite' : 'postgres');
  const ports = new Set(SERVICES.map((s) => pipeline.addresses[s]));
  assert.equal(ports.size, 4, 'each service listens on its own port');
  assert.deepEqual(await healthOf(pipeline.addresses), {
    'health-cert-issuer': 'SERVING',
    'policy-evaluator': 'SERVING',
    'eventlog-replayer': 'SERVING',
    'quote-collector': 'SERVING',
  });
  await pipeline.stop();
  const after = await healthOf(pipeline.addresses);
  for (const s of SERVICES) assert.equal(after[s], 'UNREACHABLE', `${s} stopped`);
});
