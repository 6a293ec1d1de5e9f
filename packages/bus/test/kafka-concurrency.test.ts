import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Consumer, consumerCommitsChannel } from '@platformatic/kafka';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { KafkaBus } from '../src/kafka-bus.ts';
import { type BusMessage, DLQ_HEADERS, type Subscription } from '../src/types.ts';

// handlerConcurrency on a real broker: several handlers per partition, one per key.

const skip = kafkaMissing();
const enc = new TextEncoder();
const dec = new TextDecoder();
const PARTITIONS = 2;
const CONCURRENCY = 8;
const MESSAGES = 1500;
const KEYS = 40;

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** End offsets per partition, read by a plain client (not the code under test). */
async function endOffsets(bootstrap: string, topic: string): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'probe', groupId: 'probe', bootstrapBrokers: [bootstrap] });
  try {
    return (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
  } finally {
    await consumer.close();
  }
}

/** The group's commits as the broker holds them (-1: none). */
async function committedOffsets(
  bootstrap: string,
  group: string,
  topic: string,
  count = PARTITIONS,
): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'probe', groupId: group, bootstrapBrokers: [bootstrap] });
  try {
    const partitions = Array.from({ length: count }, (_, i) => i);
    return (await consumer.listCommittedOffsets({ topics: [{ topic, partitions }] })).get(topic) ?? [];
  } finally {
    await consumer.close();
  }
}

interface Body {
  id: string;
  key: string;
  seq: number;
}

/**
 * What the members of one group did. Checks as it goes: a key never has two handlers at once
 * in a member, a member sees a key's messages in publish order without gaps, a member starts
 * a partition's handlers in offset order, no delivery below an offset whose commit landed, and
 * never more than CONCURRENCY handlers in a partition.
 */
class Ledger {
  readonly completed = new Set<string>();
  readonly deliveries: Array<{ member: string; partition: number; offset: bigint; id: string }> = [];
  readonly committed = new Map<number, bigint>();
  /** Highest number of handlers seen running at once, per partition (any member). */
  readonly maxInFlight = new Map<number, number>();
  private readonly inFlight = new Map<string, number>();
  private readonly busyKeys = new Set<string>();
  private readonly lastSeq = new Map<string, number>();
  private readonly lastOffset = new Map<string, bigint>();
  readonly violations: string[] = [];

  start(member: string, m: BusMessage): Body {
    const body = JSON.parse(dec.decode(m.value)) as Body;
    const where = `${member} p${m.partition}@${m.offset} ${body.id}`;
    if (m.attempt !== 1) this.violations.push(`${where}: attempt ${m.attempt}, nothing fails here`);
    const committed = this.committed.get(m.partition) ?? -1n;
    if (m.offset < committed)
      this.violations.push(`${where}: delivered after the commit reached ${committed}`);
    const mk = `${member}/${m.key}`;
    if (this.busyKeys.has(mk)) this.violations.push(`${where}: key ${m.key} already has a handler running`);
    this.busyKeys.add(mk);
    const prevSeq = this.lastSeq.get(mk);
    if (prevSeq !== undefined && body.seq !== prevSeq + 1)
      this.violations.push(`${where}: key ${m.key} seq ${body.seq} after ${prevSeq}`);
    this.lastSeq.set(mk, body.seq);
    const mp = `${member}/${m.partition}`;
    const prevOffset = this.lastOffset.get(mp);
    if (prevOffset !== undefined && m.offset <= prevOffset)
      this.violations.push(`${where}: started after offset ${prevOffset}`);
    this.lastOffset.set(mp, m.offset);
    const running = (this.inFlight.get(mp) ?? 0) + 1;
    this.inFlight.set(mp, running);
    if (running > CONCURRENCY) this.violations.push(`${where}: ${running} handlers in one partition`);
    this.maxInFlight.set(m.partition, Math.max(this.maxInFlight.get(m.partition) ?? 0, running));
    this.deliveries.push({ member, partition: m.partition, offset: m.offset, id: body.id });
    return body;
  }

