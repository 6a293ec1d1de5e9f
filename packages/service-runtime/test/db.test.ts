// Both store adapters pass the same contract. The PostgreSQL server half runs only when
// DATABASE_URL is set; each test gets its own schema and drops it afterwards.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestSchema, postgresMissing } from '@hostgate/testkit/postgres';
import {
  type Db,
  DbError,
  openEmbeddedPostgres,
  openPgliteDb,
  openPostgresDb,
  seedFromTemplate,
} from '../src/index.ts';

const pgSkip = postgresMissing() ?? false;

type Open = (t: TestContext) => Promise<Db>;

const adapters: { name: string; skip: string | false; open: Open }[] = [
  {
    name: 'pglite',
    skip: false,
    open: async (t) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-pglite-'));
      const db = await openPgliteDb(dir, 'svc');
      t.after(async () => {
        await db.close();
        await rm(dir, { recursive: true, force: true });
      });
      return db;
    },
  },
  {
    name: 'postgres',
    skip: pgSkip,
    open: async (t) => {
      const s = await createTestSchema();
      const db = await openPostgresDb(s.url, s.schema, { maxConnections: 4 });
      t.after(async () => {
        await db.close();
        await s.drop();
      });
      return db;
    },
  },
];

const migrations = [
  { id: '0001_hosts', sql: 'CREATE TABLE hosts (id text PRIMARY KEY, boots int8 NOT NULL);' },
  {
    id: '0002_hosts_seen',
    sql: 'ALTER TABLE hosts ADD COLUMN seen timestamptz; CREATE INDEX hosts_seen ON hosts (seen);',
  },
];

for (const a of adapters) {
  test(`${a.name}: migrate applies in order once, tables land in the service schema`, {
    skip: a.skip,
  }, async (t) => {
    const db = await a.open(t);
    assert.deepEqual(await db.migrate(migrations.slice(0, 1)), ['0001_hosts']);
    assert.deepEqual(await db.migrate(migrations), ['0002_hosts_seen']);
    assert.deepEqual(await db.migrate(migrations), []);
    // Only this store's schema and the default one: a shared PostgreSQL server holds other
    // tests' schemas, some with their own 'hosts' table.
    const { rows } = await db.query<{ table_schema: string }>(
      "SELECT table_schema FROM information_schema.tables WHERE table_name = 'hosts' AND table_schema IN ($1, 'public')",
      [db.schema],
    );
    assert.deepEqual(
      rows.map((r) => r.table_schema),
      [db.schema],
    );
  });

  test(`${a.name}: parameters, bigint int8, rowCount for writes`, { skip: a.skip }, async (t) => {
    const db = await a.open(t);
    await db.migrate(migrations);
    const ins = await db.query('INSERT INTO hosts (id, boots) VALUES ($1, $2), ($3, $4)', [
      'a',
      1n,
      'b',
      2n ** 60n,
    ]);
    assert.equal(ins.rowCount, 2);
    const { rows } = await db.query<{ id: string; boots: bigint }>('SELECT id, boots FROM hosts ORDER BY id');
    assert.deepEqual(rows, [
      { id: 'a', boots: 1n },
      { id: 'b', boots: 2n ** 60n },
    ]);
    const upd = await db.query("UPDATE hosts SET seen = now() WHERE id = 'a'");
    assert.equal(upd.rowCount, 1);
    // A hostile string is data, never SQL.
    await db.query('INSERT INTO hosts (id, boots) VALUES ($1, 0)', ["x'); DROP TABLE hosts; --"]);
    assert.equal((await db.query('SELECT id FROM hosts')).rows.length, 3);
  });

  test(`${a.name}: a transaction commits on success and rolls back on throw`, { skip: a.skip }, async (t) => {
    const db = await a.open(t);
    await db.migrate(migrations);
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO hosts (id, boots) VALUES ('kept', 1)");
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO hosts (id, boots) VALUES ('lost', 1)");
        throw new Error('abort');
      }),
      /abort/,
    );
    const { rows } = await db.query<{ id: string }>('SELECT id FROM hosts');
    assert.deepEqual(
      rows.map((r) => r.id),
      ['kept'],
    );
  });

  test(`${a.name}: a failing migration leaves nothing behind`, { skip: a.skip }, async (t) => {
    const db = await a.open(t);
    await assert.rejects(
      db.migrate([
        ...migrations,
        { id: '0003_broken', sql: 'CREATE TABLE t3 (x int); SELECT * FROM no_such_table;' },
      ]),
    );
    // Same transaction: 0001 and 0002 were rolled back too, so they apply now.
    assert.deepEqual(await db.migrate(migrations), ['0001_hosts', '0002_hosts_seen']);
    const t3 = await db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 't3'");
    assert.equal(t3.rows.length, 0);
  });

  test(`${a.name}: an edited migration is refused with DB_MIGRATION_CHANGED`, { skip: a.skip }, async (t) => {
    const db = await a.open(t);
    await db.migrate(migrations);
    const edited = [{ id: '0001_hosts', sql: 'CREATE TABLE hosts (id text);' }];
    await assert.rejects(db.migrate(edited), (err: unknown) => {
      assert.ok(err instanceof DbError);
      assert.equal(err.code, 'DB_MIGRATION_CHANGED');
      assert.equal(err.migration, '0001_hosts');
      return true;
    });
    await assert.rejects(
      db.migrate([migrations[0]!, migrations[0]!]),
      (err: unknown) => err instanceof DbError && err.code === 'DB_MIGRATION_INVALID',
    );
  });
}

