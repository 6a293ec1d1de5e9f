import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Consumer } from '@platformatic/kafka';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { InProcessBus } from '../src/in-process-bus.ts';
import { KafkaBus, SERVICE_COMMIT_INTERVAL_MS, SERVICE_HANDLER_CONCURRENCY } from '../src/kafka-bus.ts';
import { type Bus, BusError, type BusMessage, type SubscribeOptions } from '../src/types.ts';

/**
 * A handler that is mid-work when a draining bus.close() starts, and publishes its output after
 * that: the publish must go through (publish() stays open until every subscription drained), so
 * the handler succeeds on its first attempt, its input is committed, and close() does not wait
 * out its drain bound (30 s) retrying a handler whose publish is refused.
 */

const skip = kafkaMissing();
const enc = new TextEncoder();
const dec = new TextDecoder();
/** Far below the 30 s drain bound. */
const CLOSE_LIMIT_MS = 5000;

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

function isClosedError(error: unknown): boolean {
  assert.ok(error instanceof BusError, `expected a BusError, got ${String(error)}`);
  assert.equal(error.code, 'BUS_CLOSED');
  return true;
}

interface Forwarding {
  /** The first delivery the handler held, once it started. */
  started: Promise<BusMessage>;
  /** Lets the held delivery go on to publish its output. */
  finish(): void;
  /** Every attempt the handler saw (offset and attempt number). */
  attempts: Array<{ offset: bigint; attempt: number }>;
  /** Outputs whose publish() resolved. */
  published: string[];
  errors: unknown[];
  commits: Array<{ partition: number; offset: bigint }>;
}

/**
 * Subscribes a handler that holds its delivery until finish(), then publishes the value to
 * `outTopic` with the bus it was given, as a service's handler does with its result.
 */
