// The policy-evaluator store: golden sets (immutable once published), the active version per class,
// host classes, verdicts by attestation id, each host's last replayed measurements, and the audit log.
// One small interface over Db, so PGlite (embedded) and PostgreSQL behave the same.
import {
  type GoldenSet,
  type GoldenSetDraft,
  PolicyStateError,
  publish,
  validateGoldenSet,
} from '@hostgate/policy';
import type { Db, Queryable } from '@hostgate/service-runtime';

/** Class of a host never assigned one. */
export const DEFAULT_HOST_CLASS = 'default';

export interface StoredGoldenSet {
  readonly set: GoldenSet;
  readonly createdBy: string;
  readonly active: boolean;
}

export interface StoredVerdict {
  readonly attestationId: string;
  readonly verdictId: string;
  /** The Verdict as published (protobuf). */
  readonly verdict: Uint8Array;
}

interface SetRow {
  host_class: string;
  version: number;
  description: string;
  rules: unknown;
  created_at: Date | string;
  created_by: string;
  active?: boolean;
}

function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new TypeError('expected a bytea column');
}

function iso(v: Date | string): string {
  return (v instanceof Date ? v : new Date(v)).toISOString();
}

function jsonOf(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

export interface PolicyStoreOptions {
  /** Parsed golden sets kept (least recently used dropped first); default 256. */
  setCacheSize?: number;
}

/** One verdict to store, judged against `hostClass` and its active version `policyVersion` (0: none). */
export interface VerdictToRecord {
  readonly attestationId: string;
  readonly verdictId: string;
  readonly hostId: string;
  readonly pass: boolean;
  readonly hostClass: string;
  readonly policyVersion: number;
  readonly evaluatedAt: Date;
  readonly verdict: Uint8Array;
  /** The Measurements record, when it replayed (kept as the host's last measurements). */
  readonly measurements: { readonly replayedAt: Date; readonly bytes: Uint8Array } | undefined;
}

/**
 * What recordVerdicts did with one verdict. `current` is the host's class and that class's active
 * version (0: none) as the statement saw them. 'stale': the verdict was judged against another class
 * or version than `current`: nothing was stored, judge again (should the attestation have a verdict
 * already, recording the new judgement returns that one).
 */
export type RecordOutcome =
  | (StoredVerdict & {
      readonly kind: 'stored';
      readonly created: boolean;
      readonly current: { readonly hostClass: string; readonly policyVersion: number };
    })
  | {
      readonly kind: 'stale';
      readonly current: { readonly hostClass: string; readonly policyVersion: number };
    };

export class PolicyStore {
  readonly #db: Db;
  /** Published sets never change, so a parsed set stays valid for good; bounded, least recently used out. */
  readonly #sets = new Map<string, GoldenSet>();
  readonly #setCacheSize: number;
  /** Lookups of sets not cached, one per (class, version) at a time. */
  readonly #loading = new Map<string, Promise<GoldenSet | undefined>>();

  constructor(db: Db, opts: PolicyStoreOptions = {}) {
    const size = opts.setCacheSize ?? 256;
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('setCacheSize must be an integer ≥ 1');
    this.#db = db;
    this.#setCacheSize = size;
  }

  /** Parsed golden sets held now (at most setCacheSize). */
  get cachedSets(): number {
    return this.#sets.size;
  }

  #cached(hostClass: string, version: number): GoldenSet | undefined {
    const key = `${hostClass}\u0000${version}`;
    const set = this.#sets.get(key);
    if (set !== undefined) {
      this.#sets.delete(key);
      this.#sets.set(key, set);
    }
    return set;
  }

  #fromRow(r: SetRow): GoldenSet {
    const cached = this.#cached(r.host_class, r.version);
    if (cached !== undefined) return cached;
    const input: Record<string, unknown> = {
      class: r.host_class,
      version: r.version,
      createdAt: iso(r.created_at),
      rules: jsonOf(r.rules),
    };
    if (r.description !== '') input['description'] = r.description;
    const set = validateGoldenSet(input);
    this.#sets.set(`${r.host_class}\u0000${r.version}`, set);
    if (this.#sets.size > this.#setCacheSize) this.#sets.delete(this.#sets.keys().next().value as string);
    return set;
  }

  /**
   * A published set, parsed and validated once: cached, else one lookup (shared by concurrent callers).
   * The hot path: a set never changes once published, so only which version is active needs the store.
   */
  goldenSet(hostClass: string, version: number): Promise<GoldenSet | undefined> | GoldenSet {
    const cached = this.#cached(hostClass, version);
    if (cached !== undefined) return cached;
    const key = `${hostClass}\u0000${version}`;
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = this.#db
        .query<SetRow>(
          `SELECT host_class, version, description, rules, created_at, created_by FROM golden_sets
            WHERE host_class = $1 AND version = $2`,
          [hostClass, version],
        )
        .then((res) => (res.rows[0] === undefined ? undefined : this.#fromRow(res.rows[0])))
        .finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  async hostClass(hostId: string, q: Queryable = this.#db): Promise<string> {
    const { rows } = await q.query<{ host_class: string }>(
      'SELECT host_class FROM host_classes WHERE host_id = $1',
      [hostId],
    );
    return rows[0]?.host_class ?? DEFAULT_HOST_CLASS;
  }

  /** Puts a host in a class; returns the class before. */
  async assignHostClass(hostId: string, hostClass: string, actor: string): Promise<string> {
    return this.#db.transaction(async (tx) => {
      const previous = await this.hostClass(hostId, tx);
      await tx.query(
        `INSERT INTO host_classes (host_id, host_class, assigned_at, assigned_by) VALUES ($1, $2, now(), $3)
         ON CONFLICT (host_id) DO UPDATE SET host_class = EXCLUDED.host_class, assigned_at = EXCLUDED.assigned_at,
           assigned_by = EXCLUDED.assigned_by`,
        [hostId, hostClass, actor],
      );
      return previous;
    });
  }

  /** The class's active golden set, if any. */
  async activeSet(hostClass: string): Promise<StoredGoldenSet | undefined> {
    const { rows } = await this.#db.query<SetRow>(
      `SELECT g.*, true AS active FROM activations a
         JOIN golden_sets g ON g.host_class = a.host_class AND g.version = a.version
        WHERE a.host_class = $1`,
      [hostClass],
    );
    const r = rows[0];
    return r === undefined ? undefined : { set: this.#fromRow(r), createdBy: r.created_by, active: true };
  }

  async getSet(hostClass: string, version: number): Promise<StoredGoldenSet | undefined> {
    const { rows } = await this.#db.query<SetRow>(
      `SELECT g.*, (a.version IS NOT NULL) AS active FROM golden_sets g
         LEFT JOIN activations a ON a.host_class = g.host_class AND a.version = g.version
        WHERE g.host_class = $1 AND g.version = $2`,
      [hostClass, version],
    );
    const r = rows[0];
    return r === undefined
      ? undefined
      : { set: this.#fromRow(r), createdBy: r.created_by, active: r.active === true };
  }

  /** Ordered by class, then version descending. */
  async listSets(opts: {
    hostClass?: string;
    activeOnly?: boolean;
    limit: number;
    offset: number;
  }): Promise<StoredGoldenSet[]> {
    const { rows } = await this.#db.query<SetRow>(
      `SELECT g.*, (a.version IS NOT NULL) AS active FROM golden_sets g
         LEFT JOIN activations a ON a.host_class = g.host_class AND a.version = g.version
        WHERE ($1::text IS NULL OR g.host_class = $1) AND (NOT $2::boolean OR a.version IS NOT NULL)
        ORDER BY g.host_class, g.version DESC
        LIMIT $3 OFFSET $4`,
      [opts.hostClass ?? null, opts.activeOnly === true, opts.limit, opts.offset],
    );
    return rows.map((r) => ({ set: this.#fromRow(r), createdBy: r.created_by, active: r.active === true }));
  }

  /**
   * Publishes `draft` (validated by @hostgate/policy) as the next version of its class. Replicas
   * publishing at once are serialised per class; a published row is never updated.
   */
  async publish(draft: unknown, actor: string, now = new Date()): Promise<GoldenSet> {
    return this.#db.transaction(async (tx) => {
      const cls =
        typeof draft === 'object' &&
        draft !== null &&
        typeof (draft as { class?: unknown }).class === 'string'
          ? (draft as { class: string }).class
          : '';
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hostgate-golden-set:${cls}`]);
      const { rows } = await tx.query<{ latest: number | null }>(
        'SELECT max(version) AS latest FROM golden_sets WHERE host_class = $1',
        [cls],
      );
      const latest = Number(rows[0]?.latest ?? 0);
      // publish() only needs (class, version) of what exists to pick the next version.
      const existing =
        latest === 0
          ? []
          : [{ class: cls, version: latest, createdAt: now.toISOString(), rules: [] } as GoldenSet];
      const set = publish(existing, draft, { now });
      await tx.query(
        `INSERT INTO golden_sets (host_class, version, description, rules, created_at, created_by)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6)`,
        [set.class, set.version, set.description ?? '', JSON.stringify(set.rules), set.createdAt, actor],
      );
      return set;
    });
  }

  /** Makes `version` the class's only active version; returns the version active before (0: none). */
  async activate(hostClass: string, version: number, actor: string): Promise<number> {
    return this.#db.transaction(async (tx) => {
      const { rows: found } = await tx.query(
        'SELECT 1 FROM golden_sets WHERE host_class = $1 AND version = $2',
        [hostClass, version],
      );
      if (found.length === 0)
        throw new PolicyStateError(
          'UNKNOWN_VERSION',
          `golden set ${hostClass} v${version} was never published`,
          hostClass,
          version,
        );
      const { rows } = await tx.query<{ version: number }>(
        'SELECT version FROM activations WHERE host_class = $1 FOR UPDATE',
        [hostClass],
      );
      await tx.query(
        `INSERT INTO activations (host_class, version, activated_at, activated_by) VALUES ($1, $2, now(), $3)
         ON CONFLICT (host_class) DO UPDATE SET version = EXCLUDED.version, activated_at = EXCLUDED.activated_at,
           activated_by = EXCLUDED.activated_by`,
        [hostClass, version, actor],
      );
      return rows[0]?.version ?? 0;
    });
  }

  /** Leaves the class without an active version; returns the version active before (0: none). */
  async deactivate(hostClass: string): Promise<number> {
    const { rows } = await this.#db.query<{ version: number }>(
      'DELETE FROM activations WHERE host_class = $1 RETURNING version',
      [hostClass],
    );
    return rows[0]?.version ?? 0;
  }

  /**
   * One statement for the whole batch. Per verdict, as if each ran alone in the batch's order:
   * - the host's last measurements (when they replayed), unless the host has newer ones;
   * - nothing when it was not judged against the host's class and that class's active version as
   *   the statement sees them ('stale': judge again with `current`); else the attestation's verdict
   *   if it has one (created: false, first one wins), else this verdict (created: true).
   * So a verdict is never stored judged against a class or version that is no longer the host's.
   */
  async recordVerdicts(items: readonly VerdictToRecord[], q: Queryable = this.#db): Promise<RecordOutcome[]> {
    if (items.length === 0) return [];
    const { rows } = await q.query<{
      cls: string;
      active_version: number;
      judged_current: boolean;
      created: boolean;
    }>(
      // The verdicts and measurements go as two binary blobs cut by length: a bytea[] parameter
      // goes as hex text, twice the bytes to write, escape and parse.
      `WITH u AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::integer[],
                              $7::timestamptz[], $8::integer[], $9::timestamptz[], $10::integer[])
           WITH ORDINALITY AS u(attestation_id, verdict_id, host_id, pass, host_class, policy_version,
                                evaluated_at, verdict_len, replayed_at, measurements_len, ord)
       ), i AS (
         SELECT u.*,
                substring($11::bytea FROM (sum(verdict_len) OVER w - verdict_len + 1)::integer FOR verdict_len) AS verdict,
                CASE WHEN measurements_len IS NOT NULL THEN substring($12::bytea
                  FROM (sum(measurements_len) OVER w - measurements_len + 1)::integer FOR measurements_len) END AS measurements
           FROM u WINDOW w AS (ORDER BY ord)
       ), j AS (
         SELECT i.*, COALESCE(h.host_class, $13) AS cls, COALESCE(a.version, 0) AS active_version
           FROM i LEFT JOIN host_classes h ON h.host_id = i.host_id
           LEFT JOIN activations a ON a.host_class = COALESCE(h.host_class, $13)
       ), hm AS (
         INSERT INTO host_measurements (host_id, attestation_id, replayed_at, measurements)
         SELECT DISTINCT ON (host_id) host_id, attestation_id, replayed_at, measurements FROM i
          WHERE measurements IS NOT NULL ORDER BY host_id, replayed_at DESC, ord DESC
         ON CONFLICT (host_id) DO UPDATE SET attestation_id = EXCLUDED.attestation_id,
           replayed_at = EXCLUDED.replayed_at, measurements = EXCLUDED.measurements
         WHERE host_measurements.replayed_at <= EXCLUDED.replayed_at
       ), v AS (
         INSERT INTO verdicts (attestation_id, verdict_id, host_id, pass, host_class, policy_version, evaluated_at, verdict)
         SELECT attestation_id, verdict_id, host_id, pass, host_class, policy_version, evaluated_at, verdict FROM j
          WHERE host_class = cls AND policy_version = active_version ORDER BY attestation_id, ord
         ON CONFLICT (attestation_id) DO NOTHING
         RETURNING verdict_id
       )
       SELECT j.cls, j.active_version, j.host_class = j.cls AND j.policy_version = j.active_version AS judged_current,
              v.verdict_id IS NOT NULL AS created
         FROM j LEFT JOIN v ON v.verdict_id = j.verdict_id
        ORDER BY j.ord`,
      [
        items.map((v) => v.attestationId),
        items.map((v) => v.verdictId),
        items.map((v) => v.hostId),
        items.map((v) => v.pass),
        items.map((v) => v.hostClass),
        items.map((v) => v.policyVersion),
        items.map((v) => v.evaluatedAt),
        items.map((v) => v.verdict.byteLength),
        items.map((v) => v.measurements?.replayedAt ?? null),
        items.map((v) => v.measurements?.bytes.byteLength ?? null),
        Buffer.concat(items.map((v) => v.verdict)),
        Buffer.concat(items.flatMap((v) => (v.measurements === undefined ? [] : [v.measurements.bytes]))),
        DEFAULT_HOST_CLASS,
      ],
    );
    if (rows.length !== items.length)
      throw new Error(`verdict batch of ${items.length} answered with ${rows.length} rows`);
    const out: (RecordOutcome | undefined)[] = [];
    // A verdict judged against the current class and version but not created: the attestation has
    // one already (a redelivery, another replica, an earlier item of this batch), read in a second
    // statement, only then. As a join in the statement above, the cached plan built while verdicts
    // was nearly empty read the whole table on every statement (a fleet bench at 100/s: ~310
    // buffers per statement, growing with the table).
    const notCreated: string[] = [];
    const currents = rows.map((r) => ({ hostClass: r.cls, policyVersion: Number(r.active_version) }));
    for (const [i, r] of rows.entries()) {
      const v = items[i]!;
      const current = currents[i]!;
      if (r.created)
        out.push({
          kind: 'stored',
          attestationId: v.attestationId,
          verdictId: v.verdictId,
          verdict: v.verdict,
          created: true,
          current,
        });
      else if (!r.judged_current) out.push({ kind: 'stale', current });
      else {
        out.push(undefined);
        notCreated.push(v.attestationId);
      }
    }
    if (notCreated.length > 0) {
      const { rows: found } = await q.query<{ attestation_id: string; verdict_id: string; verdict: unknown }>(
        'SELECT attestation_id, verdict_id, verdict FROM verdicts WHERE attestation_id = ANY($1::text[])',
        [notCreated],
      );
      const byId = new Map(found.map((f) => [f.attestation_id, f]));
      for (const [i, v] of items.entries()) {
        if (out[i] !== undefined) continue;
        const f = byId.get(v.attestationId);
        if (f === undefined) throw new Error(`verdict of ${v.attestationId} vanished after insert`);
        out[i] = {
          kind: 'stored',
          attestationId: v.attestationId,
          verdictId: f.verdict_id,
          verdict: toBytes(f.verdict),
          created: false,
          current: currents[i]!,
        };
      }
    }
    return out as RecordOutcome[];
  }

  /** A host's verdicts, newest first (protobuf bytes). */
  async listVerdicts(
    hostId: string,
    opts: { failedOnly: boolean; limit: number; offset: number },
  ): Promise<Uint8Array[]> {
    const { rows } = await this.#db.query<{ verdict: unknown }>(
      `SELECT verdict FROM verdicts WHERE host_id = $1 AND (NOT $2::boolean OR NOT pass)
        ORDER BY seq DESC LIMIT $3 OFFSET $4`,
      [hostId, opts.failedOnly, opts.limit, opts.offset],
    );
    return rows.map((r) => toBytes(r.verdict));
  }

  async lastMeasurements(hostId: string): Promise<{ attestationId: string; bytes: Uint8Array } | undefined> {
    const { rows } = await this.#db.query<{ attestation_id: string; measurements: unknown }>(
      'SELECT attestation_id, measurements FROM host_measurements WHERE host_id = $1',
      [hostId],
    );
    const r = rows[0];
    return r === undefined ? undefined : { attestationId: r.attestation_id, bytes: toBytes(r.measurements) };
  }

  async audit(actor: string, action: string, details: Record<string, unknown>): Promise<void> {
    await this.#db.query('INSERT INTO audit (actor, action, details) VALUES ($1, $2, $3::jsonb)', [
      actor,
      action,
      JSON.stringify(details),
    ]);
  }

  async auditLog(limit = 100): Promise<{ at: Date; actor: string; action: string; details: unknown }[]> {
    const { rows } = await this.#db.query<{ at: Date; actor: string; action: string; details: unknown }>(
      'SELECT at, actor, action, details FROM audit ORDER BY id DESC LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({ ...r, details: jsonOf(r.details) }));
  }
}

export type { GoldenSetDraft };
