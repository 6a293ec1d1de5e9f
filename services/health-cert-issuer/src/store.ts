// SQL of the issuer's store, one function per question; callers pass the db or an open transaction.
import type { Queryable } from '@hostgate/service-runtime';
import type { OutgoingMessage, RevokedInfo } from './events.ts';
import type { FleetCause, HostState } from './fleet.ts';
import type { Refusal } from './refusal.ts';

interface HostRow {
  host_id: string;
  healthy: boolean;
  cause: string;
  reason: string;
  reason_code: string;
  refusals: unknown;
  serial: string | null;
  expires_at: Date | null;
  policy_class: string;
  policy_version: number;
  attestation_id: string;
  updated_at: Date;
}

const HOST_COLUMNS =
  'host_id, healthy, cause, reason, reason_code, refusals, serial, expires_at, policy_class, policy_version, attestation_id, updated_at';

function hostFromRow(r: HostRow): HostState {
  return {
    hostId: r.host_id,
    healthy: r.healthy,
    cause: r.cause as FleetCause,
    reason: r.reason,
    reasonCode: r.reason_code,
    refusals: Array.isArray(r.refusals) ? (r.refusals as Refusal[]) : [],
    serial: r.serial,
    expiresAt: r.expires_at,
    policyClass: r.policy_class,
    policyVersion: r.policy_version,
    attestationId: r.attestation_id,
    updatedAt: r.updated_at,
  };
}

export async function getHost(db: Queryable, hostId: string): Promise<HostState | undefined> {
  const { rows } = await db.query<HostRow>(`SELECT ${HOST_COLUMNS} FROM hosts WHERE host_id = $1`, [hostId]);
  return rows[0] === undefined ? undefined : hostFromRow(rows[0]);
}

/** Hosts ordered by id, after `afterHostId`, at most `limit` (snapshot pages). */
export async function listHosts(
  db: Queryable,
  afterHostId: string,
  limit: number,
  hostIds?: readonly string[],
): Promise<HostState[]> {
  const filter = hostIds !== undefined && hostIds.length > 0;
  const { rows } = await db.query<HostRow>(
    `SELECT ${HOST_COLUMNS} FROM hosts WHERE host_id > $1 ${filter ? 'AND host_id = ANY($3::text[])' : ''}
     ORDER BY host_id LIMIT $2`,
    filter ? [afterHostId, limit, hostIds] : [afterHostId, limit],
  );
  return rows.map(hostFromRow);
}

/** How putHost (and recordVerdict) merge a host's new state into its row. */
const PUT_HOST_CONFLICT = `ON CONFLICT (host_id) DO UPDATE SET
       healthy = excluded.healthy, cause = excluded.cause, reason = excluded.reason,
       reason_code = excluded.reason_code, refusals = excluded.refusals, serial = excluded.serial,
       expires_at = excluded.expires_at,
       policy_class = CASE WHEN excluded.healthy THEN excluded.policy_class ELSE hosts.policy_class END,
       policy_version = CASE WHEN excluded.healthy THEN excluded.policy_version ELSE hosts.policy_version END,
       attestation_id = CASE WHEN excluded.attestation_id = '' THEN hosts.attestation_id ELSE excluded.attestation_id END,
       updated_at = excluded.updated_at`;

/**
 * Sets a host's state. A refusal or revocation keeps the class and version the host last passed
 * (HostStatus.policy_class is "the class the host last passed").
 */
export async function putHost(db: Queryable, s: HostState): Promise<HostState> {
  const { rows } = await db.query<HostRow>(
    `INSERT INTO hosts (${HOST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)
     ${PUT_HOST_CONFLICT}
     RETURNING ${HOST_COLUMNS}`,
    [
      s.hostId,
      s.healthy,
      s.cause,
      s.reason,
      s.reasonCode,
      JSON.stringify(s.refusals),
      s.serial,
      s.expiresAt,
      s.policyClass,
      s.policyVersion,
      s.attestationId,
      s.updatedAt,
    ],
  );
  return hostFromRow(rows[0]!);
}

/** Hosts whose state changed at or after `since`, oldest change first (what other replicas did). */
export async function hostsChangedSince(db: Queryable, since: Date, limit: number): Promise<HostState[]> {
  const { rows } = await db.query<HostRow>(
    `SELECT ${HOST_COLUMNS} FROM hosts WHERE updated_at >= $1 ORDER BY updated_at, host_id LIMIT $2`,
    [since, limit],
  );
  return rows.map(hostFromRow);
}

