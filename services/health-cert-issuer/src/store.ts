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

/**
 * Sets a host's state. A refusal or revocation keeps the class and version the host last passed
 * (HostStatus.policy_class is "the class the host last passed").
 */
export async function putHost(db: Queryable, s: HostState): Promise<HostState> {
  const { rows } = await db.query<HostRow>(
    `INSERT INTO hosts (${HOST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (host_id) DO UPDATE SET
       healthy = excluded.healthy, cause = excluded.cause, reason = excluded.reason,
       reason_code = excluded.reason_code, refusals = excluded.refusals, serial = excluded.serial,
       expires_at = excluded.expires_at,
       policy_class = CASE WHEN excluded.healthy THEN excluded.policy_class ELSE hosts.policy_class END,
       policy_version = CASE WHEN excluded.healthy THEN excluded.policy_version ELSE hosts.policy_version END,
       attestation_id = CASE WHEN excluded.attestation_id = '' THEN hosts.attestation_id ELSE excluded.attestation_id END,
       updated_at = excluded.updated_at
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

export async function insertCertificate(
  db: Queryable,
  c: Omit<CertificateRow, 'revoked_at' | 'revocation_reason'>,
) {
  await db.query(
    `INSERT INTO certificates (serial, host_id, attestation_id, verdict_id, policy_class, policy_version,
       pcr_digest, der, not_before, not_after, issued_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      c.serial,
      c.host_id,
      c.attestation_id,
      c.verdict_id,
      c.policy_class,
      c.policy_version,
      c.pcr_digest,
      c.der,
      c.not_before,
      c.not_after,
      c.issued_at,
    ],
  );
}

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

/** Claims an attestation; false when another delivery already decided it. */
export async function claimAttestation(
  db: Queryable,
  a: {
    attestationId: string;
    hostId: string;
    verdictId: string;
    outcome: 'issued' | 'refused';
    serial: string | null;
    now: Date;
  },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO attestations (attestation_id, host_id, verdict_id, outcome, serial, decided_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (attestation_id) DO NOTHING`,
    [a.attestationId, a.hostId, a.verdictId, a.outcome, a.serial, a.now],
  );
  return rowCount === 1;
}

export async function saveOutbox(db: Queryable, attestationId: string, messages: readonly OutgoingMessage[]) {
  if (messages.length === 0) return;
  // One statement for all of them: a round trip per message costs more than the rows.
  const params: unknown[] = [attestationId];
  const rows = messages.map((m, seq) => {
    params.push(seq, m.topic, m.key, m.value, JSON.stringify(m.headers));
    const n = params.length;
    return `($1, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb)`;
  });
  await db.query(
    `INSERT INTO outbox (attestation_id, seq, topic, message_key, value, headers) VALUES ${rows.join(', ')}`,
    params,
  );
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
