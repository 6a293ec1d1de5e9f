// recordVerdicts sends its array parameters as literals it builds itself (store.arrayLiteral); the
// server must read from them exactly what it read from the arrays node-postgres converted.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { postgresMissing } from '@hostgate/testkit/postgres';
import { arrayLiteral } from '../src/store.ts';
import { openTestDb } from './harness.ts';

const STRINGS = [
  '',
  'plain',
  'NULL',
  'null',
  ' spaced ',
  'a,b',
  '{braces}',
  '"quoted"',
  'back\\slash',
  '\\"',
  '"\\',
  '\\\\',
  'line\nbreak\ttab',
  'émoji 😀 中文 \uFFFD',
  '{"code":"SECURE_BOOT_OFF","details":{"pcr":"7\\"x"}}',
  'urn:hostgate:host:h-1',
];

/** Element by element as node-postgres writes a text array: quoted, `\` then `"` escaped. */
function reference(values: readonly unknown[]): string {
  const parts = values.map((v) =>
    v === null || v === undefined ? 'NULL' : `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
  );
  return `{${parts.join(',')}}`;
}

test('arrayLiteral writes what node-postgres writes for text, numbers, booleans and nulls', () => {
  assert.equal(arrayLiteral([]), '{}');
  assert.equal(arrayLiteral(STRINGS), reference(STRINGS));
  const mixed = [null, 0, -1, 2_147_483_647, 1.5, true, false, undefined, 'x"y'];
  assert.equal(arrayLiteral(mixed), reference(mixed));
  // What it does not convert is left to node-postgres.
  const other = ['a', new Uint8Array([1]), 'b'];
  assert.equal(arrayLiteral(other), other);
  const invalidDate = [new Date(Number.NaN)];
  assert.equal(arrayLiteral(invalidDate), invalidDate);
});

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;
  test(`the server reads the same values from a literal as from the array (${tier})`, {
    skip,
  }, async (t: TestContext) => {
    const db = await openTestDb(t, tier);
    const n = STRINGS.length;
    const texts: (string | null)[] = [...STRINGS.slice(0, n - 1), null];
    const ints = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? null : i * 1_000_003 - 5));
    const bools = Array.from({ length: n }, (_, i) => (i % 4 === 3 ? null : i % 2 === 0));
    const times = Array.from({ length: n }, (_, i) =>
      i % 5 === 4 ? null : new Date(Date.UTC(2026, 10, 25, 12, 0, i, i * 7)),
    );
    const sql = `SELECT t, i, b, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS ts, o
      FROM unnest($1::text[], $2::int4[], $3::bool[], $4::timestamptz[]) WITH ORDINALITY AS u (t, i, b, ts, o)
      ORDER BY o`;
    const fromArrays = await db.query(sql, [texts, ints, bools, times]);
    const fromLiterals = await db.query(sql, [
      arrayLiteral(texts),
      arrayLiteral(ints),
      arrayLiteral(bools),
      arrayLiteral(times),
    ]);
    assert.equal(fromLiterals.rows.length, n);
    assert.deepEqual(fromLiterals.rows, fromArrays.rows);
    assert.deepEqual(
      fromLiterals.rows.map((r) => r.t),
      texts,
    );
  });
}
