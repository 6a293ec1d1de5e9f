import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Admin, ConfigResourceTypes, Producer } from '@platformatic/kafka';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { freePort } from '@hostgate/testkit/ports';
import { DLQ_VALUE_DROPPED_HEADER, KafkaBus } from '../src/kafka-bus.ts';
import { type BusMessage, DLQ_HEADERS } from '../src/types.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
const skip = kafkaMissing();

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    assert.equal((error as { code?: unknown }).code, code, String(error));
    return true;
  });
  return caught;
}

/** True when the client's (nested) error carries this Kafka protocol error code. */
function hasApiCode(error: unknown, code: number, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 6) return false;
  const { apiCode, errors, cause } = error as { apiCode?: unknown; errors?: unknown; cause?: unknown };
  if (apiCode === code) return true;
  if (Array.isArray(errors) && errors.some((inner) => hasApiCode(inner, code, depth + 1))) return true;
  return hasApiCode(cause, code, depth + 1);
}

describe('KafkaBus message size, without a broker', () => {
  test('an over-limit value is refused at once, before any connection', async () => {
    // Nothing listens there: any broker round trip would hang or fail with another error.
    const port = await freePort();
    const bus = new KafkaBus({ brokers: [`127.0.0.1:${port}`], maxMessageBytes: 4 * KiB });
    try {
      const started = performance.now();
      await rejectsWithCode(bus.publish('t', 'host-1', new Uint8Array(4 * KiB + 1)), 'BUS_MESSAGE_TOO_LARGE');
      // The key and headers count too: a value under the limit with 70 KiB of headers is over it.
      await rejectsWithCode(
        bus.publish('t', 'host-1', new Uint8Array(16), { big: 'x'.repeat(70 * KiB) }),
        'BUS_MESSAGE_TOO_LARGE',
      );
      assert.ok(performance.now() - started < 1000, 'refused without waiting on the network');
    } finally {
      await bus.close();
    }
  });

  test('the default limit is 16 MiB of value', async () => {
    const port = await freePort();
    const bus = new KafkaBus({ brokers: [`127.0.0.1:${port}`] });
    try {
      assert.equal(bus.maxMessageBytes, 16 * MiB);
      await rejectsWithCode(
        bus.publish('t', 'host-1', new Uint8Array(16 * MiB + 1)),
        'BUS_MESSAGE_TOO_LARGE',
      );
    } finally {
      await bus.close();
    }
  });

  test('a limit that is not a positive integer within 64 MiB is a configuration error', () => {
    for (const maxMessageBytes of [0, -1, 1.5, Number.NaN, 64 * MiB + 1]) {
      assert.throws(
        () => new KafkaBus({ brokers: ['127.0.0.1:1'], maxMessageBytes }),
        (error: unknown) => (error as { code?: unknown }).code === 'BUS_CONFIG',
        String(maxMessageBytes),
      );
    }
  });
});