test('pglite: one embedded instance keeps two services apart by schema', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const a = embedded.db('svc_a');
  const b = embedded.db('svc_b');
  await a.migrate([{ id: '1', sql: 'CREATE TABLE items (v text);' }]);
  await b.migrate([{ id: '1', sql: 'CREATE TABLE items (v int);' }]);
  // Interleaved statements never run under the other view's search path.
  await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => a.query('INSERT INTO items VALUES ($1)', [`a${i}`])),
    ...Array.from({ length: 20 }, (_, i) => b.query('INSERT INTO items VALUES ($1)', [i])),
  ]);
  assert.equal((await a.query("SELECT * FROM items WHERE v LIKE 'a%'")).rows.length, 20);
  assert.equal((await b.query('SELECT sum(v)::int AS s FROM items')).rows[0]?.['s'], 190);
  assert.throws(
    () => embedded.db('Bad-Name'),
    (err: unknown) => err instanceof DbError && err.code === 'DB_BAD_SCHEMA',
  );
});

test('pglite: data survives closing and reopening the folder', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-pglite-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await openPgliteDb(dir, 'svc');
  await first.migrate(migrations);
  await first.query("INSERT INTO hosts (id, boots) VALUES ('persisted', 3)");
  await first.close();
  await assert.rejects(
    first.query('SELECT 1'),
    (err: unknown) => err instanceof DbError && err.code === 'DB_CLOSED',
  );
  const second = await openPgliteDb(dir, 'svc');
  t.after(() => second.close());
  assert.deepEqual(await second.migrate(migrations), []);
  assert.deepEqual((await second.query('SELECT id, boots FROM hosts')).rows, [
    { id: 'persisted', boots: 3n },
  ]);
});

test('postgres: replicas migrating at once apply each migration exactly once', {
  skip: pgSkip,
}, async (t) => {
  const s = await createTestSchema();
  const dbs = await Promise.all([1, 2, 3].map(() => openPostgresDb(s.url, s.schema, { maxConnections: 2 })));
  t.after(async () => {
    await Promise.all(dbs.map((d) => d.close()));
    await s.drop();
  });
  const applied = await Promise.all(dbs.map((d) => d.migrate(migrations)));
  assert.deepEqual(applied.flat().sort(), ['0001_hosts', '0002_hosts_seen']);
});

test('postgres: parameterised statements are prepared once per connection; a text without parameters runs as sent', {
  skip: pgSkip,
}, async (t) => {
  const s = await createTestSchema();
  const db = await openPostgresDb(s.url, s.schema, { maxConnections: 1 });
  t.after(async () => {
    await db.close();
    await s.drop();
  });
  await db.migrate(migrations);
  const text = 'SELECT boots FROM hosts WHERE id = $1';
  await db.query('INSERT INTO hosts (id, boots) VALUES ($1, $2)', ['a', 7]);
  for (let i = 0; i < 3; i++) assert.deepEqual((await db.query(text, ['a'])).rows, [{ boots: 7n }]);
  const prepared = await db.query<{ statement: string }>(
    'SELECT statement FROM pg_prepared_statements WHERE statement = $1',
    [text],
  );
  assert.equal(prepared.rowCount, 1);
  // A text without parameters runs as sent, unprepared (migrations hold several statements in one).
  const literal = "SELECT boots FROM hosts WHERE id = 'a'";
  assert.deepEqual((await db.query(literal)).rows, [{ boots: 7n }]);
  const unprepared = await db.query('SELECT 1 FROM pg_prepared_statements WHERE statement = $1', [literal]);
  assert.equal(unprepared.rowCount, 0);
});

test('postgres: an unreachable server fails at open, not at first query', async () => {
  // Port 1 on loopback: nothing listens there.
  await assert.rejects(openPostgresDb('postgres://postgres@127.0.0.1:1/test', 'svc'), /ECONNREFUSED|connect/);
});

test('pglite: new data folders are seeded from one initialised template per cache', async (t) => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'hostgate-tpl-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const cacheDir = path.join(base, 'cache');
  const first = await openPgliteDb(path.join(base, 'a'), 'svc', { cacheDir });
  await first.migrate(migrations);
  await first.query("INSERT INTO hosts (id, boots) VALUES ('only-in-a', 1)");
  await first.close();
  const templates = await readdir(cacheDir);
  assert.equal(templates.length, 1, templates.join());
  assert.match(templates[0] ?? '', /^pglite-.+-template$/);
  // A second folder starts from the pristine template, not from folder a; a staging folder
  // left by an interrupted copy is cleared.
  await mkdir(path.join(base, 'b.seeding-left'), { recursive: true });
  assert.equal(await seedFromTemplate(path.join(base, 'b'), cacheDir), true);
  assert.deepEqual((await readdir(base)).sort(), ['a', 'b', 'cache']);
  assert.equal(
    await seedFromTemplate(path.join(base, 'a'), cacheDir),
    false,
    'a non-empty folder is never replaced',
  );
  const t0 = Date.now();
  const second = await openPgliteDb(path.join(base, 'b'), 'svc', { cacheDir });
  t.diagnostic(`seeded open took ${Date.now() - t0} ms`);
  t.after(() => second.close());
  assert.deepEqual(await second.migrate(migrations), ['0001_hosts', '0002_hosts_seen']);
  assert.equal((await second.query('SELECT * FROM hosts')).rows.length, 0);
});
