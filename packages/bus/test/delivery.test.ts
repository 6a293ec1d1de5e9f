import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Cancellation, deliver, Watchdog } from '../src/delivery.ts';
import { BusError, type BusMessage } from '../src/types.ts';

const message = {
  topic: 't',
  partition: 0,
  offset: 7n,
  key: 'host-1',
  value: new Uint8Array([1, 2, 3]),
  headers: { a: 'b' },
};

describe('deliver', () => {
  for (const kind of ['AbortSignal', 'Cancellation'] as const) {
    test(`settles as aborted as soon as its ${kind} aborts, though the handler ignores its signal`, async () => {
      const controller = new AbortController();
      const cancellation = new Cancellation();
      const reason = new BusError('BUS_REVOKED', 'moved');
      let seen: BusMessage | undefined;
      const started = performance.now();
      const outcome = deliver(
        message,
        {
          topic: 't',
          group: 'g',
          handlerTimeoutMs: 10_000,
          handler: async (m) => {
            seen = m;
            await new Promise(() => {});
          },
        },
        kind === 'AbortSignal' ? controller.signal : cancellation,
      );
      await delay(20);
      if (kind === 'AbortSignal') controller.abort(reason);
      else cancellation.abort(reason);
      assert.deepEqual(await outcome, { kind: 'aborted' });
      assert.ok(performance.now() - started < 5000, 'not held until the handler timeout');
      // Read only now, after the abort: the handler still sees it, with its reason.
      assert.equal(seen!.signal.aborted, true);
      assert.equal(seen!.signal.reason, reason);
    });
  }

  test("an attempt's signal aborts on its timeout, the retry gets a fresh one and its own headers", async () => {
    const messages: BusMessage[] = [];
    const errors: unknown[] = [];
    const outcome = await deliver(
      message,
      {
        topic: 't',
        group: 'g',
        handlerTimeoutMs: 50,
        retryDelayMs: () => 0,
        onError: (error) => errors.push(error),
        handler: async (m) => {
          messages.push(m);
          m.headers['changed'] = 'by the handler';
          if (m.attempt === 1) await new Promise(() => {});
        },
      },
      new Cancellation(),
    );
    assert.deepEqual(outcome, { kind: 'handled' });
    assert.equal(messages.length, 2);
    assert.equal(messages[0]!.signal.aborted, true);
    assert.equal((messages[0]!.signal.reason as BusError).code, 'BUS_HANDLER_TIMEOUT');
    assert.equal((errors[0] as BusError).code, 'BUS_HANDLER_TIMEOUT');
    assert.equal(messages[1]!.signal.aborted, false);
    assert.deepEqual(messages[1]!.headers, { a: 'b', changed: 'by the handler' });
    assert.deepEqual(message.headers, { a: 'b' }, "the delivery's own headers are untouched");
    assert.equal(messages[1]!.offset, 7n);
    assert.equal(messages[1]!.key, 'host-1');
  });
});

describe('Watchdog', () => {
  test('each attempt expires at its own deadline, in start order; a disarmed one never does', async () => {
    const watchdog = new Watchdog(100);
    const t0 = performance.now();
    const fired: Array<[string, number]> = [];
    watchdog.arm(() => fired.push(['a', performance.now() - t0]));
    const b = watchdog.arm(() => fired.push(['b', performance.now() - t0]));
    await delay(50);
    watchdog.arm(() => fired.push(['c', performance.now() - t0]));
    watchdog.disarm(b);
    await delay(200);
    assert.deepEqual(
      fired.map(([name]) => name),
      ['a', 'c'],
    );
    assert.ok(fired[0]![1] >= 99, `a fired at ${fired[0]![1]} ms`);
    assert.ok(fired[1]![1] >= 149, `c fired at ${fired[1]![1]} ms, not with a`);
    // Armed again after everything expired: the timer starts anew.
    const again = performance.now();
    const late = await new Promise<number>((resolve) =>
      watchdog.arm(() => resolve(performance.now() - again)),
    );
    assert.ok(late >= 99, `fired at ${late} ms`);
    watchdog.stop();
  });

  test('stop() drops what is armed', async () => {
    const watchdog = new Watchdog(20);
    let fired = false;
    watchdog.arm(() => {
      fired = true;
    });
    watchdog.stop();
    await delay(60);
    assert.equal(fired, false);
  });
});

describe('Cancellation', () => {
  test('calls each listener once, at once when already aborted; an unsubscribed one not at all', () => {
    const cancel = new Cancellation();
    const calls: string[] = [];
    cancel.subscribe(() => calls.push('a'));
    const stop = cancel.subscribe(() => calls.push('b'));
    stop();
    cancel.abort('why');
    cancel.abort('again');
    assert.deepEqual(calls, ['a']);
    assert.equal(cancel.aborted, true);
    assert.equal(cancel.reason, 'why');
    cancel.subscribe(() => calls.push('late'));
    assert.deepEqual(calls, ['a', 'late']);
  });
});
