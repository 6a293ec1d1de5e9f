import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Consumer } from '@platformatic/kafka';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { InProcessBus } from '../src/in-process-bus.ts';
import { KafkaBus } from '../src/kafka-bus.ts';
import { type Bus, BusError, type BusMessage, DLQ_HEADERS, type SubscribeOptions } from '../src/types.ts';

/**
 * A handler whose last attempt fails while a draining bus.close() waits for it: the dead-letter
 * write must still go through, so close() neither stalls on its drain bound nor commits past a
 * message that is not dead-lettered.
 */

const skip = kafkaMissing();
const enc = new TextEncoder();
const dec = new TextDecoder();
/** Far below the 30 s drain bound the bus gives a stuck dead-letter write. */
const CLOSE_LIMIT_MS = 5000;

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

interface InFlight {
  /** The delivery the handler is holding, once it started. */
  started: Promise<BusMessage>;
  /** Lets the held delivery fail. */
  fail(): void;
  errors: unknown[];
  commits: Array<{ partition: number; offset: bigint }>;
}

/** Subscribes a handler that holds its one delivery until fail(), then throws on its only attempt. */
async function subscribeFailing(
  bus: Bus,
  options: Pick<SubscribeOptions, 'topic' | 'group'>,
): Promise<InFlight> {
  let onStart!: (m: BusMessage) => void;
  const started = new Promise<BusMessage>((resolve) => (onStart = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const errors: unknown[] = [];
  const commits: Array<{ partition: number; offset: bigint }> = [];
  await bus.subscribe({
    ...options,
    maxAttempts: 1,
    handler: async (m) => {
      onStart(m);
      await released;
      throw Object.assign(new TypeError('quote signature does not verify'), { code: 'QUOTE_SIGNATURE' });
    },
    onError: (error) => void errors.push(error),
    onCommit: (c) => void commits.push({ partition: c.partition, offset: c.offset }),
  });
  return { started, fail: release, errors, commits };
}

function isClosedError(error: unknown): boolean {
  assert.ok(error instanceof BusError);
  assert.equal(error.code, 'BUS_CLOSED');
  return true;
}

/**
 * Starts a draining close while the handler holds its message, checks subscribe() is refused from
 * then on, lets the handler fail, and returns how long close() took; publish() is refused once
 * close() is done (it stays open during the drain: kafka-close-publish.test.ts).
 */
async function closeWhileFailing(bus: Bus, inFlight: InFlight, topic: string): Promise<number> {
  await inFlight.started;
  const t0 = Date.now();
  const closing = bus.close();
  await assert.rejects(
    bus.subscribe({ topic, group: 'late', handler: async () => undefined }),
    isClosedError,
  );
  // Let close() reach its drain before the last attempt fails.
  await delay(200);
  inFlight.fail();
  await closing;
  const closeMs = Date.now() - t0;
  await assert.rejects(bus.publish(topic, 'host-2', enc.encode('late')), isClosedError);
  return closeMs;
}

function assertDeadLetter(d: BusMessage, message: BusMessage, topic: string, group: string): void {
  assert.equal(dec.decode(d.value), 'forged quote');
  assert.equal(d.key, 'host-9');
  assert.equal(d.headers['x-evidence-id'], 'ev-42', 'the original headers travel with it');
  assert.equal(d.headers[DLQ_HEADERS.reason], 'quote signature does not verify');
  assert.equal(d.headers[DLQ_HEADERS.errorName], 'TypeError');
  assert.equal(d.headers[DLQ_HEADERS.errorCode], 'QUOTE_SIGNATURE');
  assert.equal(d.headers[DLQ_HEADERS.attempts], '1');
  assert.equal(d.headers[DLQ_HEADERS.topic], topic);
  assert.equal(d.headers[DLQ_HEADERS.partition], String(message.partition));
  assert.equal(d.headers[DLQ_HEADERS.offset], message.offset.toString());
  assert.equal(d.headers[DLQ_HEADERS.group], group);
}

function assertNoClosedErrors(errors: unknown[]): void {
  const refused = errors.filter((e) => e instanceof BusError && e.code === 'BUS_CLOSED');
  assert.equal(refused.length, 0, 'no dead-letter write refused because the bus was closing');
}

describe('KafkaBus: a draining close() while a last attempt fails', { skip, timeout: 180_000 }, () => {
  let kafka: KafkaBroker;
  const buses: KafkaBus[] = [];
  const newBus = (clientId: string) => {
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId,
      createTopics: { partitions: 3, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
    });
    buses.push(bus);
    return bus;
  };

  before(async () => {
    kafka = await startKafka();
  });
  after(async () => {
    for (const bus of buses) await bus.close().catch(() => undefined);
    await kafka?.stop();
  });

  test('dead-letters the message, commits past it and closes without waiting out the drain bound', {
    timeout: 90_000,
  }, async () => {
    const topic = 'hostgate.close-dlq.v1';
    const group = 'verifier';
    const publisher = newBus('publisher');
    const bus = newBus('closing');
    const inFlight = await subscribeFailing(bus, { topic, group });
    await publisher.publish(topic, 'host-9', enc.encode('forged quote'), { 'x-evidence-id': 'ev-42' });
    const message = await inFlight.started;

    const closeMs = await closeWhileFailing(bus, inFlight, topic);
    console.log(`# KafkaBus close() with a dead-letter write in its drain: ${closeMs} ms`);
    assert.ok(closeMs < CLOSE_LIMIT_MS, `close() took ${closeMs} ms`);
    assertNoClosedErrors(inFlight.errors);

    // Read by another bus: the dead letter is on the broker, not just queued in the closed one.
    const dead: BusMessage[] = [];
    await publisher.subscribe({
      topic: `${topic}.dlq`,
      group: 'ops',
      handler: async (m) => void dead.push(m),
    });
    await until('the dead letter', () => dead.length >= 1);
    assert.equal(dead.length, 1);
    assertDeadLetter(dead[0]!, message, topic, group);

    // The group moved past it: a plain client reads the committed offset.
    const probe = new Consumer({ clientId: 'probe', groupId: group, bootstrapBrokers: [kafka.bootstrap] });
    try {
      const committed = await probe.listCommittedOffsets({
        topics: [{ topic, partitions: [message.partition] }],
      });
      assert.equal(
        committed.get(topic)?.[message.partition],
        message.offset + 1n,
        `committed: ${committed.get(topic)}`,
      );
    } finally {
      await probe.close();
    }
  });
});

test('InProcessBus: a draining close() while a last attempt fails dead-letters and commits past it', async () => {
  const topic = 'hostgate.close-dlq.v1';
  const group = 'verifier';
  const bus = new InProcessBus({ partitions: 3 });
  const inFlight = await subscribeFailing(bus, { topic, group });
  await bus.publish(topic, 'host-9', enc.encode('forged quote'), { 'x-evidence-id': 'ev-42' });
  const message = await inFlight.started;

  const closeMs = await closeWhileFailing(bus, inFlight, topic);
  assert.ok(closeMs < CLOSE_LIMIT_MS, `close() took ${closeMs} ms`);
  assertNoClosedErrors(inFlight.errors);
  // Its dead-letter append cannot be refused (InProcessBus writes the log directly); the commit
  // past it is the sign it happened, since a closed InProcessBus offers no way to read it.
  assert.deepEqual(inFlight.commits, [{ partition: message.partition, offset: message.offset + 1n }]);
});
