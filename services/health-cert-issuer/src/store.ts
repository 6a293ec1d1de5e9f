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

/** How putHost (and recordVerdicts) merge a host's new state into its row. */
const PUT_HOST_CONFLICT = `ON CONFLICT (host_id) DO UPDATE SET
       healthy = excluded.healthy, cause = excluded.cause, reason = excluded.reason,
       reason_code = excluded.reason_code, refusals = excluded.refusals, serial = excluded.serial,
       expires_at = excluded.expires_at,
       policy_class = CASE WHEN excluded.healthy THEN excluded.policy_class ELSE hosts.policy_class END,
       policy_version = CASE WHEN excluded.healthy THEN excluded.policy_version ELSE hosts.policy_version END,
       attestation_id = CASE WHEN excluded.attestation_id = '' THEN hosts.attestation_id ELSE excluded.attestation_id END,
       updated_at = excluded.updated_at`;

/** A host's state in HOST_COLUMNS order after host_id (putHost and recordVerdicts). */
function hostStateValues(s: HostState): unknown[] {
  return [
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
  ];
}

/**
 * Sets a host's state. A refusal or revocation keeps the class and version the host last passed
 * (HostStatus.policy_class is "the class the host last passed").
 */
export async function putHost(db: Queryable, s: HostState): Promise<HostState> {
  const { rows } = await db.query<HostRow>(
    `INSERT INTO hosts (${HOST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)
     ${PUT_HOST_CONFLICT}
     RETURNING ${HOST_COLUMNS}`,
    [s.hostId, ...hostStateValues(s)],
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
  /** The certificate issued (outcome 'issued'): of this write's host, attestation and verdict, issued at `now`. */
  certificate?: Omit<
    CertificateRow,
    'host_id' | 'attestation_id' | 'verdict_id' | 'issued_at' | 'revoked_at' | 'revocation_reason'
  >;
  /**
   * Outcome 'refused': revoke every live certificate of the host with this reason. `expected` is
   * what the caller believes is live (sorted); the messages it built list exactly those serials.
   */
  revoke?: { reason: string; expected: readonly string[] };
  /** The host's new state; its hostId is the write's. */
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

/** Raised inside the statement (rolling all of it back) when a revocation did not match `expected`. */
const LIVE_CHANGED = 'hostgate: live certificates changed during the refusal';

export function isLiveChangedError(err: unknown): boolean {
  return err instanceof Error && err.message.includes(LIVE_CHANGED);
}

/** Serials are lowercase hex: a comma-joined list is unambiguous, and '' is the empty list. */
const SERIAL = /^[0-9a-f]{1,64}$/;

/** `a` and `b` as sets (serials are unique): no collation question between JS and SQL order. */
const sameSet = (a: string, b: string) => `(${a} @> ${b} AND ${a} <@ ${b})`;

/**
 * The verdicts of one batch, one row each (`input.ord` is the write's index + 1): every CTE works on
 * all of them at once. Data-modifying CTEs all see the statement's snapshot, so nothing reads what a
 * sibling wrote: certificates and messages are built beforehand, and a write is claimed when the
 * claim's RETURNING has its row. Each host is in a batch at most once (recordVerdicts checks), so
 * the host upsert and the revocation touch a row once, and a write's rows are found by its host.
 */
const RECORD_VERDICTS = `WITH input AS MATERIALIZED (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
      $7::text[], $8::text[], $9::text[], $10::int4[], $11::int4[], $12::int4[], $13::timestamptz[],
      $14::timestamptz[], $15::bool[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
      $21::timestamptz[], $22::text[], $23::int4[], $24::text[], $25::timestamptz[], $26::int4[], $27::int4[])
    WITH ORDINALITY AS i (attestation_id, host_id, verdict_id, outcome, now, expected_list,
      revocation_reason, serial, policy_class, policy_version, pcr_digest_at, der_at, not_before,
      not_after, h_healthy, h_cause, h_reason, h_reason_code, h_refusals, h_serial, h_expires_at,
      h_policy_class, h_policy_version, h_attestation_id, h_updated_at, pcr_digest_length, der_length, ord)
),
expected AS (
  SELECT ord, string_to_array(expected_list, ',') AS serials FROM input WHERE expected_list IS NOT NULL
),
live AS (
  SELECT e.ord, e.serials AS expected,
    coalesce(array_agg(c.serial) FILTER (WHERE c.serial IS NOT NULL), '{}'::text[]) AS serials
  FROM expected e JOIN input i ON i.ord = e.ord
    LEFT JOIN certificates c ON c.host_id = i.host_id AND c.revoked_at IS NULL AND c.not_after > i.now
  GROUP BY e.ord, e.serials
),
claim AS (
  INSERT INTO attestations (attestation_id, host_id, verdict_id, outcome, serial, decided_at)
  SELECT i.attestation_id, i.host_id, i.verdict_id, i.outcome, i.serial, i.now
  FROM input i LEFT JOIN live l ON l.ord = i.ord
  WHERE i.expected_list IS NULL OR ${sameSet('l.serials', 'l.expected')}
  ORDER BY i.attestation_id
  ON CONFLICT (attestation_id) DO NOTHING
  RETURNING attestation_id, host_id
),
claimed AS (
  SELECT i.* FROM input i JOIN claim c ON c.attestation_id = i.attestation_id AND c.host_id = i.host_id
),
revoked AS (
  -- The EXISTS is evaluated once, before the join: a batch without a claimed refusal (the common
  -- case) reads no certificate at all. Without it the cached (generic) plan, built while the table
  -- was nearly empty, walked every live certificate of every host per statement (a fleet bench at
  -- 100/s: ~1300 buffers per statement, growing with the fleet).
  UPDATE certificates c SET revoked_at = k.now, revocation_reason = k.revocation_reason
  FROM claimed k
  WHERE k.expected_list IS NOT NULL AND c.host_id = k.host_id AND c.revoked_at IS NULL AND c.not_after > k.now
    AND EXISTS (SELECT 1 FROM claimed r WHERE r.expected_list IS NOT NULL)
  RETURNING k.ord, c.serial
),
revoked_check AS (
  -- An error when a claimed write revoked another set than it expected (a concurrent revocation
  -- committed after the snapshot). Not a constant (the planner would fold one and fail every
  -- time): a cast of a text built from what it revoked.
  SELECT e.ord, CASE WHEN NOT ${sameSet(`coalesce(array_agg(r.serial) FILTER (WHERE r.serial IS NOT NULL), '{}'::text[])`, 'e.serials')}
      THEN ('${LIVE_CHANGED}: ' || coalesce(string_agg(r.serial, ','), ''))::int4 END AS failed
  FROM claimed k JOIN expected e ON e.ord = k.ord LEFT JOIN revoked r ON r.ord = k.ord
  GROUP BY e.ord, e.serials
),
certificate AS (
  INSERT INTO certificates (serial, host_id, attestation_id, verdict_id, policy_class, policy_version,
    pcr_digest, der, not_before, not_after, issued_at)
  SELECT k.serial, k.host_id, k.attestation_id, k.verdict_id, k.policy_class, k.policy_version,
    substring($35::bytea FROM k.pcr_digest_at FOR k.pcr_digest_length),
    substring($35::bytea FROM k.der_at FOR k.der_length), k.not_before, k.not_after, k.now
  FROM claimed k WHERE k.serial IS NOT NULL
),
messages AS (
  INSERT INTO outbox (attestation_id, seq, topic, message_key, value, headers)
  SELECT k.attestation_id, m.seq, m.topic, m.message_key, substring($35::bytea FROM m.value_at FOR m.value_length),
    m.headers::jsonb
  FROM unnest($28::int4[], $29::int4[], $30::text[], $31::text[], $32::int4[], $33::int4[], $34::text[])
      AS m (ord, seq, topic, message_key, value_at, value_length, headers)
    JOIN claimed k ON k.ord = m.ord
),
host AS (
  INSERT INTO hosts (${HOST_COLUMNS})
  SELECT k.host_id, k.h_healthy, k.h_cause, k.h_reason, k.h_reason_code, k.h_refusals::jsonb, k.h_serial,
    k.h_expires_at, k.h_policy_class, k.h_policy_version, k.h_attestation_id, k.h_updated_at
  FROM claimed k ORDER BY k.host_id
  ${PUT_HOST_CONFLICT}
  RETURNING ${HOST_COLUMNS}
)
SELECT i.ord, l.serials AS live, rc.failed AS revoked_check, h.*
FROM input i LEFT JOIN live l ON l.ord = i.ord LEFT JOIN revoked_check rc ON rc.ord = i.ord
  LEFT JOIN host h ON h.host_id = i.host_id
ORDER BY i.ord`;

const ARRAY_ESCAPED = /["\\]/;

/**
 * A one-dimensional array parameter as the PostgreSQL array literal node-postgres would send for it
 * (every element quoted, `\` and `"` escaped, null as NULL; a Date as its ISO instant), built in one
 * pass: pg's own conversion runs two regex replacements per element and formats every Date anew
 * (~3 % of the issuer's CPU at 200 verdicts/s). `isoTexts` keeps Date texts by instant across the
 * columns of one statement (a verdict's now and notAfter are in two columns each). An element of
 * another type leaves the array to pg.
 */
export function arrayLiteral(
  values: readonly unknown[],
  isoTexts: Map<number, string> = new Map(),
): string | readonly unknown[] {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    let text: string;
    if (v === null || v === undefined) {
      out += 'NULL';
      continue;
    } else if (typeof v === 'string') {
      // Most elements (ids, serials, classes) have nothing to escape: tested before replacing.
      text = ARRAY_ESCAPED.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') : v;
    } else if (typeof v === 'number' || typeof v === 'boolean') {
      text = String(v);
    } else if (v instanceof Date) {
      const ms = v.getTime();
      if (!Number.isFinite(ms)) return values;
      let iso = isoTexts.get(ms);
      if (iso === undefined) {
        iso = v.toISOString();
        isoTexts.set(ms, iso);
      }
      text = iso;
    } else {
      return values;
    }
    out += `"${text}"`;
  }
  return `${out}}`;
}

/**
 * Writes verdicts in ONE statement (atomic without BEGIN/COMMIT), each as if alone: claims its
 * attestation and, only when the claim is new, inserts its certificate or revokes the host's live
 * ones, upserts the host (as putHost) and stores its messages. One result per write, in order.
 * At most one write per host (else a RangeError, nothing written).
 *
 * A refusal's messages list the certificates it revokes, which are known only after the UPDATE; the
 * caller passes the serials it expects instead. The claim happens only when the snapshot's live set
 * is exactly that (else 'live-changed' with the actual set, to build the messages again). Should the
 * UPDATE still revoke another set (a concurrent revocation committed after the snapshot), the
 * statement raises an error (isLiveChangedError), which rolls all of it back; the caller retries
 * (a batch of several writes, each alone).
 */
export async function recordVerdicts(
  db: Queryable,
  writes: readonly VerdictWrite[],
): Promise<VerdictWriteResult[]> {
  if (writes.length === 0) return [];
  const hosts = new Set<string>();
  const cols: unknown[][] = Array.from({ length: 27 }, () => new Array<unknown>(writes.length));
  const msgCols: unknown[][] = Array.from({ length: 7 }, () => []);
  // Every byte string goes in one bytea parameter, sent as it is (binary), each cut out by its
  // 1-based position and length: a bytea[] parameter is sent as text, every element hex-encoded
  // and escaped by the client and decoded again by the server.
  const blob: Uint8Array[] = [];
  let blobLength = 0;
  const put = (v: Uint8Array): number => {
    blob.push(v);
    blobLength += v.length;
    return blobLength - v.length + 1;
  };
  for (const [i, w] of writes.entries()) {
    if (hosts.has(w.hostId)) throw new RangeError(`host ${w.hostId} is written twice in one batch`);
    if (w.host.hostId !== w.hostId) throw new RangeError('a write sets the state of another host');
    hosts.add(w.hostId);
    const c = w.certificate;
    const s = w.host;
    let expected: string | null = null;
    if (w.revoke !== undefined) {
      if (!w.revoke.expected.every((serial) => SERIAL.test(serial)))
        throw new RangeError('an expected serial is not lowercase hex');
      expected = w.revoke.expected.join(',');
    }
    const row = [
      w.attestationId,
      w.hostId,
      w.verdictId,
      w.outcome,
      w.now,
      expected,
      w.revoke?.reason ?? null,
      c?.serial ?? null,
      c?.policy_class ?? null,
      c?.policy_version ?? null,
      c === undefined ? null : put(c.pcr_digest),
      c === undefined ? null : put(c.der),
      c?.not_before ?? null,
      c?.not_after ?? null,
      ...hostStateValues(s),
      c?.pcr_digest.length ?? null,
      c?.der.length ?? null,
    ];
    for (const [k, v] of row.entries()) cols[k]![i] = v;
    for (const [seq, m] of w.messages.entries()) {
      msgCols[0]!.push(i + 1);
      msgCols[1]!.push(seq);
      msgCols[2]!.push(m.topic);
      msgCols[3]!.push(m.key);
      msgCols[4]!.push(put(m.value));
      msgCols[5]!.push(m.value.length);
      msgCols[6]!.push(JSON.stringify(m.headers));
    }
  }
  const isoTexts = new Map<number, string>();
  const { rows } = await db.query<
    HostRow & { ord: bigint | number | string; live: string[] | null; revoked_check: number | null }
  >(RECORD_VERDICTS, [
    ...cols.map((c) => arrayLiteral(c, isoTexts)),
    ...msgCols.map((c) => arrayLiteral(c, isoTexts)),
    Buffer.concat(blob, blobLength),
  ]);
  if (rows.length !== writes.length)
    throw new Error(`${writes.length} verdicts answered with ${rows.length} rows`);
  return rows.map((row, i): VerdictWriteResult => {
    if (Number(row.ord) !== i + 1) throw new Error('verdict rows out of order');
    const w = writes[i]!;
    if (row.host_id !== null) return { outcome: 'claimed', host: hostFromRow(row) };
    if (row.live !== null && w.revoke !== undefined && !sameSerials(row.live, w.revoke.expected)) {
      return { outcome: 'live-changed', live: [...row.live].sort() };
    }
    return { outcome: 'redelivered' };
  });
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
