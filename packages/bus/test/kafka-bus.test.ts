import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Consumer, producerSendsChannel } from '@platformatic/kafka';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { KafkaBus } from '../src/kafka-bus.ts';
import { type BusMessage, DLQ_HEADERS, type Subscription } from '../src/types.ts';

const skip = kafkaMissing();
const enc = new TextEncoder();
const dec = new TextDecoder();
const PARTITIONS = 6;
const MESSAGES = 2000;
const KEYS = 50;

async function until(what: string, condition: () => boolean, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/**
 * What every group member did, in one global order: handler starts (deliveries) and
 * landed commits. The invariant: once a commit for partition p reached offset c, no
 * delivery of an offset below c on p ever happens again.
 */
class Ledger {
  readonly deliveries: Array<{ seq: number; member: string; partition: number; offset: bigint; id: string }> =
    [];
  readonly committed = new Map<number, bigint>();
  private seq = 0;
  private readonly violations: string[] = [];

  delivered(member: string, partition: number, offset: bigint, id: string): void {
    const committed = this.committed.get(partition) ?? -1n;
    if (offset < committed) {
      this.violations.push(
        `${member} got ${id} (p${partition}@${offset}) after the group committed ${committed}`,
      );
    }
    this.deliveries.push({ seq: this.seq++, member, partition, offset, id });
  }

  commit(partition: number, offset: bigint): void {
    const before = this.committed.get(partition) ?? -1n;
    if (offset > before) this.committed.set(partition, offset);
  }

  ids(): Set<string> {
    return new Set(this.deliveries.map((d) => d.id));
  }

  duplicates(): number {
    return this.deliveries.length - this.ids().size;
  }

  assertClean(): void {
    assert.deepEqual(this.violations, [], 'no message delivered again after its commit');
  }

  /** Within one member's life the offsets of a partition only go up. */
  assertOrderPerMember(): void {
    const last = new Map<string, bigint>();
    for (const d of this.deliveries) {
      const k = `${d.member}/${d.partition}`;
      const prev = last.get(k);
      assert.ok(prev === undefined || d.offset > prev, `${k}: ${d.offset} after ${prev}`);
      last.set(k, d.offset);
    }
  }
}

/** Publishes MESSAGES messages over KEYS hosts; returns every id and the end offset of each partition. */
async function produce(bus: KafkaBus, topic: string): Promise<{ ids: string[] }> {
  const ids: string[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const id = `m${i}`;
    ids.push(id);
    await bus.publish(
      topic,
      `host-${i % KEYS}`,
      enc.encode(JSON.stringify({ id, seq: Math.floor(i / KEYS) })),
      {
        traceparent: `00-${i.toString(16).padStart(32, '0')}-00f067aa0ba902b7-01`,
      },
    );
  }
  return { ids };
}

/** End offsets per partition, read by a plain client (not the code under test). */
async function endOffsets(bootstrap: string, topic: string): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'probe', groupId: 'probe', bootstrapBrokers: [bootstrap] });
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] });
    return offsets.get(topic) ?? [];
  } finally {
    await consumer.close();
  }
}

async function committedOffsets(bootstrap: string, group: string, topic: string): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'probe', groupId: group, bootstrapBrokers: [bootstrap] });
  try {
    const partitions = Array.from({ length: PARTITIONS }, (_, i) => i);
    const offsets = await consumer.listCommittedOffsets({ topics: [{ topic, partitions }] });
    return offsets.get(topic) ?? [];
  } finally {
    await consumer.close();
  }
}

