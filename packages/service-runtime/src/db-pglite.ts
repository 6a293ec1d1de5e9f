// Embedded PostgreSQL (PGlite, WebAssembly) for `npm start` and tests: no server to run.
// One PGlite instance costs ~0.5 s to open (seconds more for a new folder's initdb, see
// pglite-template.ts) and several hundred MB of address space, so the all-in-one process
// opens one and hands each service a schema-scoped view of it.
import { mkdir } from 'node:fs/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { needsInitdb, seedFromTemplate } from './pglite-template.ts';
import {
  applyMigrations,
  checkSchemaName,
  type Db,
  DbError,
  type Migration,
  type MigrationTx,
  type QueryResult,
  type Queryable,
} from './db.ts';

const INT8_OID = 20;

function result<R>(r: { rows: unknown[]; affectedRows?: number }): QueryResult<R> {
  return { rows: r.rows as R[], rowCount: r.affectedRows || r.rows.length };
}

function wrapTx(tx: Transaction): MigrationTx {
  return {
    query: async <R>(sql: string, params?: readonly unknown[]) =>
      result<R>(await tx.query(sql, params === undefined ? undefined : [...params])),
    exec: async (sql: string) => {
      await tx.exec(sql);
    },
  };
}

export interface EmbeddedPostgres {
  readonly dataDir: string | undefined;
  /** A Db whose unqualified names resolve to `schema`; closing it leaves the instance open. */
  db(schema: string): Db;
  close(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Seed a new data folder from the per-user initialised template (default true). */
  useTemplate?: boolean;
  /** Where the template lives (default `$XDG_CACHE_HOME/hostgate` or `~/.cache/hostgate`). */
  cacheDir?: string;
}

/** Opens (creating on first use) a PGlite data folder; undefined keeps everything in memory. */
export async function openEmbeddedPostgres(
  dataDir: string | undefined,
  opts: EmbeddedOptions = {},
): Promise<EmbeddedPostgres> {
  if (dataDir !== undefined) {
    if ((opts.useTemplate ?? true) && (await needsInitdb(dataDir)))
      await seedFromTemplate(dataDir, opts.cacheDir);
    await mkdir(dataDir, { recursive: true });
  }
  // int8 always as bigint (PGlite's default switches to number for small values), as in db-postgres.
  const pg = await PGlite.create(dataDir, { parsers: { [INT8_OID]: (v: string) => BigInt(v) } });
  let closed = false;
  // PGlite has one session shared by every view. Its search path is set (outside any transaction,
  // so no rollback undoes it) only when the next statement belongs to another schema, and every
  // statement or transaction runs under one lock so no other view's runs in between. A plain
  // query then costs one statement instead of BEGIN + SET LOCAL + it + COMMIT.
  let sessionSchema: string | undefined;
  let lock: Promise<unknown> = Promise.resolve();
  const inSchema = <T>(schema: string, fn: () => Promise<T>): Promise<T> => {
    const run = lock.then(async () => {
      if (sessionSchema !== schema) {
        sessionSchema = undefined;
        await pg.exec(`SET search_path TO "${schema}"`);
        sessionSchema = schema;
      }
      return fn();
    });
    lock = run.catch(() => undefined);
    return run;
  };
  return {
    dataDir,
    db(schemaName: string): Db {
      const schema = checkSchemaName(schemaName);
      let viewClosed = false;
      const isClosed = () =>
        closed || viewClosed
          ? Promise.reject(
              new DbError('DB_CLOSED', `database ${dataDir ?? '(memory)'} / ${schema} is closed`),
            )
          : undefined;
      // Two services' statements never run under each other's schema (see inSchema above).
      const inTransaction = <T>(fn: (tx: MigrationTx) => Promise<T>): Promise<T> =>
        isClosed() ?? inSchema(schema, () => pg.transaction((tx) => fn(wrapTx(tx))));
      return {
        kind: 'pglite',
        schema,
        query: <R>(sql: string, params?: readonly unknown[]) =>
          isClosed() ??
          inSchema(schema, async () =>
            result<R>(await pg.query(sql, params === undefined ? undefined : [...params])),
          ),
        transaction: <T>(fn: (tx: Queryable) => Promise<T>) => inTransaction(fn),
        migrate: (migrations: readonly Migration[]) =>
          inTransaction((tx) => applyMigrations(tx, schema, migrations)),
        close: async () => {
          viewClosed = true;
        },
      };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}

/** A standalone embedded Db that owns its PGlite instance (closing the Db closes it). */
export async function openPgliteDb(
  dataDir: string | undefined,
  schema: string,
  opts: EmbeddedOptions = {},
): Promise<Db> {
  const embedded = await openEmbeddedPostgres(dataDir, opts);
  const view = embedded.db(schema);
  return {
    ...view,
    close: async () => {
      await view.close();
      await embedded.close();
    },
  };
}
