import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { InProcessBus } from '../src/in-process-bus.ts';
import { type BusMessage, DLQ_HEADERS, PoisonMessageError } from '../src/types.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(5);
  }
}

describe('InProcessBus', () => {
  test('keeps per-key order across a two-member group with uneven handler times', async () => {
    const bus = new InProcessBus({ partitions: 4 });
    const seen = new Map<string, number[]>();
    const handler = async (m: BusMessage) => {
      await delay(Math.random() < 0.1 ? 2 : 0);
      const [key, seq] = dec(m.value).split(':');
      assert.equal(key, m.key);
      const list = seen.get(m.key) ?? [];
      list.push(Number(seq));
      seen.set(m.key, list);
    };
    const a = await bus.subscribe({ topic: 't', group: 'g', handler });
    const b = await bus.subscribe({ topic: 't', group: 'g', handler });
    const keys = Array.from({ length: 10 }, (_, i) => `host-${i}`);
    for (let seq = 0; seq < 50; seq++)
      for (const key of keys) await bus.publish('t', key, enc(`${key}:${seq}`));
    await until(() => [...seen.values()].reduce((n, l) => n + l.length, 0) === 500);
    for (const key of keys) {
      assert.deepEqual(
        seen.get(key),
        Array.from({ length: 50 }, (_, i) => i),
        key,
      );
    }
    await a.close();
    await b.close();
    await bus.close();
  });

  test('a member joining mid-stream takes partitions over without a message handled twice or out of order', async () => {
    const bus = new InProcessBus({ partitions: 4 });
    const handled: Array<{ member: string; key: string; seq: number }> = [];
    const handler = (member: string) => async (m: BusMessage) => {
      const [key, seq] = dec(m.value).split(':');
      handled.push({ member, key: key!, seq: Number(seq) });
      await delay(1);
    };
    const a = await bus.subscribe({ topic: 't', group: 'g', handler: handler('a') });
    for (let seq = 0; seq < 40; seq++)
      for (let k = 0; k < 8; k++) await bus.publish('t', `host-${k}`, enc(`host-${k}:${seq}`));
    await until(() => handled.length >= 60);
    const b = await bus.subscribe({ topic: 't', group: 'g', handler: handler('b') });
    await until(() => handled.length >= 320);
    await delay(20);
    assert.equal(handled.length, 320, 'each message handled once');
    for (let k = 0; k < 8; k++) {
      const seqs = handled.filter((h) => h.key === `host-${k}`).map((h) => h.seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: 40 }, (_, i) => i),
        `host-${k} in order across the handoff`,
      );
    }
    assert.ok(
      handled.some((h) => h.member === 'b'),
      'the new member got work',
    );
    await a.close();
    await b.close();
    await bus.close();
  });

  test('every group sees every message; inside a group each is handled once and the work is shared', async () => {
    const bus = new InProcessBus({ partitions: 6 });
    const byMember: Record<string, string[]> = { a: [], b: [], other: [] };
    const subs = [
      await bus.subscribe({
        topic: 't',
        group: 'g1',
        handler: async (m) => void byMember['a']!.push(dec(m.value)),
      }),
      await bus.subscribe({
        topic: 't',
        group: 'g1',
        handler: async (m) => void byMember['b']!.push(dec(m.value)),
      }),
      await bus.subscribe({
        topic: 't',
        group: 'g2',
        handler: async (m) => void byMember['other']!.push(dec(m.value)),
      }),
    ];
    const ids = Array.from({ length: 300 }, (_, i) => `m${i}`);
    for (const id of ids) await bus.publish('t', `host-${id}`, enc(id));
    await until(
      () => byMember['a']!.length + byMember['b']!.length === 300 && byMember['other']!.length === 300,
    );
    assert.ok(byMember['a']!.length > 0 && byMember['b']!.length > 0, 'both members got partitions');
    assert.deepEqual([...byMember['a']!, ...byMember['b']!].sort(), [...ids].sort());
    assert.deepEqual([...byMember['other']!].sort(), [...ids].sort());
    for (const s of subs) await s.close();
    await bus.close();
  });

  test('a poison message goes to <topic>.dlq after maxAttempts with its reason; the key keeps flowing', async () => {
    const bus = new InProcessBus({ partitions: 2 });
    const attempts = new Map<string, number[]>();
    const handled: string[] = [];
    const sub = await bus.subscribe({
      topic: 'evidence',
      group: 'replayer',
      maxAttempts: 3,
      retryDelayMs: () => 1,
      handler: async (m) => {
        const body = dec(m.value);
        attempts.set(body, [...(attempts.get(body) ?? []), m.attempt]);
        if (body === 'poison')
          throw Object.assign(new TypeError('bad evidence'), { code: 'EVENTLOG_TRUNCATED' });
        handled.push(body);
      },
    });
    const dead: BusMessage[] = [];
    const dlq = await bus.subscribe({
      topic: 'evidence.dlq',
      group: 'ops',
      handler: async (m) => void dead.push(m),
    });
    await bus.publish('evidence', 'host-1', enc('before'));
    await bus.publish('evidence', 'host-1', enc('poison'), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    await bus.publish('evidence', 'host-1', enc('after'));
    await until(() => dead.length === 1 && handled.length === 2);
    assert.deepEqual(handled, ['before', 'after']);
    assert.deepEqual(attempts.get('poison'), [1, 2, 3]);
    const d = dead[0]!;
    assert.equal(dec(d.value), 'poison');
    assert.equal(d.key, 'host-1');
    assert.equal(d.headers[DLQ_HEADERS.reason], 'bad evidence');
    assert.equal(d.headers[DLQ_HEADERS.errorName], 'TypeError');
    assert.equal(d.headers[DLQ_HEADERS.errorCode], 'EVENTLOG_TRUNCATED');
    assert.equal(d.headers[DLQ_HEADERS.attempts], '3');
    assert.equal(d.headers[DLQ_HEADERS.topic], 'evidence');
    assert.equal(d.headers[DLQ_HEADERS.offset], '1');
    assert.equal(d.headers[DLQ_HEADERS.group], 'replayer');
    assert.equal(d.headers['traceparent'], '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    await sub.close();
    await dlq.close();
    await bus.close();
  });

  test('a PoisonMessageError is dead-lettered on its first attempt, not retried', async () => {
    const bus = new InProcessBus({ partitions: 1 });
    const attempts: number[] = [];
    const failures: unknown[] = [];
    const sub = await bus.subscribe({
      topic: 'verdicts',
      group: 'issuer',
      maxAttempts: 60,
      retryDelayMs: () => 1_000,
      handler: async (m) => {
        if (dec(m.value) !== 'poison') return;
        attempts.push(m.attempt);
        throw new PoisonMessageError('VERDICT_INVALID', 'verdict without attestation id');
      },
      onError: (err) => void failures.push(err),
    });
    const dead: BusMessage[] = [];
    const dlq = await bus.subscribe({
      topic: 'verdicts.dlq',
      group: 'ops',
      handler: async (m) => void dead.push(m),
    });
    await bus.publish('verdicts', 'host-1', enc('poison'));
    await until(() => dead.length === 1, 2_000);
    assert.deepEqual(attempts, [1]);
    assert.equal(failures.length, 1);
    const d = dead[0]!;
    assert.equal(d.headers[DLQ_HEADERS.errorName], 'PoisonMessageError');
    assert.equal(d.headers[DLQ_HEADERS.errorCode], 'VERDICT_INVALID');
    assert.equal(d.headers[DLQ_HEADERS.reason], 'verdict without attestation id');
    assert.equal(d.headers[DLQ_HEADERS.attempts], '1');
    await sub.close();
    await dlq.close();
    await bus.close();
  });

  test('an attempt that hangs past handlerTimeoutMs is aborted and retried; the partition moves on', async () => {
    const bus = new InProcessBus({ partitions: 1 });
    const signals: AbortSignal[] = [];
    const handled: string[] = [];
    const errors: unknown[] = [];
    const sub = await bus.subscribe({
      topic: 't',
      group: 'g',
      handlerTimeoutMs: 50,
      retryDelayMs: () => 0,
      onError: (error) => errors.push(error),
      handler: async (m) => {
        signals.push(m.signal);
        if (dec(m.value) === 'hangs-once' && m.attempt === 1) await new Promise(() => {});
        handled.push(`${dec(m.value)}#${m.attempt}`);
      },
    });
    await bus.publish('t', 'h', enc('hangs-once'));
    await bus.publish('t', 'h', enc('next'));
    await until(() => handled.length === 2);
    assert.deepEqual(handled, ['hangs-once#2', 'next#1']);
    assert.equal(signals[0]!.aborted, true, 'the hung attempt saw its signal abort');
    assert.equal(signals[1]!.aborted, false);
    assert.equal((errors[0] as { code?: string }).code, 'BUS_HANDLER_TIMEOUT');
    await sub.close();
    await bus.close();
  });

  test('a handler that fails now and then loses nothing and dead-letters nothing', async () => {
    const bus = new InProcessBus({ partitions: 3 });
    const done = new Set<string>();
    let failures = 0;
    const sub = await bus.subscribe({
      topic: 't',
      group: 'g',
      maxAttempts: 4,
      retryDelayMs: () => 0,
      handler: async (m) => {
        if (m.attempt < 3 && Math.random() < 0.3) {
          failures++;
          throw new Error('transient');
        }
        done.add(dec(m.value));
      },
    });
    const dead: string[] = [];
    const dlq = await bus.subscribe({
      topic: 't.dlq',
      group: 'g',
      handler: async (m) => void dead.push(dec(m.value)),
    });
    for (let i = 0; i < 400; i++) await bus.publish('t', `k${i % 17}`, enc(String(i)));
    await until(() => done.size === 400);
    assert.ok(failures > 0, 'some handler calls failed');
    assert.deepEqual(dead, []);
    await sub.close();
    await dlq.close();
    await bus.close();
  });

  test('close without draining redelivers the message in hand to the next member; committed ones are not', async () => {
    const bus = new InProcessBus({ partitions: 1 });
    const handledByA: string[] = [];
    let stuck: BusMessage | undefined;
    const commits: bigint[] = [];
    const a = await bus.subscribe({
      topic: 't',
      group: 'g',
      onCommit: (c) => commits.push(c.offset),
      handler: async (m) => {
        if (dec(m.value) === 'slow') {
          stuck = m;
          await new Promise((resolve) => m.signal.addEventListener('abort', resolve));
          return;
        }
        handledByA.push(dec(m.value));
      },
    });
    for (const body of ['one', 'two', 'slow', 'three']) await bus.publish('t', 'host', enc(body));
    await until(() => stuck !== undefined);
    await a.close({ drain: false });
    assert.equal(stuck!.signal.aborted, true);
    assert.deepEqual(commits, [1n, 2n]);
    const handledByB: string[] = [];
    const b = await bus.subscribe({
      topic: 't',
      group: 'g',
      handler: async (m) => void handledByB.push(dec(m.value)),
    });
    await until(() => handledByB.length === 2);
    assert.deepEqual(handledByA, ['one', 'two']);
    assert.deepEqual(handledByB, ['slow', 'three']);
    await b.close();
    await bus.close();
  });

  test('a draining close waits for the handler in hand and commits it, so the next member starts after it', async () => {
    const bus = new InProcessBus({ partitions: 1 });
    let release: () => void = () => {};
    let started = false;
    const a = await bus.subscribe({
      topic: 't',
      group: 'g',
      handler: async () => {
        started = true;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    });
    await bus.publish('t', 'host', enc('first'));
    await bus.publish('t', 'host', enc('second'));
    await until(() => started);
    let closed = false;
    const closing = a.close().then(() => {
      closed = true;
    });
    await delay(20);
    assert.equal(closed, false, 'close waits for the running handler');
    release();
    await closing;
    const seen: string[] = [];
    const b = await bus.subscribe({
      topic: 't',
      group: 'g',
      handler: async (m) => void seen.push(dec(m.value)),
    });
    await until(() => seen.length === 1);
    await delay(20);
    assert.deepEqual(seen, ['second']);
    await b.close();
    await bus.close();
  });

  test('a published buffer is copied, headers pass through, and publishing after close fails with a code', async () => {
    const bus = new InProcessBus();
    const got: BusMessage[] = [];
    const sub = await bus.subscribe({ topic: 't', group: 'g', handler: async (m) => void got.push(m) });
    const buf = enc('abc');
    await bus.publish('t', 'h', buf, { traceparent: 'tp', 'x-hostgate-attestation': 'att-1' });
    buf[0] = 0x7a;
    await until(() => got.length === 1);
    assert.equal(dec(got[0]!.value), 'abc');
    assert.equal(got[0]!.headers['traceparent'], 'tp');
    assert.equal(got[0]!.headers['x-hostgate-attestation'], 'att-1');
    await sub.close();
    await bus.close();
    await assert.rejects(bus.publish('t', 'h', buf), { code: 'BUS_CLOSED' });
  });
});
