// The quote-collector store: host registry, pending enrollments, nonces, per-host counters and the
// outcome of each attestation. One small interface over the service's Db (PGlite or PostgreSQL).
import type { Db, Queryable } from '@hostgate/service-runtime';

export type HostStateName = 'PENDING_ACTIVATION' | 'ACTIVE' | 'DISABLED';

export interface HostRecord {
  hostId: string;
  state: HostStateName;
  ekPublic: Uint8Array;
  ekCertificate: Uint8Array;
  ekCertificateIssuer: string;
  /** The trusted AK; undefined until the first activation. */
  akPublic: Uint8Array | undefined;
  akName: Uint8Array | undefined;
  enrolledAtMs: number;
  activatedAtMs: number | undefined;
  lastAttestedAtMs: number | undefined;
  stateReason: string;
}

export interface EnrollmentRecord {
  enrollmentId: string;
  hostId: string;
  akPublic: Uint8Array;
  akName: Uint8Array;
  /** SHA-256 of the secret sealed with MakeCredential (the secret itself is never stored). */
  secretDigest: Uint8Array;
  createdAtMs: number;
  expiresAtMs: number;
  activatedAtMs: number | undefined;
}

/** The highest TPMS_CLOCK_INFO accepted for a host (plus the rest of the QuoteInfo as JSON). */
export interface CountersRecord {
  resetCount: number;
  restartCount: number;
  clock: bigint;
  safe: boolean;
  firmwareVersion: bigint;
  quoteInfoJson: string;
}

export type NonceState =
  | { kind: 'consumed'; expiresAtMs: number }
  | { kind: 'unknown' }
  | { kind: 'other-ak' }
  | { kind: 'reused'; usedAtMs: number }
  | { kind: 'expired'; expiresAtMs: number };

/** An attestation verified against a remembered AK, for the one-statement Attest. */
export interface RememberedAttestation {
  ak: { hostId: string; akName: Uint8Array; akPublic: Uint8Array };
  nonce: Uint8Array;
  next: CountersRecord;
  nowMs: number;
  attestationId: string;
}

export type RememberedOutcome =
  | { kind: 'nonce-not-consumed' }
  | { kind: 'counters-backwards' }
  | { kind: 'accepted'; host: HostRecord };

export interface AttestationOutcome {
  outcome: 'PENDING' | 'ISSUED' | 'REFUSED';
  /** Encoded CertificateEvent once the outcome is known. */
  certificateEvent: Uint8Array | undefined;
}

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : Number(v));
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : num(v));
const bytes = (v: unknown): Uint8Array => new Uint8Array(v as Uint8Array);
const optBytes = (v: unknown): Uint8Array | undefined =>
  v === null || v === undefined ? undefined : bytes(v);
/**
 * A copy in Node's buffer pool: ~0.1 µs where `bytes` takes ~1-2 µs for anything over 64 bytes (a
 * fresh off-heap ArrayBuffer, and GC work), but it shares an 8 KB slab with other small buffers,
 * so it is only for records dropped with the call (the accepted host of an Attest), never for
 * what is kept (the collector remembers AKs from hostConsumingNonce's host).
 */
const pooled = (v: unknown): Uint8Array => Buffer.from(v as Uint8Array);

function hostFromRow(r: Record<string, unknown>, copy: (v: unknown) => Uint8Array = bytes): HostRecord {
  const optCopy = (v: unknown) => (v === null || v === undefined ? undefined : copy(v));
  return {
    hostId: String(r['host_id']),
    state: String(r['state']) as HostStateName,
    ekPublic: copy(r['ek_public']),
    ekCertificate: copy(r['ek_certificate']),
    ekCertificateIssuer: String(r['ek_certificate_issuer']),
    akPublic: optCopy(r['ak_public']),
    akName: optCopy(r['ak_name']),
    enrolledAtMs: num(r['enrolled_at_ms']),
    activatedAtMs: optNum(r['activated_at_ms']),
    lastAttestedAtMs: optNum(r['last_attested_at_ms']),
    stateReason: String(r['state_reason'] ?? ''),
  };
}