describe('KafkaBus message size on a real broker', { skip, timeout: 120_000 }, () => {
  let kafka: KafkaBroker;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    const started = Date.now();
    kafka = await startKafka();
    console.log(`# kafka ${kafka.version} on ${kafka.bootstrap} in ${Date.now() - started} ms`);
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await kafka?.stop();
  });

  const newBus = (clientId: string, extra: { maxMessageBytes?: number; createTopics?: false } = {}) => {
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId,
      createTopics: extra.createTopics ?? { partitions: 3, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      ...(extra.maxMessageBytes === undefined ? {} : { maxMessageBytes: extra.maxMessageBytes }),
    });
    closers.push(() => bus.close());
    return bus;
  };

  const newAdmin = () => {
    const admin = new Admin({ clientId: 'probe-admin', bootstrapBrokers: [kafka.bootstrap] });
    closers.push(() => admin.close());
    return admin;
  };

  async function topicConfig(topic: string, name: string): Promise<string | undefined> {
    const described = await newAdmin().describeConfigs({
      resources: [
        { resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: [name] },
      ],
    });
    return described[0]?.configs.find((c) => c.name === name)?.value ?? undefined;
  }

  /** Subscribes a fresh group and collects every delivery until `count` arrived. */
  async function consume(bus: KafkaBus, topic: string, count: number): Promise<BusMessage[]> {
    const got: BusMessage[] = [];
    const sub = await bus.subscribe({
      topic,
      group: `g-${topic}`,
      handler: async (message) => {
        got.push(message);
      },
    });
    try {
      await until(`${count} messages on ${topic}`, () => got.length >= count, 45_000);
    } finally {
      await sub.close();
    }
    return got;
  }

  test('9 MiB and 16 MiB values among small ones, one key: all arrive intact and in order', async () => {
    const bus = newBus('large');
    const topic = 'hostgate.large.v1';
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) sent.push(randomBytes(100 + i));
    sent.push(randomBytes(9 * MiB));
    for (let i = 0; i < 5; i++) sent.push(randomBytes(200 + i));
    sent.push(randomBytes(16 * MiB)); // exactly the default limit, trace header included
    for (let i = 0; i < 5; i++) sent.push(randomBytes(300 + i));
    const t0 = performance.now();
    for (const value of sent) await bus.publish(topic, 'host-big', value);
    const t1 = performance.now();

    // Over the limit by one byte: refused by the bus, nothing reaches the topic.
    await rejectsWithCode(
      bus.publish(topic, 'host-big', new Uint8Array(16 * MiB + 1)),
      'BUS_MESSAGE_TOO_LARGE',
    );

    const got = await consume(bus, topic, sent.length);
    const t2 = performance.now();
    console.log(
      `# published ${sent.length} (25 MiB) in ${Math.round(t1 - t0)} ms, consumed in ${Math.round(t2 - t1)} ms`,
    );
    assert.equal(got.length, sent.length, 'nothing more than what was published');
    const partitions = new Set(got.map((m) => m.partition));
    assert.equal(partitions.size, 1, 'one key, one partition');
    for (let i = 0; i < got.length; i++) {
      const message = got[i];
      const value = sent[i];
      assert.ok(message && value);
      assert.equal(message.key, 'host-big');
      assert.equal(message.value.byteLength, value.byteLength, `message ${i} length`);
      assert.equal(sha(message.value), sha(value), `message ${i} content`);
      if (i > 0) assert.equal(message.offset, (got[i - 1]?.offset ?? -2n) + 1n, `message ${i} follows`);
    }
    // The topic the bus created allows the limit plus 64 KiB of key, headers and framing.
    assert.equal(await topicConfig(topic, 'max.message.bytes'), String(16 * MiB + 64 * KiB));
  });

  test('a smaller limit is what the created topic enforces; a broker refusal maps to the same code', async () => {
    const small = newBus('small', { maxMessageBytes: 512 * KiB });
    const topic = 'hostgate.small.v1';
    await small.publish(topic, 'host-1', randomBytes(512 * KiB));
    await rejectsWithCode(
      small.publish(topic, 'host-1', randomBytes(512 * KiB + 1)),
      'BUS_MESSAGE_TOO_LARGE',
    );
    assert.equal(await topicConfig(topic, 'max.message.bytes'), String(512 * KiB + 64 * KiB));

    // Another client, unaware of the bus, meets the same limit at the broker.
    const producer = new Producer({ clientId: 'raw', bootstrapBrokers: [kafka.bootstrap], retries: 0 });
    closers.push(() => producer.close());
    await assert.rejects(
      producer.send({ messages: [{ topic, key: Buffer.from('host-1'), value: randomBytes(1 * MiB) }] }),
      (error: unknown) => hasApiCode(error, 10),
      'the broker refuses 1 MiB on a topic created for 512 KiB',
    );

    // A bus with a larger limit publishing to that topic gets the broker's refusal as the bus code.
    const big = newBus('big-on-small', { createTopics: false });
    const error = await rejectsWithCode(
      big.publish(topic, 'host-1', randomBytes(1 * MiB)),
      'BUS_MESSAGE_TOO_LARGE',
    );
    assert.ok(hasApiCode((error as { cause?: unknown }).cause, 10), 'the cause is the broker error');
    // The refusal leaves the (idempotent) producer usable for that partition and others.
    const after = randomBytes(100);
    await big.publish(topic, 'host-1', after);
    const got = await consume(big, topic, 2);
    assert.equal(got.length, 2);
    assert.equal(sha(got[1]?.value ?? new Uint8Array()), sha(after));
  });

  test('a topic made earlier with a lower limit is raised by a bus that creates topics', async () => {
    const topic = 'hostgate.earlier.v1';
    // As an earlier version (or another tool) left it: Kafka's own default of about 1 MiB.
    await newAdmin().createTopics({
      topics: [topic],
      partitions: 1,
      replicas: 1,
      configs: [{ name: 'max.message.bytes', value: '1048588' }],
    });
    const bus = newBus('earlier');
    const value = randomBytes(9 * MiB);
    await bus.publish(topic, 'host-1', value);
    assert.equal(await topicConfig(topic, 'max.message.bytes'), String(16 * MiB + 64 * KiB));
    // A bus with a smaller limit never lowers it.
    await newBus('earlier-small', { maxMessageBytes: 100 * KiB }).publish(topic, 'host-1', randomBytes(10));
    assert.equal(await topicConfig(topic, 'max.message.bytes'), String(16 * MiB + 64 * KiB));
    const got = await consume(bus, topic, 2);
    assert.equal(sha(got[0]?.value ?? new Uint8Array()), sha(value));
  });

  test('a failing message too large for the consumer’s dead-letter topic goes there without its value', async () => {
    const topic = 'hostgate.poison-large.v1';
    const producer = newBus('poison-producer');
    const large = randomBytes(2 * MiB);
    await producer.publish(topic, 'host-1', large);
    await producer.publish(topic, 'host-1', randomBytes(10));
    // This consumer's bus allows 1 MiB: it creates the .dlq for that, so the 2 MiB value cannot go there.
    const consumer = newBus('poison-consumer', { maxMessageBytes: 1 * MiB });
    const handled: BusMessage[] = [];
    const errors: unknown[] = [];
    const sub = await consumer.subscribe({
      topic,
      group: 'g-poison',
      maxAttempts: 1,
      handler: async (message) => {
        if (message.value.byteLength > 1 * MiB) throw new Error('too big to handle');
        handled.push(message);
      },
      onError: (error) => errors.push(error),
    });
    closers.push(() => sub.close());
    await until('the next message on the key', () => handled.length === 1);
    await sub.close();
    const dead = await consume(newBus('dlq-reader'), `${topic}.dlq`, 1);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.value.byteLength, 0);
    assert.equal(dead[0]?.headers[DLQ_VALUE_DROPPED_HEADER], String(2 * MiB));
    assert.equal(dead[0]?.headers[DLQ_HEADERS.reason], 'too big to handle');
    assert.equal(dead[0]?.headers[DLQ_HEADERS.offset], '0');
    assert.ok(
      errors.some((e) => (e as { code?: unknown }).code === 'BUS_MESSAGE_TOO_LARGE'),
      'the refused dead-letter write was reported',
    );
  });

  test('a topic provisioned without settings takes the broker default, which allows 9 MiB', async () => {
    const topic = 'hostgate.provisioned.v1';
    await newAdmin().createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    const bus = newBus('provisioned', { createTopics: false });
    const value = randomBytes(9 * MiB);
    await bus.publish(topic, 'host-1', value);
    await bus.publish(topic, 'host-1', randomBytes(10));
    const got = await consume(bus, topic, 2);
    assert.equal(got.length, 2);
    assert.equal(sha(got[0]?.value ?? new Uint8Array()), sha(value));
  });
});
