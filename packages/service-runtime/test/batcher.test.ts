import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, BatcherError } from '../src/index.ts';

/** A batch function that records its batches and answers each item doubled after `ms`. */
function doubling(ms = 5) {
  const seen: number[][] = [];
  const run = async (items: readonly number[]) => {
    seen.push([...items]);
    await new Promise((r) => setTimeout(r, ms));
    return items.map((n) => n * 2);
  };
  return { seen, run };
}

test('calls made together go in one batch and each gets its own result', async () => {
  const { seen, run } = doubling();
  const b = new Batcher(run);
  const results = await Promise.all([1, 2, 3, 4].map((n) => b.call(n)));
  assert.deepEqual(results, [2, 4, 6, 8]);
  assert.deepEqual(seen, [[1, 2, 3, 4]]);
  assert.equal(b.batches, 1);
  assert.equal(b.items, 4);
});

test('calls made while a batch runs wait and go together in the next one', async () => {
  const { seen, run } = doubling(20);
  const b = new Batcher(run);
  const first = b.call(1);
  await new Promise((r) => setTimeout(r, 5)); // the first batch is running
  const later = [2, 3, 4].map((n) => b.call(n));
  assert.deepEqual(await Promise.all([first, ...later]), [2, 4, 6, 8]);
  assert.deepEqual(seen, [[1], [2, 3, 4]]);
});

test('maxInFlight lets batches overlap; maxBatch caps their size', async () => {
  const { seen, run } = doubling(10);
  let running = 0;
  let most = 0;
  const wrapped = new Batcher(
    async (items: readonly number[]) => {
      running++;
      most = Math.max(most, running);
      try {
        return await run(items);
      } finally {
        running--;
      }
    },
    { maxBatch: 2, maxInFlight: 2 },
  );
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => wrapped.call(n)));
  assert.deepEqual(results, [2, 4, 6, 8, 10]);
  assert.deepEqual(seen, [[1, 2], [3, 4], [5]]);
  assert.equal(most, 2);
  assert.equal(wrapped.batches, 3);
});

test('items with the same key never share a batch and keep their call order', async () => {
  const seen: string[][] = [];
  const b = new Batcher(
    async (items: readonly { host: string; n: number }[]) => {
      seen.push(items.map((i) => `${i.host}${i.n}`));
      return items.map((i) => i.n);
    },
    { keyOf: (i) => i.host },
  );
  const calls = [
    { host: 'a', n: 1 },
    { host: 'b', n: 2 },
    { host: 'a', n: 3 },
    { host: 'c', n: 4 },
    { host: 'a', n: 5 },
  ].map((i) => b.call(i));
  assert.deepEqual(await Promise.all(calls), [1, 2, 3, 4, 5]);
  assert.deepEqual(seen, [['a1', 'b2', 'c4'], ['a3'], ['a5']]);
});

test('a failing batch is run again item by item: only the bad item fails', async () => {
  const seen: number[][] = [];
  const b = new Batcher(async (items: readonly number[]) => {
    seen.push([...items]);
    if (items.includes(13)) throw new Error('thirteen spoils the batch');
    return items.map((n) => n + 1);
  });
  const settled = await Promise.allSettled([12, 13, 14].map((n) => b.call(n)));
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [13, 'thirteen spoils the batch', 15],
  );
  assert.deepEqual(seen[0], [12, 13, 14]);
  assert.deepEqual(
    seen.slice(1).sort((x, y) => x[0]! - y[0]!),
    [[12], [13], [14]],
  );
});

test('a batch function answering with the wrong number of results fails its calls', async () => {
  const b = new Batcher(async (items: readonly number[]) => items.slice(1));
  await assert.rejects(
    b.call(1),
    (e: unknown) => e instanceof BatcherError && e.code === 'BATCH_RESULT_COUNT',
  );
  const both = await Promise.allSettled([b.call(1), b.call(2)]);
  assert.ok(both.every((s) => s.status === 'rejected' && s.reason instanceof BatcherError));
});

test('options are checked', () => {
  const run = async (items: readonly number[]) => items;
  assert.throws(() => new Batcher(run, { maxBatch: 0 }), RangeError);
  assert.throws(() => new Batcher(run, { maxInFlight: 1.5 }), RangeError);
});

test('it keeps working after failures: the next calls batch as before', async () => {
  let fail = true;
  const b = new Batcher(async (items: readonly number[]) => {
    if (fail) throw new Error('store away');
    return items;
  });
  await assert.rejects(b.call(1), /store away/);
  fail = false;
  assert.deepEqual(await Promise.all([b.call(7), b.call(8)]), [7, 8]);
});
