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

export class PolicyStore {
  readonly #db: Db;
  /** Published sets never change, so a parsed set can be cached for good. */
  readonly #sets = new Map<string, GoldenSet>();

  constructor(db: Db) {
    this.#db = db;
  }

  #fromRow(r: SetRow): GoldenSet {
    const key = `${r.host_class}\u0000${r.version}`;
    let set = this.#sets.get(key);
    if (set === undefined) {
      const input: Record<string, unknown> = {
        class: r.host_class,
        version: r.version,
        createdAt: iso(r.created_at),
        rules: jsonOf(r.rules),
      };
      if (r.description !== '') input['description'] = r.description;
      set = validateGoldenSet(input);
      if (this.#sets.size > 10_000) this.#sets.clear();
      this.#sets.set(key, set);
    }
    return set;
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

  /** Which adapter the store runs on: the embedded one pays per transaction, a server per round trip. */
  get kind(): Db['kind'] {
    return this.#db.kind;
  }

  /** Runs `fn` in one transaction (the embedded store pays per transaction, not per statement). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction(fn);
  }

  /** The host's class and that class's active golden set, in one round trip (the hot path). */
  async judgement(
    hostId: string,
    q: Queryable = this.#db,
  ): Promise<{ hostClass: string; active: StoredGoldenSet | undefined }> {
    const { rows } = await q.query<SetRow & { cls: string }>(
      `SELECT c.cls, g.host_class, g.version, g.description, g.rules, g.created_at, g.created_by
         FROM (SELECT COALESCE((SELECT host_class FROM host_classes WHERE host_id = $1), $2) AS cls) c
         LEFT JOIN activations a ON a.host_class = c.cls
         LEFT JOIN golden_sets g ON g.host_class = a.host_class AND g.version = a.version`,
      [hostId, DEFAULT_HOST_CLASS],
    );
    const r = rows[0];
    const hostClass = r?.cls ?? DEFAULT_HOST_CLASS;
    if (r === undefined || r.version === null || r.version === undefined)
      return { hostClass, active: undefined };
    return { hostClass, active: { set: this.#fromRow(r), createdBy: r.created_by, active: true } };
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

  async verdictFor(attestationId: string, q: Queryable = this.#db): Promise<StoredVerdict | undefined> {
    const { rows } = await q.query<{ verdict_id: string; verdict: unknown }>(
      'SELECT verdict_id, verdict FROM verdicts WHERE attestation_id = $1',
      [attestationId],
    );
    const r = rows[0];
    return r === undefined
      ? undefined
      : { attestationId, verdictId: r.verdict_id, verdict: toBytes(r.verdict) };
  }

  /**
   * One statement: the verdict (unless the attestation has one) and, for measurements that replayed,
   * the host's last measurements. Returns the verdict stored, first one wins.
   */
  async recordVerdict(
    v: {
      attestationId: string;
      verdictId: string;
      hostId: string;
      pass: boolean;
      hostClass: string;
      policyVersion: number;
      evaluatedAt: Date;
      verdict: Uint8Array;
    },
    measurements: { replayedAt: Date; bytes: Uint8Array } | undefined,
    q: Queryable = this.#db,
  ): Promise<StoredVerdict & { created: boolean }> {
    const { rows } = await q.query<{ verdict_id: string; verdict: unknown; created: boolean }>(
      `WITH hm AS (
         INSERT INTO host_measurements (host_id, attestation_id, replayed_at, measurements)
         SELECT $3, $1, $9, $10 WHERE $11::boolean
         ON CONFLICT (host_id) DO UPDATE SET attestation_id = EXCLUDED.attestation_id,
           replayed_at = EXCLUDED.replayed_at, measurements = EXCLUDED.measurements
         WHERE host_measurements.replayed_at <= EXCLUDED.replayed_at
       ), v AS (
         INSERT INTO verdicts (attestation_id, verdict_id, host_id, pass, host_class, policy_version, evaluated_at, verdict)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (attestation_id) DO NOTHING
         RETURNING verdict_id, verdict
       )
       SELECT verdict_id, verdict, true AS created FROM v
       UNION ALL
       SELECT verdict_id, verdict, false AS created FROM verdicts
        WHERE attestation_id = $1 AND NOT EXISTS (SELECT 1 FROM v)`,
      [
        v.attestationId,
        v.verdictId,
        v.hostId,
        v.pass,
        v.hostClass,
        v.policyVersion,
        v.evaluatedAt,
        v.verdict,
        measurements?.replayedAt ?? v.evaluatedAt,
        measurements?.bytes ?? new Uint8Array(0),
        measurements !== undefined,
      ],
    );
    const r = rows[0];
    if (r !== undefined)
      return {
        attestationId: v.attestationId,
        verdictId: r.verdict_id,
        verdict: toBytes(r.verdict),
        created: r.created,
      };
    // Another replica inserted it after this statement's snapshot was taken.
    const stored = await this.verdictFor(v.attestationId, q);
    if (stored === undefined) throw new Error(`verdict of ${v.attestationId} vanished after insert`);
    return { ...stored, created: false };
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