  end(member: string, m: BusMessage, body: Body, ok: boolean): void {
    this.busyKeys.delete(`${member}/${m.key}`);
    const mp = `${member}/${m.partition}`;
    this.inFlight.set(mp, (this.inFlight.get(mp) ?? 1) - 1);
    if (ok) this.completed.add(body.id);
  }

  commit(partition: number, offset: bigint): void {
    if (offset > (this.committed.get(partition) ?? -1n)) this.committed.set(partition, offset);
  }
}

/** Publishes MESSAGES over KEYS keys (message i on key i % KEYS, seq i / KEYS); returns the ids. */
async function produce(bus: KafkaBus, topic: string): Promise<string[]> {
  const ids: string[] = [];
  const sends: Promise<void>[] = [];
  // Published without awaiting each: the bus sends them in call order, so a key's order holds.
  for (let i = 0; i < MESSAGES; i++) {
    const key = `host-${i % KEYS}`;
    const body: Body = { id: `m${i}`, key, seq: Math.floor(i / KEYS) };
    ids.push(body.id);
    sends.push(bus.publish(topic, key, enc.encode(JSON.stringify(body))));
  }
  await Promise.all(sends);
  return ids;
}

describe('KafkaBus handlerConcurrency on a real broker', { skip, timeout: 120_000 }, () => {
  let kafka: KafkaBroker;
  const buses: KafkaBus[] = [];
  const newBus = (clientId: string) => {
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId,
      createTopics: { partitions: PARTITIONS, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      handlerConcurrency: CONCURRENCY,
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
    for (const bus of buses) await bus.close().catch(() => undefined);
    await kafka?.stop();
  });

  test('8 handlers per partition: every message, per-key order, concurrency seen; a close without drain mid-stream loses nothing and redelivers nothing committed', {
    timeout: 60_000,
  }, async () => {
    const topic = 'hostgate.concurrency.v1';
    const group = 'concurrent';
    const t0 = Date.now();
    const ids = await produce(newBus('producer'), topic);
    const ends = await endOffsets(kafka.bootstrap, topic);
    assert.equal(ends.length, PARTITIONS);
    assert.equal(
      ends.reduce((a, b) => a + b, 0n),
      BigInt(MESSAGES),
    );
    assert.ok(
      ends.every((end) => end > 100n),
      `both partitions hold messages: ${ends}`,
    );
    const ledger = new Ledger();
    const handler =
      (member: string, onStart?: (m: BusMessage) => Promise<void> | undefined) => async (m: BusMessage) => {
        const body = ledger.start(member, m);
        let ok = false;
        try {
          const hold = onStart?.(m);
          await (hold ?? delay(Math.floor(Math.random() * 5)));
          ok = !m.signal.aborted;
        } finally {
          ledger.end(member, m, body, ok);
        }
      };

    // The first member is closed without draining from inside its 600th handler, while
    // others are running; that handler waits for its abort, so it is in hand at the close.
    let killed: Promise<void> | undefined;
    let inHand: BusMessage | undefined;
    let runningAtKill = 0;
    let sub1: Subscription | undefined;
    const first = newBus('first');
    sub1 = await first.subscribe({
      topic,
      group,
      handler: handler('first', (m) => {
        if (ledger.deliveries.length < 600 || killed) return undefined;
        inHand = m;
        runningAtKill = ledger.deliveries.length - ledger.completed.size;
        killed = sub1!.close({ drain: false });
        return new Promise<void>((resolve) => {
          if (m.signal.aborted) resolve();
          else m.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }),
      onCommit: (c) => ledger.commit(c.partition, c.offset),
    });
    await until('the kill', () => killed !== undefined);
    await killed;
    const afterKill = ledger.deliveries.length;
    assert.ok(afterKill < MESSAGES, 'killed mid-stream');
    assert.ok(runningAtKill > 1, `handlers in flight at the close: ${runningAtKill}`);
    assert.ok(inHand);
    // What the first member's onCommit reported had landed on the broker, and no more.
    const brokerAtKill = await committedOffsets(kafka.bootstrap, group, topic);
    for (let p = 0; p < PARTITIONS; p++) {
      const reported = ledger.committed.get(p) ?? -1n;
      assert.ok(brokerAtKill[p]! >= reported, `p${p}: broker ${brokerAtKill[p]} >= reported ${reported}`);
      // Late onCommit calls for commits that landed before the close may still come; the
      // broker's value is what the next member resumes from.
      ledger.commit(p, brokerAtKill[p]!);
    }
    assert.ok(
      (brokerAtKill[inHand.partition] ?? -1n) <= inHand.offset,
      'the message in hand at the close was not committed past',
    );

    const second = newBus('second');
    const sub2 = await second.subscribe({
      topic,
      group,
      handler: handler('second'),
      onCommit: (c) => ledger.commit(c.partition, c.offset),
    });
    await until('every partition committed to its end', () =>
      ends.every((end, p) => (ledger.committed.get(p) ?? 0n) === end),
    );
    await sub2.close();
    const totalMs = Date.now() - t0;

    assert.deepEqual(ledger.violations, []);
    assert.deepEqual([...ledger.completed].sort(), [...ids].sort(), 'every message processed');
    for (let p = 0; p < PARTITIONS; p++) {
      assert.ok((ledger.maxInFlight.get(p) ?? 0) > 1, `p${p}: more than one handler at once`);
      // The second member starts exactly where the broker's commit stood: below it nothing
      // comes again, and nothing at or above it is skipped.
      const offsets = ledger.deliveries
        .filter((d) => d.member === 'second' && d.partition === p)
        .map((d) => d.offset);
      const from = brokerAtKill[p]! < 0n ? 0n : brokerAtKill[p]!;
      if (from < ends[p]!) assert.equal(offsets[0], from, `p${p}: the second member resumes at the commit`);
      else assert.equal(offsets.length, 0);
    }
    const redone = ledger.deliveries.find(
      (d) => d.member === 'second' && d.offset === inHand!.offset && d.partition === inHand!.partition,
    );
    assert.ok(redone, 'the message in hand at the close is delivered again');
    assert.deepEqual(
      await committedOffsets(kafka.bootstrap, group, topic),
      ends,
      'the broker holds the same commits',
    );
    const redelivered = ledger.deliveries.length - new Set(ledger.deliveries.map((d) => d.id)).size;
    console.log(
      `# ${MESSAGES} messages, ${KEYS} keys, ${PARTITIONS} partitions, concurrency ${CONCURRENCY}: closed after ${afterKill} deliveries with ${runningAtKill} in flight; max in flight per partition ${[...ledger.maxInFlight.values()]}; redelivered ${redelivered}; ${totalMs} ms`,
    );
  });

  test('a failing key does not hold the other keys of its partition and reaches the DLQ after maxAttempts', {
    timeout: 30_000,
  }, async () => {
    const topic = 'hostgate.concurrency-dlq.v1';
    const bus = newBus('dlq');
    const attempts: number[] = [];
    let lastAttemptAt = 0;
    const doneAt = new Map<string, { at: number; partition: number }>();
    const order: string[] = [];
    let poisonPartition: number | undefined;
    const sub = await bus.subscribe({
      topic,
      group: 'issuer',
      maxAttempts: 3,
      retryDelayMs: () => 300,
      handler: async (m) => {
        const body = JSON.parse(dec.decode(m.value)) as Body;
        if (body.id === 'poison') {
          poisonPartition = m.partition;
          attempts.push(m.attempt);
          lastAttemptAt = Date.now();
          throw new Error('cannot handle this one');
        }
        await delay(Math.floor(Math.random() * 3));
        if (body.key === 'bad') order.push(body.id);
        doneAt.set(body.id, { at: Date.now(), partition: m.partition });
      },
    });
    const dead: BusMessage[] = [];
    let deadAt = 0;
    const dlq = await bus.subscribe({
      topic: `${topic}.dlq`,
      group: 'ops',
      handler: async (m) => {
        deadAt = Date.now();
        dead.push(m);
      },
    });
    const sends: Promise<void>[] = [];
    sends.push(bus.publish(topic, 'bad', enc.encode(JSON.stringify({ id: 'poison', key: 'bad', seq: 0 }))));
    const others: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = `o${i}`;
      others.push(id);
      sends.push(
        bus.publish(
          topic,
          `host-${i % 30}`,
          enc.encode(JSON.stringify({ id, key: `host-${i % 30}`, seq: i })),
        ),
      );
    }
    sends.push(bus.publish(topic, 'bad', enc.encode(JSON.stringify({ id: 'after', key: 'bad', seq: 1 }))));
    await Promise.all(sends);
    await until(
      'the dead letter and every other message',
      () => dead.length === 1 && doneAt.size === others.length + 1,
    );

    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(dead.length, 1);
    const d = dead[0]!;
    assert.equal(JSON.parse(dec.decode(d.value)).id, 'poison');
    assert.equal(d.key, 'bad');
    assert.equal(d.headers[DLQ_HEADERS.attempts], '3');
    assert.equal(d.headers[DLQ_HEADERS.reason], 'cannot handle this one');
    // Other keys of the poison's partition finished while it was still being retried.
    const sameBeforeLast = others.filter((id) => {
      const done = doneAt.get(id);
      return done !== undefined && done.partition === poisonPartition && done.at < lastAttemptAt;
    }).length;
    const same = others.filter((id) => doneAt.get(id)?.partition === poisonPartition).length;
    assert.ok(same > 0, 'other keys share the poison partition');
    assert.ok(sameBeforeLast > 0, `other keys flowed during the retries (${sameBeforeLast} of ${same})`);
    // The failing key's next message waits for the dead-letter write.
    assert.deepEqual(order, ['after']);
    assert.ok(doneAt.get('after')!.at >= lastAttemptAt);
    await sub.close();
    await dlq.close();
    const ends = await endOffsets(kafka.bootstrap, topic);
    const committed = await committedOffsets(kafka.bootstrap, 'issuer', topic);
    assert.deepEqual(
      committed.map((c, p) => (ends[p] === 0n ? 0n : c)),
      ends,
      'the poison message is committed past',
    );
    console.log(
      `# poison on p${poisonPartition}: ${sameBeforeLast} of ${same} other messages there finished before its last attempt; dead-lettered ${deadAt - lastAttemptAt} ms after it`,
    );
  });

  test('hung handlers on several keys, started at different times, each time out at their own deadline and are retried', {
    timeout: 30_000,
  }, async () => {
    // The subscription times every attempt with one timer (deadlines expire in start order):
    // a second wave must not expire with the first, nor wait for the first's timer to re-arm late.
    const topic = 'hostgate.concurrency-timeout.v1';
    const bus = newBus('timeout');
    const TIMEOUT = 600;
    const starts = new Map<string, number[]>();
    const firstSignals = new Map<string, AbortSignal>();
    const handled = new Set<string>();
    const sub = await bus.subscribe({
      topic,
      group: 'timeouts',
      handlerTimeoutMs: TIMEOUT,
      maxAttempts: 2,
      retryDelayMs: () => 0,
      handler: async (m) => {
        const id = dec.decode(m.value);
        const list = starts.get(id) ?? [];
        list.push(performance.now());
        starts.set(id, list);
        if (m.attempt === 1) {
          firstSignals.set(id, m.signal);
          await new Promise(() => {}); // hangs, ignoring its signal
        }
        handled.add(id);
      },
    });
    const wave = (n: number) =>
      Promise.all(
        Array.from({ length: 3 }, (_, i) => bus.publish(topic, `host-${n}-${i}`, enc.encode(`w${n}-${i}`))),
      );
    await wave(1);
    await until('the first wave started', () => starts.size === 3);
    await delay(TIMEOUT / 2);
    await wave(2);
    await until('every message handled on its second attempt', () => handled.size === 6);
    for (const [id, [first, second]] of starts) {
      assert.ok(second !== undefined, `${id} was retried`);
      const waited = second - first!;
      assert.ok(
        waited >= TIMEOUT - 5,
        `${id}: retried ${waited.toFixed(0)} ms after it started, before its timeout`,
      );
      assert.ok(waited < TIMEOUT + 1500, `${id}: retried only ${waited.toFixed(0)} ms after it started`);
      const signal = firstSignals.get(id)!;
      assert.equal(signal.aborted, true, `${id}: the hung attempt saw its signal abort`);
      assert.equal((signal.reason as { code?: string }).code, 'BUS_HANDLER_TIMEOUT');
    }
    await sub.close();
    const ends = await endOffsets(kafka.bootstrap, topic);
    const committed = await committedOffsets(kafka.bootstrap, 'timeouts', topic);
    assert.deepEqual(
      committed.map((c, p) => (ends[p] === 0n ? 0n : c)),
      ends,
      'committed past every message',
    );
  });

  test('commitIntervalMs: a few commits per partition instead of one per message; a draining close commits everything handled', {
    timeout: 60_000,
  }, async () => {
    const topic = 'interval';
    const ids = await produce(newBus('interval-producer'), topic);
    const ends = await endOffsets(kafka.bootstrap, topic);
    const bus = new KafkaBus({
      brokers: [kafka.bootstrap],
      clientId: 'interval',
      createTopics: { partitions: PARTITIONS, replicationFactor: 1 },
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      handlerConcurrency: CONCURRENCY,
      commitIntervalMs: 400,
    });
    buses.push(bus);
    const handled = new Set<string>();
    let commits = 0;
    const sub = await bus.subscribe({
      topic,
      group: 'interval',
      handler: async (m) => {
        handled.add((JSON.parse(dec.decode(m.value)) as Body).id);
        // Spread the work over a couple of seconds so several intervals pass.
        await delay(10);
      },
      onCommit: () => {
        commits++;
      },
    });
    const started = Date.now();
    await until('every message handled', () => handled.size === ids.length);
    const elapsed = Date.now() - started;
    await sub.close();
    // At most one commit per partition per interval while it ran, plus the close's: never one per message.
    const bound = PARTITIONS * (Math.ceil(elapsed / 400) + 2);
    assert.ok(
      commits <= bound,
      `${commits} commits for ${ids.length} messages in ${elapsed} ms (bound ${bound})`,
    );
    assert.deepEqual(
      await committedOffsets(kafka.bootstrap, 'interval', topic),
      ends,
      'the close committed what was handled',
    );
    console.log(`# commitIntervalMs 400: ${commits} commits for ${ids.length} messages in ${elapsed} ms`);
  });

  test('commitIntervalMs: one commit request per subscription per interval carries every partition; across a rebalance a member commits only partitions it owns; draining closes commit what was handled', {
    timeout: 90_000,
  }, async () => {
    const topic = 'interval-six';
    const group = 'interval-six';
    const partitions = 6;
    const intervalMs = 200;
    const messages = 900;
    const newMember = (clientId: string) => {
      const bus = new KafkaBus({
        brokers: [kafka.bootstrap],
        clientId,
        createTopics: { partitions, replicationFactor: 1 },
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 500,
        handlerConcurrency: 2,
        commitIntervalMs: intervalMs,
      });
      buses.push(bus);
      return bus;
    };
    const producer = newMember('six-producer');
    const sends: Promise<void>[] = [];
    for (let i = 0; i < messages; i++) {
      const key = `host-${i % 60}`;
      sends.push(
        producer.publish(
          topic,
          key,
          enc.encode(JSON.stringify({ id: `m${i}`, key, seq: Math.floor(i / 60) })),
        ),
      );
    }
    await Promise.all(sends);
    const ends = await endOffsets(kafka.bootstrap, topic);
    assert.ok(
      ends.length === partitions && ends.every((end) => end > 20n),
      `every partition holds messages: ${ends}`,
    );

    // Every OffsetCommit request the members' consumers make, seen through the client's own
    // diagnostics channel: which member, which partitions, and what the member owned then.
    const requests: Array<{ clientId: string; partitions: number[]; at: number }> = [];
    const violations: string[] = [];
    const onCommitRequest = (event: unknown) => {
      const { client, options } = event as {
        client: {
          clientId: string;
          groupId: string;
          assignments: Array<{ topic: string; partitions: number[] }> | null;
        };
        options: { offsets: Array<{ topic: string; partition: number }> };
      };
      if (client.groupId !== group) return;
      const sent = options.offsets.filter((o) => o.topic === topic).map((o) => o.partition);
      const owned = new Set(client.assignments?.find((a) => a.topic === topic)?.partitions ?? []);
      for (const p of sent)
        if (!owned.has(p)) violations.push(`${client.clientId} committed p${p}, owning ${[...owned]}`);
      requests.push({ clientId: client.clientId, partitions: sent, at: performance.now() });
    };
    consumerCommitsChannel.start.subscribe(onCommitRequest);
    try {
      const handled = new Set<string>();
      const committed = new Map<number, bigint>();
      const subscribe = (bus: KafkaBus) =>
        bus.subscribe({
          topic,
          group,
          handler: async (m) => {
            handled.add((JSON.parse(dec.decode(m.value)) as Body).id);
            await delay(20);
          },
          onCommit: (c) => {
            if (c.offset > (committed.get(c.partition) ?? -1n)) committed.set(c.partition, c.offset);
          },
        });
      const t0 = Date.now();
      const a = await subscribe(newMember('six-a'));
      await until('a third handled by the first member', () => handled.size >= messages / 3);
      const tb = Date.now();
      const b = await subscribe(newMember('six-b'));
      await until('every message handled', () => handled.size === messages, 60_000);
      await Promise.all([a.close(), b.close()]);
      const aMs = Date.now() - t0;
      const bMs = Date.now() - tb;

      assert.deepEqual(violations, [], 'a member commits only partitions it owns');
      assert.deepEqual(
        await committedOffsets(kafka.bootstrap, group, topic, partitions),
        ends,
        'the draining closes committed what was handled',
      );
      assert.deepEqual(
        [...committed.entries()].sort(([x], [y]) => x - y).map(([, offset]) => offset),
        ends,
        'onCommit reported the end offsets',
      );
      // A subscription's commit passes are an interval apart, each one request for all its
      // partitions; only a draining close (and a flush at a rejoin) may follow sooner. A timer
      // per partition made requests a few ms apart, one per partition.
      for (const id of ['six-a', 'six-b']) {
        const mine = requests.filter((r) => r.clientId === `${id}-${group}`);
        const bound = Math.ceil((id === 'six-a' ? aMs : bMs) / intervalMs) + 3;
        assert.ok(
          mine.length > 0 && mine.length <= bound,
          `${id}: ${mine.length} commit requests (bound ${bound})`,
        );
        const gaps = mine.slice(1).map((r, i) => Math.round(r.at - mine[i]!.at));
        const soon = gaps.filter((gap) => gap < intervalMs / 2);
        assert.ok(soon.length <= 2, `${id}: commit requests ${gaps.join(', ')} ms apart`);
      }
      const widest = Math.max(...requests.map((r) => r.partitions.length));
      assert.ok(widest >= 3, `a commit request carried ${widest} partitions`);
      console.log(
        `# ${partitions} partitions, commitIntervalMs ${intervalMs}: ${requests.length} commit requests (${requests
          .map((r) => r.partitions.length)
          .join(' ')} partitions each) for ${messages} messages, members ${aMs} / ${bMs} ms`,
      );
    } finally {
      consumerCommitsChannel.start.unsubscribe(onCommitRequest);
    }
  });
});
