// The store every service writes through: a tiny PostgreSQL interface with two adapters —
// PGlite (embedded, a data folder per service) and a real server via `pg` when
// DATABASE_URL is set. Each service keeps its tables in its own schema, so one server (or
// one embedded instance in the all-in-one process) can hold all of them without overlap.
import { createHash } from 'node:crypto';

export interface QueryResult<R> {
  rows: R[];
  /** Rows returned, or rows changed for INSERT/UPDATE/DELETE. */
  rowCount: number;
}

/** SQL with $1…$n parameters. int8 columns come back as bigint on both adapters. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Migration {
  /** Stable, unique, applied in array order: `0001_hosts`. */
  id: string;
  /** One or more statements; runs inside the migration transaction. */
  sql: string;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Schema holding this service's tables; unqualified names resolve to it. */
  readonly schema: string;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Use only `tx` inside — the embedded adapter serialises, so `db.query` there would wait forever.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Applies the migrations not yet applied, in order, under a lock; returns the ids applied now. */
  migrate(migrations: readonly Migration[]): Promise<string[]>;
  close(): Promise<void>;
}

export type DbErrorCode = 'DB_BAD_SCHEMA' | 'DB_MIGRATION_INVALID' | 'DB_MIGRATION_CHANGED' | 'DB_CLOSED';

export class DbError extends Error {
  override readonly name = 'DbError';
  readonly code: DbErrorCode;
  readonly migration: string | undefined;
  constructor(code: DbErrorCode, message: string, migration?: string) {
    super(message);
    this.code = code;
    this.migration = migration;
  }
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** Lower-case identifier safe to splice into SQL; throws DB_BAD_SCHEMA otherwise. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_RE.test(schema))
    throw new DbError('DB_BAD_SCHEMA', `schema name must match ${SCHEMA_RE}, got ${JSON.stringify(schema)}`);
  return schema;
}

/** `quote-collector` -> `quote_collector`. */
export function schemaForService(service: string): string {
  return checkSchemaName(service.toLowerCase().replace(/[^a-z0-9_]/g, '_'));
}

/** What migrate() needs from an open transaction: parameterised queries and multi-statement scripts. */
export interface MigrationTx extends Queryable {
  exec(sql: string): Promise<void>;
}

function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Shared by both adapters; `tx` is already inside a transaction. */
export async function applyMigrations(
  tx: MigrationTx,
  schema: string,
  migrations: readonly Migration[],
): Promise<string[]> {
  const seen = new Set<string>();
  for (const m of migrations) {
    if (m.id.trim() === '' || seen.has(m.id))
      throw new DbError(
        'DB_MIGRATION_INVALID',
        `migration ids must be unique and non-empty: '${m.id}'`,
        m.id,
      );
    seen.add(m.id);
  }
  // Replicas starting together: one migrates, the others wait here and then find nothing to do.
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hostgate-migrate:${schema}`]);
  await tx.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await tx.exec(
    `CREATE TABLE IF NOT EXISTS "${schema}".hostgate_migrations (
       id text PRIMARY KEY,
       checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  const { rows } = await tx.query<{ id: string; checksum: string }>(
    `SELECT id, checksum FROM "${schema}".hostgate_migrations`,
  );
  const applied = new Map(rows.map((r) => [r.id, r.checksum]));
  const done: string[] = [];
  for (const m of migrations) {
    const sum = checksum(m.sql);
    const previous = applied.get(m.id);
    if (previous !== undefined) {
      if (previous !== sum)
        throw new DbError(
          'DB_MIGRATION_CHANGED',
          `migration ${m.id} was edited after it was applied to schema ${schema}; add a new migration instead`,
          m.id,
        );
      continue;
    }
    await tx.exec(m.sql);
    await tx.query(`INSERT INTO "${schema}".hostgate_migrations (id, checksum) VALUES ($1, $2)`, [m.id, sum]);
    done.push(m.id);
  }
  return done;
}