function enrollmentFromRow(r: Record<string, unknown>): EnrollmentRecord {
  return {
    enrollmentId: String(r['enrollment_id']),
    hostId: String(r['host_id']),
    akPublic: bytes(r['ak_public']),
    akName: bytes(r['ak_name']),
    secretDigest: bytes(r['secret_digest']),
    createdAtMs: num(r['created_at_ms']),
    expiresAtMs: num(r['expires_at_ms']),
    activatedAtMs: optNum(r['activated_at_ms']),
  };
}

/** Bytes as a Buffer view (what both adapters bind as bytea). */
const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const hexOf = (b: Uint8Array): string => buf(b).toString('hex');
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The counters upsert of an attestation: the stored counters are replaced only when the new ones
 * move forward (resetCount up; or the same resetCount and restartCount up; or both the same and
 * clock up). One text for both statements that advance them, so the rule cannot diverge.
 */
const COUNTERS_MOVE_FORWARD = `ON CONFLICT (host_id) DO UPDATE SET reset_count = EXCLUDED.reset_count,
           restart_count = EXCLUDED.restart_count, clock = EXCLUDED.clock, safe = EXCLUDED.safe,
           firmware_version = EXCLUDED.firmware_version, quote_info = EXCLUDED.quote_info,
           updated_at_ms = EXCLUDED.updated_at_ms
         WHERE counters.reset_count < EXCLUDED.reset_count
            OR (counters.reset_count = EXCLUDED.reset_count
                AND (counters.restart_count < EXCLUDED.restart_count
                     OR (counters.restart_count = EXCLUDED.restart_count AND counters.clock < EXCLUDED.clock)))`;

const HOST_COLUMNS = `host_id, state, ek_public, ek_certificate, ek_certificate_issuer, ak_public, ak_name,
  enrolled_at_ms, activated_at_ms, last_attested_at_ms, state_reason`;
/** HOST_COLUMNS qualified by the table (for statements that join hosts with another relation). */
const HOST_COLUMNS_OF_HOSTS = HOST_COLUMNS.split(',')
  .map((c) => `hosts.${c.trim()}`)
  .join(', ');

/** Everything quote-collector keeps, behind one interface (SQL over PGlite or PostgreSQL). */
export class QuoteCollectorStore {
  readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async getHost(hostId: string, q: Queryable = this.db): Promise<HostRecord | undefined> {
    const { rows } = await q.query(`SELECT ${HOST_COLUMNS} FROM hosts WHERE host_id = $1`, [hostId]);
    return rows[0] === undefined ? undefined : hostFromRow(rows[0]);
  }

  /** Whether some enrollment named this AK (activated or not). */
  async enrollmentByAkName(akName: Uint8Array): Promise<EnrollmentRecord | undefined> {
    const { rows } = await this.db.query(
      'SELECT * FROM enrollments WHERE ak_name = $1 ORDER BY created_at_ms DESC LIMIT 1',
      [buf(akName)],
    );
    return rows[0] === undefined ? undefined : enrollmentFromRow(rows[0]);
  }

  async listHosts(opts: { state?: HostStateName; after?: string; limit: number }): Promise<HostRecord[]> {
    const params: unknown[] = [opts.after ?? '', opts.limit];
    let where = 'host_id > $1';
    if (opts.state !== undefined) {
      params.push(opts.state);
      where += ' AND state = $3';
    }
    const { rows } = await this.db.query(
      `SELECT ${HOST_COLUMNS} FROM hosts WHERE ${where} ORDER BY host_id LIMIT $2`,
      params,
    );
    return rows.map((r) => hostFromRow(r));
  }