describe('KafkaBus on a real broker', { skip, timeout: 240_000 }, () => {
  let kafka: KafkaBroker;
  const buses: KafkaBus[] = [];
  const newBus = (clientId: string) => {
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId,
      createTopics: { partitions: PARTITIONS, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
    });
    buses.push(bus);
    return bus;
  };

  before(async () => {
    const started = Date.now();
    kafka = await startKafka();
    console.log(`# kafka ${kafka.version} on ${kafka.bootstrap} in ${Date.now() - started} ms`);
  });
  after(async () => {
    const t0 = Date.now();
    for (const bus of buses) await bus.close().catch(() => undefined);
    const t1 = Date.now();
    await kafka?.stop();
    console.log(`# closed buses in ${t1 - t0} ms, stopped the broker in ${Date.now() - t1} ms`);
  });

  test('a consumer closed mid-stream without committing, then replaced: nothing lost, nothing redelivered after its commit', {
    timeout: 90_000,
  }, async () => {
    const topic = 'hostgate.evidence.v1';
    const group = 'replayer';
    const producer = newBus('producer');
    const t0 = Date.now();
    const { ids } = await produce(producer, topic);
    const producedMs = Date.now() - t0;
    const ledger = new Ledger();
    const traceparents = new Map<string, string | undefined>();
    const seqByKey = new Map<string, number>();
    const handler = (member: string) => async (m: BusMessage) => {
      const { id, seq } = JSON.parse(dec.decode(m.value)) as { id: string; seq: number };
      ledger.delivered(member, m.partition, m.offset, id);
      traceparents.set(id, m.headers['traceparent']);
      // Per-key order within one member's life.
      const k = `${member}/${m.key}`;
      const prev = seqByKey.get(k);
      assert.ok(prev === undefined || seq > prev, `${k}: seq ${seq} after ${prev}`);
      seqByKey.set(k, seq);
    };
    const first = newBus('first');
    // The 700th delivery pulls the plug from inside its own handler, so that message (and
    // whatever other partitions have in hand) is abandoned uncommitted.
    let inHand: string | undefined;
    let killed: Promise<void> | undefined;
    let sub1: Subscription | undefined;
    const firstHandler = handler('first');
    sub1 = await first.subscribe({
      topic,
      group,
      handler: async (m) => {
        await firstHandler(m);
        if (ledger.deliveries.length === 700 && !killed) {
          inHand = (JSON.parse(dec.decode(m.value)) as { id: string }).id;
          killed = sub1!.close({ drain: false });
          if (!m.signal.aborted) {
            await new Promise((resolve) => m.signal.addEventListener('abort', resolve, { once: true }));
          }
          return;
        }
        await delay(1);
      },
      onCommit: (c) => ledger.commit(c.partition, c.offset),
    });
    await until('the kill', () => killed !== undefined);
    await killed;
    const afterKill = ledger.deliveries.length;
    assert.ok(afterKill < MESSAGES, 'killed mid-stream');
    const commitsAtKill = new Map(ledger.committed);

    const second = newBus('second');
    const t1 = Date.now();
    const sub2 = await second.subscribe({
      topic,
      group,
      handler: handler('second'),
      onCommit: (c) => ledger.commit(c.partition, c.offset),
    });
    const ends = await endOffsets(kafka.bootstrap, topic);
    assert.equal(
      ends.reduce((a, b) => a + b, 0n),
      BigInt(MESSAGES),
    );
    await until('every partition committed to its end', () =>
      ends.every((end, p) => (ledger.committed.get(p) ?? 0n) === end),
    );
    const resumedMs = Date.now() - t1;
    await sub2.close();

    assert.deepEqual([...ledger.ids()].sort(), [...ids].sort(), 'every message processed');
    ledger.assertClean();
    ledger.assertOrderPerMember();
    const redone = ledger.deliveries.find((d) => d.id === inHand && d.member === 'second');
    assert.ok(redone, `the message in hand at the kill (${inHand}) is delivered again`);
    assert.ok(
      (commitsAtKill.get(redone.partition) ?? -1n) <= redone.offset,
      'and was never committed by the first',
    );
    assert.deepEqual(
      await committedOffsets(kafka.bootstrap, group, topic),
      ends,
      'the broker holds the same commits',
    );
    for (const [i, id] of ids.entries()) {
      assert.equal(traceparents.get(id), `00-${i.toString(16).padStart(32, '0')}-00f067aa0ba902b7-01`);
    }
    console.log(
      `# produced ${MESSAGES} in ${producedMs} ms; killed after ${afterKill}; second member finished in ${resumedMs} ms; redelivered ${ledger.duplicates()}`,
    );
  });

  test('a consumer process SIGKILLed mid-stream, then replaced: nothing lost, nothing redelivered after its commit', {
    timeout: 90_000,
  }, async () => {
    const topic = 'hostgate.measurements.v1';
    const group = 'evaluator';
    const producer = newBus('producer2');
    const { ids } = await produce(producer, topic);
    const ledger = new Ledger();
    const child = spawn(
      process.execPath,
      [path.join(import.meta.dirname, 'fixtures', 'kafka-consumer-child.ts'), kafka.bootstrap, topic, group],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [kind, p, o, id] = line.split(' ');
        if (kind === 'D') ledger.delivered('child', Number(p), BigInt(o!), id!);
        else if (kind === 'C') ledger.commit(Number(p), BigInt(o!));
      }
      if (ledger.deliveries.length >= 800 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    try {
      assert.equal(await exited, 'SIGKILL');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const killedAt = ledger.deliveries.length;
    assert.ok(killedAt >= 800 && killedAt < MESSAGES, `killed mid-stream (after ${killedAt})`);

    const t1 = Date.now();
    const bus = newBus('replacement');
    const sub = await bus.subscribe({
      topic,
      group,
      handler: async (m) => {
        const { id } = JSON.parse(dec.decode(m.value)) as { id: string };
        ledger.delivered('replacement', m.partition, m.offset, id);
      },
      onCommit: (c) => ledger.commit(c.partition, c.offset),
    });
    const ends = await endOffsets(kafka.bootstrap, topic);
    await until('every partition committed to its end', () =>
      ends.every((end, p) => (ledger.committed.get(p) ?? 0n) === end),
    );
    await sub.close();
    assert.deepEqual([...ledger.ids()].sort(), [...ids].sort(), 'every message processed');
    ledger.assertClean();
    ledger.assertOrderPerMember();
    assert.deepEqual(await committedOffsets(kafka.bootstrap, group, topic), ends);
    console.log(
      `# child killed after ${killedAt} deliveries; replacement finished in ${Date.now() - t1} ms; redelivered ${ledger.duplicates()}`,
    );
  });

  test('two members of a group share the partitions through a rebalance; another group reads everything', {
    timeout: 60_000,
  }, async () => {
    const topic = 'hostgate.certificates.v1';
    const producer = newBus('producer3');
    const { ids } = await produce(producer, topic);
    const ledger = new Ledger();
    const soc: string[] = [];
    const member = (name: string) => async (m: BusMessage) => {
      const { id } = JSON.parse(dec.decode(m.value)) as { id: string };
      ledger.delivered(name, m.partition, m.offset, id);
      await delay(1);
    };
    const onCommit = (c: { partition: number; offset: bigint }) => ledger.commit(c.partition, c.offset);
    const a = await newBus('member-a').subscribe({ topic, group: 'issuer', handler: member('a'), onCommit });
    await until('a has started', () => ledger.deliveries.length >= 100);
    // b joins mid-stream: the group rebalances while a has messages in hand.
    const b = await newBus('member-b').subscribe({ topic, group: 'issuer', handler: member('b'), onCommit });
    const socSub = await newBus('soc').subscribe({
      topic,
      group: 'soc',
      handler: async (m) => void soc.push((JSON.parse(dec.decode(m.value)) as { id: string }).id),
    });
    const ends = await endOffsets(kafka.bootstrap, topic);
    await until('the group committed every partition to its end', () =>
      ends.every((end, p) => (ledger.committed.get(p) ?? 0n) === end),
    );
    await until('the other group read everything', () => soc.length >= MESSAGES);
    await Promise.all([a.close(), b.close(), socSub.close()]);
    assert.deepEqual([...ledger.ids()].sort(), [...ids].sort());
    ledger.assertClean();
    ledger.assertOrderPerMember();
    const members = new Set(ledger.deliveries.map((d) => d.member));
    assert.deepEqual([...members].sort(), ['a', 'b'], 'both members handled messages');
    assert.deepEqual([...new Set(soc)].sort(), [...ids].sort());
    console.log(
      `# two members: a ${ledger.deliveries.filter((d) => d.member === 'a').length}, b ${ledger.deliveries.filter((d) => d.member === 'b').length}, redelivered ${ledger.duplicates()}`,
    );
  });

  test('a broker restart under a running consumer delays messages but loses none', {
    timeout: 90_000,
  }, async () => {
    const topic = 'hostgate.events.v1';
    const bus = newBus('restart');
    const ledger = new Ledger();
    const errors: unknown[] = [];
    const sub = await bus.subscribe({
      topic,
      group: 'soc-feed',
      handler: async (m) => {
        ledger.delivered('member', m.partition, m.offset, dec.decode(m.value));
      },
      onCommit: (c) => ledger.commit(c.partition, c.offset),
      onError: (error) => errors.push(error),
    });
    const sent: string[] = [];
    for (let i = 0; i < 300; i++) {
      sent.push(`before-${i}`);
      await bus.publish(topic, `host-${i % 20}`, enc.encode(`before-${i}`));
    }
    await until('the first half', () => ledger.ids().size === 300);
    const t0 = Date.now();
    await kafka.restart();
    for (let i = 0; i < 300; i++) {
      sent.push(`after-${i}`);
      await bus.publish(topic, `host-${i % 20}`, enc.encode(`after-${i}`));
    }
    await until('the second half', () => ledger.ids().size === 600, 60_000);
    const ends = await endOffsets(kafka.bootstrap, topic);
    await until('commits to the end', () =>
      ends.every((end, p) => end === 0n || ledger.committed.get(p) === end),
    );
    await sub.close();
    assert.deepEqual([...ledger.ids()].sort(), [...sent].sort());
    ledger.assertClean();
    console.log(
      `# broker restart: all 600 handled ${Date.now() - t0} ms after the restart began; redelivered ${ledger.duplicates()}; ${errors.length} errors reported ${JSON.stringify([...new Set(errors.map((e) => (e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e))))].slice(0, 5))}`,
    );
  });

  test('a consumer stream torn down by the client is started again from the commits; nothing is lost', {
    timeout: 60_000,
  }, async () => {
    const topic = 'hostgate.stream-restart.v1';
    const bus = newBus('stream-restart');
    const ledger = new Ledger();
    const errors: unknown[] = [];
    const sub = await bus.subscribe({
      topic,
      group: 'g',
      handler: async (m) => ledger.delivered('member', m.partition, m.offset, dec.decode(m.value)),
      onCommit: (c) => ledger.commit(c.partition, c.offset),
      onError: (error) => errors.push(error),
    });
    const sent: string[] = [];
    const send = async (prefix: string) => {
      for (let i = 0; i < 200; i++) {
        sent.push(`${prefix}-${i}`);
        await bus.publish(topic, `host-${i % 10}`, enc.encode(`${prefix}-${i}`));
      }
    };
    await send('a');
    await until('the first batch', () => ledger.ids().size === 200);
    // What @platformatic/kafka does when a commit needs a group rejoin: destroy the stream.
    (sub as unknown as { stream: { destroy(error: Error): void } }).stream.destroy(
      new Error('simulated rejoin'),
    );
    await send('b');
    await until('the second batch', () => ledger.ids().size === 400);
    await sub.close();
    assert.deepEqual([...ledger.ids()].sort(), [...sent].sort());
    ledger.assertClean();
    assert.ok(
      errors.some((e) => e instanceof Error && e.message === 'simulated rejoin'),
      'the teardown was reported',
    );
  });

  test('publishes made together go out in one produce request, in call order', {
    timeout: 60_000,
  }, async () => {
    const bus = newBus('together');
    const certs = 'hostgate.together-certs.v1';
    const events = 'hostgate.together-events.v1';
    // Topics made first, so that only the publishes below are counted.
    await bus.ensureTopics([certs, events]);
    const requests: number[] = [];
    const onSend = (event: unknown) => {
      const { client, options } = event as { client: { clientId: string }; options: { messages: unknown[] } };
      if (client.clientId === 'together-producer') requests.push(options.messages.length);
    };
    producerSendsChannel.start.subscribe(onSend);
    try {
      // A handler's outputs handed over at once (the issuer's certificate and two SOC events).
      await Promise.all([
        bus.publish(certs, 'host-1', enc.encode('cert')),
        bus.publish(events, 'host-1', enc.encode('event-1')),
        bus.publish(events, 'host-1', enc.encode('event-2')),
      ]);
      assert.deepEqual(requests, [3], 'one request for the three');
      // Several handlers resumed in one turn of the event loop, each a different number of
      // promise steps deep when it publishes (as after one database reply for all of them).
      requests.length = 0;
      const handler = async (hops: number) => {
        for (let i = 0; i < hops; i++) await Promise.resolve();
        await bus.publish(events, `host-${hops}`, enc.encode(`deep-${hops}`));
      };
      await Promise.all([0, 1, 2, 3, 5, 8].map(handler));
      assert.deepEqual(requests, [6], 'one request for the six');
    } finally {
      producerSendsChannel.start.unsubscribe(onSend);
    }
    // Call order kept on the key.
    const consumer = new Consumer({
      clientId: 'together-reader',
      groupId: 'together-reader',
      bootstrapBrokers: [kafka.bootstrap],
      deserializers: { key: (b?: Buffer) => b?.toString(), value: (b?: Buffer) => b?.toString() },
    });
    try {
      const stream = await consumer.consume({
        topics: [events],
        mode: 'earliest',
        autocommit: false,
        maxWaitTime: 200,
      });
      const seen: string[] = [];
      for await (const message of stream) {
        if (message.key === 'host-1') seen.push(String(message.value));
        if (seen.length === 2) break;
      }
      await stream.close();
      assert.deepEqual(seen, ['event-1', 'event-2']);
    } finally {
      await consumer.close(true);
    }
  });

  test('several buses creating the same topics at once all succeed', { timeout: 30_000 }, async () => {
    const racers = Array.from({ length: 4 }, (_, i) => newBus(`racer-${i}`));
    const topics = ['hostgate.race-a.v1', 'hostgate.race-b.v1', 'hostgate.race-b.v1.dlq'];
    await Promise.all(racers.map((bus) => bus.ensureTopics(topics)));
    const ends = await endOffsets(kafka.bootstrap, 'hostgate.race-a.v1');
    assert.equal(ends.length, PARTITIONS);
  });

  test('a poison message goes to <topic>.dlq with its reason after maxAttempts; its key keeps flowing', {
    timeout: 60_000,
  }, async () => {
    const topic = 'hostgate.verdicts.v1';
    const bus = newBus('dlq');
    const handled: string[] = [];
    const attempts: number[] = [];
    const sub = await bus.subscribe({
      topic,
      group: 'issuer',
      maxAttempts: 3,
      retryDelayMs: () => 10,
      handler: async (m) => {
        const body = dec.decode(m.value);
        if (body === 'poison') {
          attempts.push(m.attempt);
          throw Object.assign(new RangeError('verdict payload too large'), { code: 'PAYLOAD_TOO_LARGE' });
        }
        handled.push(body);
      },
    });
    const dead: BusMessage[] = [];
    const dlq = await bus.subscribe({
      topic: `${topic}.dlq`,
      group: 'ops',
      handler: async (m) => void dead.push(m),
    });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await bus.publish(topic, 'host-7', enc.encode('ok-1'));
    await bus.publish(topic, 'host-7', enc.encode('poison'), { traceparent });
    await bus.publish(topic, 'host-7', enc.encode('ok-2'));
    await until('the dead letter and both good messages', () => dead.length === 1 && handled.length === 2);
    assert.deepEqual(handled, ['ok-1', 'ok-2']);
    assert.deepEqual(attempts, [1, 2, 3]);
    const d = dead[0]!;
    assert.equal(dec.decode(d.value), 'poison');
    assert.equal(d.key, 'host-7');
    assert.equal(d.headers[DLQ_HEADERS.reason], 'verdict payload too large');
    assert.equal(d.headers[DLQ_HEADERS.errorName], 'RangeError');
    assert.equal(d.headers[DLQ_HEADERS.errorCode], 'PAYLOAD_TOO_LARGE');
    assert.equal(d.headers[DLQ_HEADERS.attempts], '3');
    assert.equal(d.headers[DLQ_HEADERS.topic], topic);
    assert.equal(d.headers[DLQ_HEADERS.group], 'issuer');
    assert.equal(d.headers['traceparent'], traceparent);
    await sub.close();
    await dlq.close();
    const ends = await endOffsets(kafka.bootstrap, topic);
    // Partitions that never held a message have no commit (-1).
    const committed = await committedOffsets(kafka.bootstrap, 'issuer', topic);
    assert.deepEqual(
      committed.map((c, p) => (ends[p] === 0n ? 0n : c)),
      ends,
      'the poison message is committed past',
    );
  });
});
