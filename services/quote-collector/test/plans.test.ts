// Plans of the collector's batched statements: a cached plan of completeAttestations, made for a batch
// of unknown size, reads attestations by key, not the whole table (it grows with every attestation and
// is never pruned); addNonces runs its cached plan instead of being planned again on every call.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db, Queryable } from '@hostgate/service-runtime';
import { postgresMissing, xactTuplesRead } from '@hostgate/testkit/postgres';
import { QuoteCollectorStore } from '../src/store.ts';
import { openTestDb } from './helpers.ts';

for (const kind of ['pglite', 'postgres'] as const) {
  const skip = kind === 'postgres' ? postgresMissing() : undefined;
  test(`${kind}: recording outcomes reads attestations by key after the table has grown`, {
    skip,
  }, async (t) => {
    const { db, close } = await openTestDb(kind);
    t.after(close);
    await db.transaction(async (tx) => {
      const store = new QuoteCollectorStore({ ...db, query: (sql, params) => tx.query(sql, params) } as Db);
      // Every plan generic (a batch of unknown size), as the plan cache picks once a statement has run a while.
      await tx.query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", []);
      const outcome = (id: string) => ({
        attestationId: id,
        outcome: 'ISSUED' as const,
        certificateEvent: new Uint8Array([1]),
      });
      await tx.query(
        "INSERT INTO attestations (attestation_id, host_id, created_at_ms) VALUES ('early', 'h', 1)",
        [],
      );
      assert.deepEqual([...(await store.completeAttestations([outcome('early')], 2))], ['early']);
      await tx.query(
        `INSERT INTO attestations (attestation_id, host_id, created_at_ms, outcome, completed_at_ms)
         SELECT 'done-' || i, 'h', i, 'ISSUED', i FROM generate_series(1, 5000) AS i`,
        [],
      );
      await tx.query(
        `INSERT INTO attestations (attestation_id, host_id, created_at_ms)
         SELECT 'late-' || i, 'h', i FROM generate_series(1, 100) AS i`,
        [],
      );
      for (let i = 1; i <= 10; i++) {
        const before = await xactTuplesRead(tx, 'attestations');
        const done = await store.completeAttestations([outcome(`late-${i}`)], 3);
        assert.deepEqual([...done], [`late-${i}`]);
        const read = (await xactTuplesRead(tx, 'attestations')) - before;
        assert.ok(read < 100, `call ${i} read ${read} attestations sequentially`);
      }
    });
  });
}

/** How often the transaction's connection planned the prepared statement whose text contains `marker`. */
async function plans(tx: Queryable, marker: string): Promise<{ generic: number; custom: number }> {
  const { rows } = await tx.query<{ generic: bigint | number; custom: bigint | number }>(
    `SELECT coalesce(sum(generic_plans), 0) AS generic, coalesce(sum(custom_plans), 0) AS custom
       FROM pg_prepared_statements WHERE strpos(statement, $1) > 0`,
    [marker],
  );
  return { generic: Number(rows[0]!.generic), custom: Number(rows[0]!.custom) };
}

test('postgres: adding nonces uses the cached plan, not one planned per call', {
  skip: postgresMissing(),
}, async (t) => {
  const { db, close } = await openTestDb('postgres');
  t.after(close);
  await db.transaction(async (tx) => {
    const store = new QuoteCollectorStore({ ...db, query: (sql, params) => tx.query(sql, params) } as Db);
    for (let i = 0; i < 20; i++) {
      const nonce = new Uint8Array(32).fill(i);
      const [added] = await store.addNonces(
        [{ nonce, akName: new Uint8Array([i % 3]), issuedAtMs: 1, expiresAtMs: 100 }],
        1000,
      );
      assert.equal(added, true);
    }
    // The plan cache tries five custom plans, then keeps the generic one when it is no dearer.
    const p = await plans(tx, 'INSERT INTO nonces');
    assert.equal(p.generic + p.custom, 20);
    assert.ok(p.custom <= 5, `${p.custom} custom plans of 20`);
  });
});