  /**
   * Records an enrollment challenge: the host is created PENDING_ACTIVATION on first sight (an EK
   * already known keeps its host, state and current AK until the new AK is activated).
   */
  async addEnrollment(
    host: Pick<HostRecord, 'hostId' | 'ekPublic' | 'ekCertificate' | 'ekCertificateIssuer'>,
    enrollment: Omit<EnrollmentRecord, 'activatedAtMs' | 'hostId'>,
  ): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO hosts (host_id, state, ek_public, ek_certificate, ek_certificate_issuer, enrolled_at_ms)
         VALUES ($1, 'PENDING_ACTIVATION', $2, $3, $4, $5)
         ON CONFLICT (host_id) DO UPDATE SET ek_certificate = EXCLUDED.ek_certificate,
           ek_certificate_issuer = EXCLUDED.ek_certificate_issuer`,
        [
          host.hostId,
          buf(host.ekPublic),
          buf(host.ekCertificate),
          host.ekCertificateIssuer,
          enrollment.createdAtMs,
        ],
      );
      await tx.query(
        `INSERT INTO enrollments (enrollment_id, host_id, ak_public, ak_name, secret_digest, created_at_ms, expires_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          enrollment.enrollmentId,
          host.hostId,
          buf(enrollment.akPublic),
          buf(enrollment.akName),
          buf(enrollment.secretDigest),
          enrollment.createdAtMs,
          enrollment.expiresAtMs,
        ],
      );
    });
  }

  async getEnrollment(enrollmentId: string): Promise<EnrollmentRecord | undefined> {
    const { rows } = await this.db.query('SELECT * FROM enrollments WHERE enrollment_id = $1', [
      enrollmentId,
    ]);
    return rows[0] === undefined ? undefined : enrollmentFromRow(rows[0]);
  }

  /**
   * Makes the enrollment's AK the host's trusted AK (the previous AK stops being accepted) and the
   * host ACTIVE, unless an operator disabled it. Returns the host after the change.
   */
  async activate(enrollment: EnrollmentRecord, nowMs: number): Promise<HostRecord> {
    return this.db.transaction(async (tx) => {
      await tx.query('UPDATE enrollments SET activated_at_ms = $2 WHERE enrollment_id = $1', [
        enrollment.enrollmentId,
        nowMs,
      ]);
      // The AK may have been trusted for another host before (a TPM re-provisioned): it moves here.
      await tx.query(
        'UPDATE hosts SET ak_name = NULL, ak_public = NULL WHERE ak_name = $1 AND host_id <> $2',
        [buf(enrollment.akName), enrollment.hostId],
      );
      await tx.query(
        `UPDATE hosts SET ak_public = $2, ak_name = $3, activated_at_ms = $4,
           state = CASE WHEN state = 'DISABLED' THEN 'DISABLED' ELSE 'ACTIVE' END
         WHERE host_id = $1`,
        [enrollment.hostId, buf(enrollment.akPublic), buf(enrollment.akName), nowMs],
      );
      const host = await this.getHost(enrollment.hostId, tx);
      if (host === undefined) throw new Error(`host ${enrollment.hostId} vanished during activation`);
      return host;
    });
  }

  /** Changes a host's state and records who did it and why, in one transaction. */
  async setHostState(
    hostId: string,
    state: HostStateName,
    reason: string,
    audit: { actor: string; atMs: number },
  ): Promise<HostRecord | undefined> {
    return this.db.transaction(async (tx) => {
      const before = await this.getHost(hostId, tx);
      if (before === undefined) return undefined;
      await tx.query('UPDATE hosts SET state = $2, state_reason = $3 WHERE host_id = $1', [
        hostId,
        state,
        reason,
      ]);
      await tx.query(
        'INSERT INTO audit (at_ms, actor, action, host_id, details) VALUES ($1, $2, $3, $4, $5)',
        [
          audit.atMs,
          audit.actor,
          'SetHostState',
          hostId,
          JSON.stringify({ from: before.state, to: state, reason }),
        ],
      );
      return this.getHost(hostId, tx);
    });
  }

  /** The audit trail of one host, oldest first. */
  async auditOf(hostId: string): Promise<{ atMs: number; actor: string; action: string; details: string }[]> {
    const { rows } = await this.db.query(
      'SELECT at_ms, actor, action, details FROM audit WHERE host_id = $1 ORDER BY id',
      [hostId],
    );
    return rows.map((r) => ({
      atMs: num(r['at_ms']),
      actor: String(r['actor']),
      action: String(r['action']),
      details: String(r['details']),
    }));
  }

  /**
   * Records nonces, each unless its AK already holds `maxLive` unused, unexpired ones (GetChallenge
   * is unauthenticated: the cap keeps one caller from filling the table), in one statement. Returns,
   * per item in order, whether it was added. The cap is read once per statement: items of one AK
   * must go in separate calls, or they could share the last place.
   *
   * The LIMIT (the number of items: it drops nothing) is for the plan cache. A plan for arrays not
   * yet known counts ten items, one for the actual arrays one or two; the per-item count makes the
   * first look ten times dearer, so PostgreSQL planned this statement again on every call (~160 µs,
   * more than it took to run). An unknown LIMIT is counted as a tenth of the rows: one item, as
   * usual, and the one cached plan is used.
   */
  async addNonces(
    items: readonly { nonce: Uint8Array; akName: Uint8Array; issuedAtMs: number; expiresAtMs: number }[],
    maxLive: number,
  ): Promise<boolean[]> {
    const { rows } = await this.db.query<{ nonce: Uint8Array }>(
      `INSERT INTO nonces (nonce, ak_name, issued_at_ms, expires_at_ms)
       SELECT u.nonce, u.ak_name, u.issued_at_ms, u.expires_at_ms
       FROM (SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[])
             LIMIT cardinality($1::bytea[])) AS u(nonce, ak_name, issued_at_ms, expires_at_ms)
       WHERE (SELECT count(*) FROM nonces
              WHERE nonces.ak_name = u.ak_name AND used_at_ms IS NULL AND expires_at_ms > u.issued_at_ms) < $5
       RETURNING nonce`,
      [
        items.map((i) => buf(i.nonce)),
        items.map((i) => buf(i.akName)),
        items.map((i) => i.issuedAtMs),
        items.map((i) => i.expiresAtMs),
        maxLive,
      ],
    );
    const added = new Set(rows.map((r) => hexOf(r.nonce)));
    return items.map((i) => added.has(hexOf(i.nonce)));
  }

  /**
   * The host whose trusted AK is `akName`, consuming `nonce` in the same statement when the host is
   * ACTIVE (so two attestations racing with one nonce cannot both have it, and a disabled host or
   * an unknown AK burns nothing). When the nonce was not consumed, `nonce` says why.
   */
  async hostConsumingNonce(
    akName: Uint8Array,
    nonce: Uint8Array,
    nowMs: number,
  ): Promise<{ host: HostRecord | undefined; nonce: NonceState }> {
    const { rows } = await this.db.query(
      `WITH h AS (SELECT ${HOST_COLUMNS} FROM hosts WHERE ak_name = $1),
       n AS (UPDATE nonces SET used_at_ms = $3
             WHERE nonce = $2 AND ak_name = $1 AND used_at_ms IS NULL AND expires_at_ms > $3
               AND EXISTS (SELECT 1 FROM h WHERE state = 'ACTIVE' AND ak_public IS NOT NULL)
             RETURNING expires_at_ms)
       SELECT h.*, (SELECT expires_at_ms FROM n) AS nonce_expires_at_ms FROM h`,
      [buf(akName), buf(nonce), nowMs],
    );
    const r = rows[0];
    if (r === undefined) return { host: undefined, nonce: { kind: 'unknown' } };
    const host = hostFromRow(r);
    const consumed = optNum(r['nonce_expires_at_ms']);
    if (consumed !== undefined) return { host, nonce: { kind: 'consumed', expiresAtMs: consumed } };
    if (host.state !== 'ACTIVE') return { host, nonce: { kind: 'unknown' } };
    return { host, nonce: await this.nonceState(nonce, akName) };
  }

  /** Why `nonce` cannot be used by `akName` now (it was not consumable). */
  private async nonceState(nonce: Uint8Array, akName: Uint8Array): Promise<NonceState> {
    const found = await this.db.query<{
      ak_name: Uint8Array;
      used_at_ms: bigint | null;
      expires_at_ms: bigint;
    }>('SELECT ak_name, used_at_ms, expires_at_ms FROM nonces WHERE nonce = $1', [buf(nonce)]);
    const row = found.rows[0];
    if (row === undefined) return { kind: 'unknown' };
    if (Buffer.compare(Buffer.from(row.ak_name), Buffer.from(akName)) !== 0) return { kind: 'other-ak' };
    if (row.used_at_ms !== null) return { kind: 'reused', usedAtMs: num(row.used_at_ms) };
    return { kind: 'expired', expiresAtMs: num(row.expires_at_ms) };
  }

  /** Forgets nonces that expired before `beforeMs` (a used or expired nonce is refused either way). */
  async pruneNonces(beforeMs: number): Promise<number> {
    const { rowCount } = await this.db.query('DELETE FROM nonces WHERE expires_at_ms < $1', [beforeMs]);
    return rowCount;
  }

  /** Forgets enrollment challenges never answered that expired before `beforeMs`. */
  async pruneEnrollments(beforeMs: number): Promise<number> {
    const { rowCount } = await this.db.query(
      'DELETE FROM enrollments WHERE activated_at_ms IS NULL AND expires_at_ms < $1',
      [beforeMs],
    );
    return rowCount;
  }

  /**
   * Stores `next` as the host's counters if they move forward (resetCount up; or the same
   * resetCount and restartCount up; or both the same and clock up), in one conditional upsert so
   * concurrent attestations of one host cannot both pass with the same clock; the same statement
   * records the attestation as PENDING. Returns false, and leaves everything as it was, when the
   * counters do not move forward.
   */
  async advanceCounters(
    hostId: string,
    next: CountersRecord,
    nowMs: number,
    attestationId: string,
  ): Promise<boolean> {
    const { rows } = await this.db.query(
      `WITH up AS (
         INSERT INTO counters (host_id, reset_count, restart_count, clock, safe, firmware_version, quote_info, updated_at_ms)
         VALUES ($1, $2, $3, $4::numeric, $5, $6::numeric, $7, $8)
         ${COUNTERS_MOVE_FORWARD}
         RETURNING host_id)
       , host AS (UPDATE hosts SET last_attested_at_ms = $8 WHERE host_id IN (SELECT host_id FROM up) RETURNING host_id)
       INSERT INTO attestations (attestation_id, host_id, created_at_ms)
       SELECT $9, host_id, $8 FROM host RETURNING attestation_id`,
      [
        hostId,
        next.resetCount,
        next.restartCount,
        next.clock.toString(),
        next.safe,
        next.firmwareVersion.toString(),
        next.quoteInfoJson,
        nowMs,
        attestationId,
      ],
    );
    return rows.length > 0;
  }

  /**
   * The happy path of Attest in one statement, for evidence already verified against an AK the
   * caller remembers for `hostId`, for several attestations at once (one set-based statement, each
   * item decided as if alone). Per item: consumes `nonce` only if it is unused, unexpired at
   * `nowMs` and issued to `akName`, and the host is still ACTIVE and still trusts exactly this AK
   * (name and public); then, in the same statement and only if the nonce was consumed, moves the
   * counters forward as advanceCounters does, stamps the host and records the attestation as
   * PENDING. Items must name distinct hosts (one counters row is moved once per statement, so a
   * host's counters stay ordered); a duplicate host throws.
   *
   * Per item, in order:
   * - `nonce-not-consumed`: nothing changed (the caller's view of the host is stale, or the nonce is
   *   not usable); the precise path tells which.
   * - `counters-backwards`: the nonce is burnt, the counters and the attestations are untouched.
   * - `accepted`: everything is recorded; `host` is the host row as the statement left it (its bytes
   *   in Node's buffer pool: for the call, not to be kept).
   */
  async consumeNoncesAndAdvance(items: readonly RememberedAttestation[]): Promise<RememberedOutcome[]> {
    if (new Set(items.map((i) => i.ak.hostId)).size !== items.length)
      throw new Error('consumeNoncesAndAdvance: one item per host per statement');
    // In host id order, so that statements of two replicas (or a batch and a lone statement) that
    // touch the same hosts meet their rows in the same order rather than deadlock (should one
    // happen anyway, the Batcher reruns the items one by one).
    const order = items
      .map((_, i) => i)
      .sort((a, b) => compareText(items[a]!.ak.hostId, items[b]!.ak.hostId));
    const sorted = order.map((i) => items[i]!);
    const { rows } = await this.db.query(
      `WITH u AS (
         SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::text[], $5::bytea[], $6::bigint[],
                              $7::bigint[], $8::text[], $9::boolean[], $10::text[], $11::text[], $12::text[])
           WITH ORDINALITY AS u(ak_name, nonce, now_ms, host_id, ak_public, reset_count, restart_count, clock,
                                safe, firmware_version, quote_info, attestation_id, i))
       , n AS (
         UPDATE nonces SET used_at_ms = u.now_ms FROM u
         WHERE nonces.nonce = u.nonce AND nonces.ak_name = u.ak_name AND nonces.used_at_ms IS NULL
           AND nonces.expires_at_ms > u.now_ms
           AND EXISTS (SELECT 1 FROM hosts WHERE hosts.host_id = u.host_id AND hosts.ak_name = u.ak_name
                         AND hosts.ak_public = u.ak_public AND hosts.state = 'ACTIVE')
         RETURNING u.i, nonces.expires_at_ms)
       , up AS (
         INSERT INTO counters (host_id, reset_count, restart_count, clock, safe, firmware_version, quote_info, updated_at_ms)
         SELECT u.host_id, u.reset_count, u.restart_count, u.clock::numeric, u.safe, u.firmware_version::numeric,
                u.quote_info, u.now_ms
         FROM n JOIN u ON u.i = n.i
         ${COUNTERS_MOVE_FORWARD}
         RETURNING host_id)
       , host AS (UPDATE hosts SET last_attested_at_ms = u.now_ms FROM u
                  WHERE hosts.host_id = u.host_id AND hosts.host_id IN (SELECT host_id FROM up)
                  RETURNING u.i, ${HOST_COLUMNS_OF_HOSTS})
       , att AS (INSERT INTO attestations (attestation_id, host_id, created_at_ms)
                 SELECT u.attestation_id, u.host_id, u.now_ms FROM host JOIN u ON u.i = host.i
                 RETURNING attestation_id)
       SELECT n.i AS item, n.expires_at_ms AS nonce_expires_at_ms,
              att.attestation_id AS recorded_attestation_id, host.*
       FROM n JOIN u ON u.i = n.i LEFT JOIN host ON host.i = n.i
         LEFT JOIN att ON att.attestation_id = u.attestation_id`,
      [
        sorted.map((i) => buf(i.ak.akName)),
        sorted.map((i) => buf(i.nonce)),
        sorted.map((i) => i.nowMs),
        sorted.map((i) => i.ak.hostId),
        sorted.map((i) => buf(i.ak.akPublic)),
        sorted.map((i) => i.next.resetCount),
        sorted.map((i) => i.next.restartCount),
        sorted.map((i) => i.next.clock.toString()),
        sorted.map((i) => i.next.safe),
        sorted.map((i) => i.next.firmwareVersion.toString()),
        sorted.map((i) => i.next.quoteInfoJson),
        sorted.map((i) => i.attestationId),
      ],
    );
    const out: RememberedOutcome[] = items.map(() => ({ kind: 'nonce-not-consumed' }));
    for (const r of rows) {
      const index = order[num(r['item']) - 1];
      if (index === undefined) throw new Error(`item ${String(r['item'])} is not in the batch`);
      out[index] =
        r['recorded_attestation_id'] === null || r['recorded_attestation_id'] === undefined
          ? { kind: 'counters-backwards' }
          : { kind: 'accepted', host: hostFromRow(r, pooled) };
    }
    return out;
  }

  async getCounters(hostId: string): Promise<CountersRecord | undefined> {
    const { rows } = await this.db.query(
      `SELECT reset_count, restart_count, clock::text AS clock, safe, firmware_version::text AS firmware_version,
         quote_info FROM counters WHERE host_id = $1`,
      [hostId],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    return {
      resetCount: num(r['reset_count']),
      restartCount: num(r['restart_count']),
      clock: BigInt(String(r['clock'])),
      safe: Boolean(r['safe']),
      firmwareVersion: BigInt(String(r['firmware_version'])),
      quoteInfoJson: String(r['quote_info']),
    };
  }

  /**
   * Records the outcomes the issuer published, in one statement; the first one per attestation wins
   * (a redelivered event changes nothing), so the ids must be distinct. Returns the ids recorded now
   * (the others were answered already or are not ours). The `= ANY` repeats the join on purpose: it
   * gives the plan an index condition on the ids; with the join alone a plan made for an unknown
   * batch size (a cached plan) reads every attestation sequentially and hashes the batch against it.
   */
  async completeAttestations(
    outcomes: readonly {
      attestationId: string;
      outcome: 'ISSUED' | 'REFUSED';
      certificateEvent: Uint8Array;
    }[],
    nowMs: number,
  ): Promise<Set<string>> {
    const { rows } = await this.db.query<{ attestation_id: string }>(
      `UPDATE attestations AS a SET outcome = u.outcome, certificate_event = u.event, completed_at_ms = $4
       FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(attestation_id, outcome, event)
       WHERE a.attestation_id = u.attestation_id AND a.attestation_id = ANY($1::text[]) AND a.outcome = 'PENDING'
       RETURNING a.attestation_id`,
      [
        outcomes.map((o) => o.attestationId),
        outcomes.map((o) => o.outcome),
        outcomes.map((o) => buf(o.certificateEvent)),
        nowMs,
      ],
    );
    return new Set(rows.map((r) => String(r.attestation_id)));
  }

  /** The outcomes already recorded among `attestationIds` (pending ones are left out), in one query. */
  async answeredAttestations(attestationIds: readonly string[]): Promise<Map<string, Uint8Array>> {
    const { rows } = await this.db.query<{ attestation_id: string; certificate_event: Uint8Array }>(
      `SELECT attestation_id, certificate_event FROM attestations
       WHERE attestation_id = ANY($1::text[]) AND certificate_event IS NOT NULL`,
      [[...attestationIds]],
    );
    const out = new Map<string, Uint8Array>();
    for (const r of rows) {
      const event = optBytes(r.certificate_event);
      if (event !== undefined) out.set(r.attestation_id, event);
    }
    return out;
  }

  async getAttestation(attestationId: string): Promise<AttestationOutcome | undefined> {
    const { rows } = await this.db.query<{ outcome: string; certificate_event: Uint8Array | null }>(
      'SELECT outcome, certificate_event FROM attestations WHERE attestation_id = $1',
      [attestationId],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    return {
      outcome: r.outcome as AttestationOutcome['outcome'],
      certificateEvent: optBytes(r.certificate_event),
    };
  }
}