/** Healthy hosts whose certificate expired by `now`, marked unhealthy (each row by one replica only). */
export async function expireHosts(db: Queryable, now: Date, limit: number): Promise<HostState[]> {
  const { rows } = await db.query<HostRow>(
    `UPDATE hosts SET healthy = false, cause = 'expired',
       reason = 'certificate ' || coalesce(serial, '') || ' expired', reason_code = '', refusals = '[]'::jsonb,
       serial = NULL, expires_at = NULL, updated_at = $1
     WHERE host_id IN (SELECT host_id FROM hosts WHERE healthy AND expires_at <= $1 ORDER BY expires_at LIMIT $2)
       AND healthy AND expires_at <= $1
     RETURNING ${HOST_COLUMNS}`,
    [now, limit],
  );
  return rows.map(hostFromRow);
}

export interface CertificateRow {
  serial: string;
  host_id: string;
  attestation_id: string;
  verdict_id: string;
  policy_class: string;
  policy_version: number;
  pcr_digest: Uint8Array;
  der: Uint8Array;
  not_before: Date;
  not_after: Date;
  issued_at: Date;
  revoked_at: Date | null;
  revocation_reason: string | null;
}

const CERT_COLUMNS =
  'serial, host_id, attestation_id, verdict_id, policy_class, policy_version, pcr_digest, der, not_before, not_after, issued_at, revoked_at, revocation_reason';

/** Revokes every live (unrevoked, unexpired) certificate of a host. */
export async function revokeLive(
  db: Queryable,
  hostId: string,
  now: Date,
  reason: string,
): Promise<RevokedInfo[]> {
  const { rows } = await db.query<{ serial: string; revoked_at: Date; revocation_reason: string }>(
    `UPDATE certificates SET revoked_at = $2, revocation_reason = $3
     WHERE host_id = $1 AND revoked_at IS NULL AND not_after > $2
     RETURNING serial, revoked_at, revocation_reason`,
    [hostId, now, reason],
  );
  return rows
    .map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.revocation_reason }))
    .sort((a, b) => (a.serial < b.serial ? -1 : 1));
}

/** Revoked certificates still inside their validity (what a CRL must list), newest expiry first. */
export async function revokedUnexpired(db: Queryable, now: Date, limit: number) {
  const { rows } = await db.query<{ serial: string; revoked_at: Date }>(
    `SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1
     ORDER BY not_after DESC, serial LIMIT $2`,
    [now, limit],
  );
  return rows;
}

export async function nextCrlNumber(db: Queryable): Promise<bigint> {
  const { rows } = await db.query<{ value: bigint | string }>(
    'UPDATE crl_number SET value = value + 1 WHERE id = 1 RETURNING value',
  );
  return BigInt(rows[0]!.value);
}

export type CertificateFilter = 'valid' | 'revoked' | 'expired' | undefined;

export async function listCertificates(
  db: Queryable,
  opts: {
    hostId: string;
    status: CertificateFilter;
    now: Date;
    limit: number;
    after?: { issuedAt: Date; serial: string };
  },
): Promise<CertificateRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (opts.hostId !== '') where.push(`host_id = ${param(opts.hostId)}`);
  if (opts.status === 'valid') where.push(`revoked_at IS NULL AND not_after > ${param(opts.now)}`);
  if (opts.status === 'revoked') where.push('revoked_at IS NOT NULL');
  if (opts.status === 'expired') where.push(`revoked_at IS NULL AND not_after <= ${param(opts.now)}`);
  if (opts.after !== undefined) {
    where.push(`(issued_at, serial) < (${param(opts.after.issuedAt)}, ${param(opts.after.serial)})`);
  }
  const { rows } = await db.query<CertificateRow>(
    `SELECT ${CERT_COLUMNS} FROM certificates ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY issued_at DESC, serial DESC LIMIT ${param(opts.limit)}`,
    params,
  );
  return rows;
}

export async function getCertificateBySerial(
  db: Queryable,
  serial: string,
): Promise<CertificateRow | undefined> {
  const { rows } = await db.query<CertificateRow>(
    `SELECT ${CERT_COLUMNS} FROM certificates WHERE serial = $1`,
    [serial],
  );
  return rows[0];
}

/** What one verdict writes: its claim, the certificate issued or the live ones revoked, the host, the outbox. */
export interface VerdictWrite {
  attestationId: string;
  hostId: string;
  verdictId: string;
  outcome: 'issued' | 'refused';
  now: Date;
  /** The certificate issued (outcome 'issued'). */
  certificate?: Omit<CertificateRow, 'revoked_at' | 'revocation_reason'>;
  /**
   * Outcome 'refused': revoke every live certificate of the host with this reason. `expected` is
   * what the caller believes is live (sorted); the messages it built list exactly those serials.
   */
  revoke?: { reason: string; expected: readonly string[] };
  host: HostState;
  messages: readonly OutgoingMessage[];
}

