import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestSchema, databaseUrl, postgresMissing, schemaExists } from '../src/postgres.ts';

const skip = postgresMissing() ?? false;

test('the skip reason names DATABASE_URL exactly when it is unset', () => {
  assert.equal(postgresMissing() === undefined, databaseUrl() !== undefined);
  if (postgresMissing() !== undefined) assert.match(postgresMissing() ?? '', /DATABASE_URL/);
});

test('each test schema is new, usable, and gone after drop()', { skip }, async () => {
  const a = await createTestSchema();
  const b = await createTestSchema();
  assert.notEqual(a.schema, b.schema);
  assert.match(a.schema, /^hg_test_[0-9a-f]{12}$/);
  const client = new pg.Client({ connectionString: a.url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE "${a.schema}".t (x int)`);
    await client.query(`INSERT INTO "${a.schema}".t VALUES (1)`);
    assert.equal((await client.query(`SELECT count(*)::int AS n FROM "${a.schema}".t`)).rows[0].n, 1);
  } finally {
    await client.end();
  }
  await a.drop();
  await a.drop();
  await b.drop();
  assert.equal(await schemaExists(a.url, a.schema), false);
  assert.equal(await schemaExists(b.url, b.schema), false);
});

test('a bad prefix is refused before touching the server', { skip }, async () => {
  await assert.rejects(createTestSchema('x"; DROP'), /bad schema prefix/);
});
