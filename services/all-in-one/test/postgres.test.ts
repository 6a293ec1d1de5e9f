// The all-in-one on a real PostgreSQL server (DATABASE_URL): each service migrates its own
// schema. Runs in a throw-away database so the fixed schema names never meet other tests'.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHealth } from '@hostgate/service-runtime';
import { databaseUrl, postgresMissing } from '@hostgate/testkit/postgres';
import pg from 'pg';
import { startAllInOne } from '../src/index.ts';

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: databaseUrl() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

test('on DATABASE_URL: four services SERVING, one schema each, clean stop', {
  skip: postgresMissing() ?? false,
}, async (t) => {
  const name = `hg_aio_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  t.after(() => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)));
  const url = new URL(databaseUrl() ?? '');
  url.pathname = `/${name}`;
  const env: NodeJS.ProcessEnv = { DATABASE_URL: url.toString() };
  for (const s of ['QUOTE_COLLECTOR', 'EVENTLOG_REPLAYER', 'POLICY_EVALUATOR', 'HEALTH_CERT_ISSUER'])
    env[`HOSTGATE_${s}_ADDRESS`] = '127.0.0.1:0';
  const app = await startAllInOne({ env, logDestination: new Writable({ write: (_c, _e, cb) => cb() }) });
  let stopped = false;
  t.after(() => (stopped ? undefined : app.stop()));
  assert.equal(app.store, 'postgres');
  for (const s of app.services) assert.equal((await checkHealth(s.address)).status, 'SERVING', s.name);
  const inDb = new pg.Client({ connectionString: url.toString() });
  await inDb.connect();
  const schemas = await inDb
    .query<{ schema_name: string }>(
      "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name NOT IN ('public', 'information_schema') ORDER BY 1",
    )
    .then((r) => r.rows.map((row) => row.schema_name))
    .finally(() => inDb.end());
  assert.deepEqual(schemas, ['health_cert_issuer', 'policy_evaluator', 'quote_collector']);
  assert.equal(await app.stop(), true);
  stopped = true;
});