export type VerdictWriteResult =
  /** Written: this delivery claimed the attestation. */
  | { outcome: 'claimed'; host: HostState }
  /** An earlier delivery claimed it; nothing was written. */
  | { outcome: 'redelivered' }
  /** `revoke.expected` was not what is live (returned, sorted); nothing was written. */
  | { outcome: 'live-changed'; live: string[] };

/** Raised inside the statement (rolling all of it back) when the revocation did not match `expected`. */
const LIVE_CHANGED = 'hostgate: live certificates changed during the refusal';

export function isLiveChangedError(err: unknown): boolean {
  return err instanceof Error && err.message.includes(LIVE_CHANGED);
}

/**
 * Writes a verdict in ONE statement (atomic without BEGIN/COMMIT): claims the attestation, and only
 * when the claim is new, inserts the certificate or revokes the live ones, upserts the host (as
 * putHost) and stores the messages. Data-modifying CTEs all see the statement's snapshot, so nothing
 * reads what a sibling wrote: the certificate and messages are built beforehand, and "claimed" is
 * whether the claim's RETURNING has a row.
 *
 * A refusal's messages list the certificates it revokes, which are known only after the UPDATE; the
 * caller passes the serials it expects instead. The claim happens only when the snapshot's live set
 * is exactly that (else 'live-changed' with the actual set, to build the messages again). Should the
 * UPDATE still revoke another set (a concurrent revocation committed after the snapshot), the
 * statement raises an error, which rolls all of it back; the caller retries.
 */
