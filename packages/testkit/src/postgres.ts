// The PostgreSQL test tier: tests use the server named by DATABASE_URL (on these machines
// postgres://postgres@127.0.0.1:5432/test) and skip, with the reason, when it is unset.
// Each test works in a schema of its own and drops it afterwards, so parallel test files
// and earlier crashed runs never see each other's tables.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server URL from DATABASE_URL, or undefined when the PostgreSQL tier is off. */
export function databaseUrl(): string | undefined {
  const url = process.env['DATABASE_URL'];
  return url === undefined || url.trim() === '' ? undefined : url;
}

/** Skip reason when no server is configured; undefined when the tier can run. */
export function postgresMissing(): string | undefined {
  return databaseUrl() === undefined
    ? 'DATABASE_URL not set (e.g. postgres://postgres@127.0.0.1:5432/test); PostgreSQL server tier skipped'
    : undefined;
}

export interface TestSchema {
  url: string;
  /** `hg_test_<12 hex>`: lower-case, safe to splice into SQL. */
  schema: string;
  /** Drops the schema and everything in it; idempotent. */
  drop(): Promise<void>;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh, uniquely named schema on the DATABASE_URL server (throws when unset). */
export async function createTestSchema(prefix = 'hg_test'): Promise<TestSchema> {
  const url = databaseUrl();
  if (url === undefined) throw new Error(postgresMissing());
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`bad schema prefix ${JSON.stringify(prefix)}`);
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withClient(url, (c) => c.query(`CREATE SCHEMA "${schema}"`));
  let dropped: Promise<void> | undefined;
  return {
    url,
    schema,
    drop: () => {
      dropped ??= withClient(url, async (c) => {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      });
      return dropped;
    },
  };
}

/** Whether a schema exists (tests assert their cleanup). */
export async function schemaExists(url: string, schema: string): Promise<boolean> {
  return withClient(url, async (c) => {
    const r = await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
    return r.rows.length > 0;
  });
}

/** Anything that runs a parameterised statement: a service Db, one of its transactions. */
export interface TupleCounterQueries {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
}

/**
 * Tuples the current transaction has read from `relation` so far: by sequential scans for a table,
 * by index scans for an index (PostgreSQL and PGlite alike). Tests of a statement's plan compare two
 * readings around it.
 */
export async function xactTuplesRead(q: TupleCounterQueries, relation: string): Promise<number> {
  const { rows } = await q.query<{ n: bigint | number | string }>(
    'SELECT pg_stat_get_xact_tuples_returned($1::regclass) AS n',
    [relation],
  );
  return Number(rows[0]!.n);
}