async function subscribeForwarding(
  bus: Bus,
  options: Pick<SubscribeOptions, 'topic' | 'group'>,
  outTopic: string,
): Promise<Forwarding> {
  let onStart!: (m: BusMessage) => void;
  const started = new Promise<BusMessage>((resolve) => (onStart = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const forwarding: Forwarding = {
    started,
    finish: release,
    attempts: [],
    published: [],
    errors: [],
    commits: [],
  };
  await bus.subscribe({
    ...options,
    // On the code this test guards against, a refused publish is retried until the drain bound.
    maxAttempts: 50,
    retryDelayMs: () => 500,
    handler: async (m) => {
      forwarding.attempts.push({ offset: m.offset, attempt: m.attempt });
      onStart(m);
      await released;
      const output = `verdict for ${dec.decode(m.value)}`;
      await bus.publish(outTopic, m.key, enc.encode(output), { 'x-input-offset': m.offset.toString() });
      forwarding.published.push(output);
    },
    onError: (error) => void forwarding.errors.push(error),
    onCommit: (c) => void forwarding.commits.push({ partition: c.partition, offset: c.offset }),
  });
  return forwarding;
}

/**
 * Starts a draining close while the handler holds its message, checks subscribe() is refused
 * from then on, lets the handler publish, and returns how long close() took.
 */
async function closeWhileForwarding(bus: Bus, forwarding: Forwarding, topic: string): Promise<number> {
  await forwarding.started;
  const t0 = Date.now();
  const closing = bus.close();
  await assert.rejects(
    bus.subscribe({ topic, group: 'late', handler: async () => undefined }),
    isClosedError,
    'subscribe() is refused from the start of close()',
  );
  // Let close() reach its drain before the handler publishes.
  await delay(200);
  forwarding.finish();
  await closing;
  return Date.now() - t0;
}

/** Once close() is done, publish() is refused, and close() again returns the same promise. */
async function assertClosed(bus: Bus, topic: string): Promise<void> {
  await assert.rejects(bus.publish(topic, 'host-2', enc.encode('late')), isClosedError);
  assert.equal(bus.close(), bus.close(), 'close() again returns the same promise');
}

function assertHandledOnce(forwarding: Forwarding, message: BusMessage): void {
  assert.deepEqual(forwarding.errors, [], 'no handler failure, no refused publish');
  assert.deepEqual(forwarding.attempts, [{ offset: message.offset, attempt: 1 }], 'one attempt, no retry');
  assert.deepEqual(forwarding.published, [`verdict for ${dec.decode(message.value)}`]);
}

describe('KafkaBus: a handler publishes its output during a draining close()', {
  skip,
  timeout: 180_000,
}, () => {
  let kafka: KafkaBroker;
  const buses: KafkaBus[] = [];
  const newBus = (clientId: string) => {
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId,
      createTopics: { partitions: 3, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      // As the services run it: the input's commit is held back and flushed by the close.
      handlerConcurrency: SERVICE_HANDLER_CONCURRENCY,
      commitIntervalMs: SERVICE_COMMIT_INTERVAL_MS,
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

  test('the output is on its topic, the input is committed, close() well under the drain bound', {
    timeout: 120_000,
  }, async () => {
    const topic = 'hostgate.close-publish.in.v1';
    const outTopic = 'hostgate.close-publish.out.v1';
    const group = 'issuer';
    const publisher = newBus('publisher');
    const bus = newBus('closing');
    // The output topic exists before the drain: the publish in it is then one produce request.
    await bus.ensureTopics([outTopic]);
    const forwarding = await subscribeForwarding(bus, { topic, group }, outTopic);
    await publisher.publish(topic, 'host-7', enc.encode('evidence 1'));
    const message = await forwarding.started;

    const closeMs = await closeWhileForwarding(bus, forwarding, topic);
    console.log(`# KafkaBus close() with a publish in its drain: ${closeMs} ms`);
    assert.ok(closeMs < CLOSE_LIMIT_MS, `close() took ${closeMs} ms`);
    assertHandledOnce(forwarding, message);
    await assertClosed(bus, topic);

    // Read by another bus: the output is on the broker, not just queued in the closed one.
    const outputs: BusMessage[] = [];
    await publisher.subscribe({ topic: outTopic, group: 'ops', handler: async (m) => void outputs.push(m) });
    await until('the output', () => outputs.length >= 1);
    assert.equal(outputs.length, 1);
    assert.equal(dec.decode(outputs[0]!.value), 'verdict for evidence 1');
    assert.equal(outputs[0]!.key, 'host-7');
    assert.equal(outputs[0]!.headers['x-input-offset'], message.offset.toString());

    // The group moved past the input: a plain client reads the committed offset…
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
    // …and a new member of the group gets only what came after it: a marker on the same key
    // (same partition, so the input, were it uncommitted, would come first).
    await publisher.publish(topic, 'host-7', enc.encode('marker'));
    const next: BusMessage[] = [];
    await publisher.subscribe({ topic, group, handler: async (m) => void next.push(m) });
    await until('the marker', () => next.length >= 1);
    await delay(500);
    assert.deepEqual(
      next.map((m) => dec.decode(m.value)),
      ['marker'],
      'the input is not delivered again',
    );
  });
});

test('InProcessBus: a handler publishes its output during a draining close()', async () => {
  const topic = 'hostgate.close-publish.in.v1';
  const outTopic = 'hostgate.close-publish.out.v1';
  const bus = new InProcessBus({ partitions: 3 });
  const forwarding = await subscribeForwarding(bus, { topic, group: 'issuer' }, outTopic);
  await bus.publish(topic, 'host-7', enc.encode('evidence 1'));
  const message = await forwarding.started;

  const closeMs = await closeWhileForwarding(bus, forwarding, topic);
  assert.ok(closeMs < CLOSE_LIMIT_MS, `close() took ${closeMs} ms`);
  // publish() resolved (the output is in its log) and the handler succeeded on its first attempt;
  // a closed InProcessBus offers no way to read the log, the commit past the input is the proof
  // that the group will not see it again.
  assertHandledOnce(forwarding, message);
  assert.deepEqual(forwarding.commits, [{ partition: message.partition, offset: message.offset + 1n }]);
  await assertClosed(bus, topic);
});