export async function recordVerdict(db: Queryable, w: VerdictWrite): Promise<VerdictWriteResult> {
  const params: unknown[] = [];
  const p = (v: unknown, type: string) => {
    params.push(v);
    return `$${params.length}::${type}`;
  };
  const attestationId = p(w.attestationId, 'text');
  const hostId = p(w.hostId, 'text');
  const now = p(w.now, 'timestamptz');
  const ctes: string[] = [];
  let gate = '';
  let liveSelect = 'NULL::text[]';
  let revokedCheck = 'NULL::int4';
  if (w.revoke !== undefined) {
    const expected = p(w.revoke.expected, 'text[]');
    ctes.push(
      `live AS (SELECT coalesce(array_agg(serial ORDER BY serial), '{}'::text[]) AS serials FROM certificates
         WHERE host_id = ${hostId} AND revoked_at IS NULL AND not_after > ${now})`,
    );
    // Compared as sets (serials are unique): no collation question between JS and SQL order.
    const same = (a: string) => `(${a} @> ${expected} AND ${a} <@ ${expected})`;
    gate = `WHERE ${same('(SELECT serials FROM live)')}`;
    liveSelect = '(SELECT serials FROM live)';
    // An error when the claim happened and what it revoked is not `expected`. Not a constant (the
    // planner would fold one and fail every time): a cast of a text built from what it revoked.
    revokedCheck = `(SELECT CASE WHEN EXISTS (SELECT 1 FROM claim)
           AND NOT ${same(`coalesce(array_agg(serial), '{}'::text[])`)}
         THEN ('${LIVE_CHANGED}: ' || coalesce(string_agg(serial, ','), ''))::int4 END FROM revoked)`;
  }
  ctes.push(
    `claim AS (INSERT INTO attestations (attestation_id, host_id, verdict_id, outcome, serial, decided_at)
       SELECT ${attestationId}, ${hostId}, ${p(w.verdictId, 'text')}, ${p(w.outcome, 'text')},
         ${p(w.certificate?.serial ?? null, 'text')}, ${now} ${gate}
       ON CONFLICT (attestation_id) DO NOTHING RETURNING attestation_id)`,
  );
  if (w.revoke !== undefined) {
    ctes.push(
      `revoked AS (UPDATE certificates SET revoked_at = ${now}, revocation_reason = ${p(w.revoke.reason, 'text')}
         WHERE host_id = ${hostId} AND revoked_at IS NULL AND not_after > ${now} AND EXISTS (SELECT 1 FROM claim)
         RETURNING serial)`,
    );
  }
  const c = w.certificate;
  if (c !== undefined) {
    ctes.push(
      `certificate AS (INSERT INTO certificates (serial, host_id, attestation_id, verdict_id, policy_class,
         policy_version, pcr_digest, der, not_before, not_after, issued_at)
       SELECT ${p(c.serial, 'text')}, ${p(c.host_id, 'text')}, claim.attestation_id, ${p(c.verdict_id, 'text')},
         ${p(c.policy_class, 'text')}, ${p(c.policy_version, 'int4')}, ${p(c.pcr_digest, 'bytea')},
         ${p(c.der, 'bytea')}, ${p(c.not_before, 'timestamptz')}, ${p(c.not_after, 'timestamptz')},
         ${p(c.issued_at, 'timestamptz')}
       FROM claim)`,
    );
  }
  if (w.messages.length > 0) {
    const rows = w.messages.map(
      (m, seq) =>
        `(${p(seq, 'int4')}, ${p(m.topic, 'text')}, ${p(m.key, 'text')}, ${p(m.value, 'bytea')}, ${p(JSON.stringify(m.headers), 'jsonb')})`,
    );
    ctes.push(
      `messages AS (INSERT INTO outbox (attestation_id, seq, topic, message_key, value, headers)
       SELECT claim.attestation_id, m.seq, m.topic, m.message_key, m.value, m.headers
       FROM claim, (VALUES ${rows.join(', ')}) AS m (seq, topic, message_key, value, headers))`,
    );
  }
  const s = w.host;
  ctes.push(
    `host AS (INSERT INTO hosts (${HOST_COLUMNS})
       SELECT ${p(s.hostId, 'text')}, ${p(s.healthy, 'bool')}, ${p(s.cause, 'text')}, ${p(s.reason, 'text')},
         ${p(s.reasonCode, 'text')}, ${p(JSON.stringify(s.refusals), 'jsonb')}, ${p(s.serial, 'text')},
         ${p(s.expiresAt, 'timestamptz')}, ${p(s.policyClass, 'text')}, ${p(s.policyVersion, 'int4')},
         ${p(s.attestationId, 'text')}, ${p(s.updatedAt, 'timestamptz')}
       FROM claim
       ${PUT_HOST_CONFLICT}
       RETURNING ${HOST_COLUMNS})`,
  );
  const { rows } = await db.query<HostRow & { live: string[] | null; revoked_check: number | null }>(
    `WITH ${ctes.join(',\n')}
     SELECT ${liveSelect} AS live, ${revokedCheck} AS revoked_check, host.*
     FROM (SELECT 1) AS one LEFT JOIN host ON true`,
    params,
  );
  const row = rows[0]!;
  if (row.host_id !== null) return { outcome: 'claimed', host: hostFromRow(row) };
  if (row.live !== null && w.revoke !== undefined && !sameSerials(row.live, w.revoke.expected)) {
    return { outcome: 'live-changed', live: [...row.live] };
  }
  return { outcome: 'redelivered' };
}

function sameSerials(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((s) => set.has(s));
}

/** Live (unrevoked, unexpired) certificate serials of a host, sorted. */
export async function liveSerials(db: Queryable, hostId: string, now: Date): Promise<string[]> {
  const { rows } = await db.query<{ serial: string }>(
    'SELECT serial FROM certificates WHERE host_id = $1 AND revoked_at IS NULL AND not_after > $2 ORDER BY serial',
    [hostId, now],
  );
  return rows.map((r) => r.serial);
}

export async function loadOutbox(db: Queryable, attestationId: string): Promise<OutgoingMessage[]> {
  const { rows } = await db.query<{
    topic: string;
    message_key: string;
    value: Uint8Array;
    headers: Record<string, string>;
  }>('SELECT topic, message_key, value, headers FROM outbox WHERE attestation_id = $1 ORDER BY seq', [
    attestationId,
  ]);
  return rows.map((r) => ({ topic: r.topic, key: r.message_key, value: r.value, headers: r.headers }));
}

/** Drops the stored messages of attestations decided before `before` (the outcome row stays). */
export async function pruneOutbox(db: Queryable, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM outbox WHERE attestation_id IN (
       SELECT attestation_id FROM attestations WHERE decided_at < $1 ORDER BY decided_at LIMIT $2)`,
    [before, limit],
  );
  return rowCount;
}

export async function audit(db: Queryable, actor: string, action: string, hostId: string, detail: unknown) {
  await db.query('INSERT INTO audit_log (actor, action, host_id, detail) VALUES ($1, $2, $3, $4::jsonb)', [
    actor,
    action,
    hostId,
    JSON.stringify(detail),
  ]);
}
