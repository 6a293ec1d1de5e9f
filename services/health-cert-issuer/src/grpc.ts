// gRPC adapter: HealthCertIssuerService for schedulers and operators. Request checks and the
// mapping of errors to status codes live here; the logic is in issuer.ts.
import * as grpc from '@grpc/grpc-js';
import type {
  CertificateStatus__Output,
  FleetChangeCause,
  HealthCertIssuerServiceHandlers,
  HealthCertificate,
  HostStatus,
  WatchFleetResponse,
} from '@hostgate/protos';
import { timestampFromDate } from '@hostgate/protos';
import { authorizeAdmin, type Db, type Logger } from '@hostgate/service-runtime';
import type { FleetCause, FleetChange, FleetHub, HostState } from './fleet.ts';
import type { Issuer } from './issuer.ts';
import * as store from './store.ts';

const MAX_ID_CHARS = 128;
const MAX_REASON_CHARS = 512;
const SNAPSHOT_PAGE = 500;
/** Changes a slow watcher may leave unread (the stream is in object mode) before it is cut off; it reconnects and re-snapshots. */
const MAX_WATCH_BACKLOG = 10_000;

export class GrpcRequestError extends Error {
  override readonly name = 'GrpcRequestError';
  readonly status: grpc.status;
  constructor(status: grpc.status, message: string) {
    super(message);
    this.status = status;
  }
}

function invalid(message: string): GrpcRequestError {
  return new GrpcRequestError(grpc.status.INVALID_ARGUMENT, message);
}

function checkHostId(hostId: string): string {
  if (hostId === '' || hostId.length > MAX_ID_CHARS || /\p{Cc}/u.test(hostId)) {
    throw invalid(`host_id must be 1-${MAX_ID_CHARS} printable characters`);
  }
  return hostId;
}

const CAUSES: Record<FleetCause | 'snapshot', FleetChangeCause> = {
  snapshot: 'FLEET_CHANGE_CAUSE_SNAPSHOT',
  issued: 'FLEET_CHANGE_CAUSE_ISSUED',
  refused: 'FLEET_CHANGE_CAUSE_REFUSED',
  revoked: 'FLEET_CHANGE_CAUSE_REVOKED',
  expired: 'FLEET_CHANGE_CAUSE_EXPIRED',
};

/** The HostStatus of a stored state; an unknown host is unhealthy, not an error. */
export function hostStatus(hostId: string, state: HostState | undefined): HostStatus {
  if (state === undefined) {
    return {
      hostId,
      health: 'HOST_HEALTH_UNHEALTHY',
      reason: 'never attested: the host holds no health certificate',
    };
  }
  const out: HostStatus = {
    hostId: state.hostId,
    health: state.healthy ? 'HOST_HEALTH_HEALTHY' : 'HOST_HEALTH_UNHEALTHY',
    reason: state.reason,
    certificateSerial: state.healthy ? (state.serial ?? '') : '',
    policyClass: state.policyClass,
    policyVersion: state.policyVersion,
    attestationId: state.attestationId,
    updatedAt: timestampFromDate(state.updatedAt),
    refusals: state.cause === 'refused' ? state.refusals : [],
  };
  if (state.healthy && state.expiresAt !== null) out.expiresAt = timestampFromDate(state.expiresAt);
  if (!state.healthy && state.cause === 'refused' && state.reasonCode !== '') {
    out.reasonCode = state.reasonCode as HostStatus['reasonCode'];
  }
  return out;
}

function certificateStatus(row: store.CertificateRow, now: Date): CertificateStatus__Output {
  if (row.revoked_at !== null) return 'CERTIFICATE_STATUS_REVOKED';
  return row.not_after.getTime() <= now.getTime() ? 'CERTIFICATE_STATUS_EXPIRED' : 'CERTIFICATE_STATUS_VALID';
}

export function certificateProto(row: store.CertificateRow, now: Date): HealthCertificate {
  const out: HealthCertificate = {
    serial: row.serial,
    hostId: row.host_id,
    der: Buffer.from(row.der),
    notBefore: timestampFromDate(row.not_before),
    notAfter: timestampFromDate(row.not_after),
    policyClass: row.policy_class,
    policyVersion: row.policy_version,
    verdictId: row.verdict_id,
    attestationId: row.attestation_id,
    pcrDigest: Buffer.from(row.pcr_digest),
    status: certificateStatus(row, now),
  };
  if (row.revoked_at !== null) {
    out.revokedAt = timestampFromDate(row.revoked_at);
    out.revocationReason = row.revocation_reason ?? '';
  }
  return out;
}

const STATUS_FILTERS: Record<string, store.CertificateFilter> = {
  CERTIFICATE_STATUS_UNSPECIFIED: undefined,
  CERTIFICATE_STATUS_VALID: 'valid',
  CERTIFICATE_STATUS_REVOKED: 'revoked',
  CERTIFICATE_STATUS_EXPIRED: 'expired',
};

function encodePageToken(row: store.CertificateRow): string {
  return Buffer.from(JSON.stringify([row.issued_at.getTime(), row.serial])).toString('base64url');
}

function decodePageToken(token: string): { issuedAt: Date; serial: string } | undefined {
  if (token === '') return undefined;
  try {
    if (token.length > 256) throw new Error('too long');
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === 'string' &&
      /^[0-9a-f]{1,40}$/.test(value[1])
    ) {
      return { issuedAt: new Date(value[0] as number), serial: value[1] };
    }
  } catch {
    // fall through
  }
  throw invalid('page_token is not one this service returned');
}

export interface AdminAuth {
  /** Bearer token RevokeHost requires; undefined: loopback callers only. */
  adminToken: string | undefined;
}

export interface HandlerDeps {
  issuer: Issuer;
  db: Db;
  hub: FleetHub;
  logger: Logger;
  auth: AdminAuth;
  /** Open WatchFleet streams, ended on stop. */
  watchers: Set<grpc.ServerWritableStream<unknown, unknown>>;
  now?: () => Date;
}

function fail(logger: Logger, method: string, err: unknown): grpc.ServiceError {
  if (err instanceof GrpcRequestError) {
    return Object.assign(new Error(err.message), {
      code: err.status,
      details: err.message,
      metadata: new grpc.Metadata(),
    });
  }
  logger.error({ err, method }, 'grpc call failed');
  return Object.assign(new Error('internal error'), {
    code: grpc.status.INTERNAL,
    details: 'internal error',
    metadata: new grpc.Metadata(),
  });
}

/** Wraps an async unary handler: its result or thrown error becomes the gRPC answer. */
function unary<Req, Res>(
  logger: Logger,
  method: string,
  fn: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(fail(logger, method, err)),
    );
  };
}

export function grpcHandlers(deps: HandlerDeps): HealthCertIssuerServiceHandlers {
  const { issuer, logger } = deps;
  const now = deps.now ?? (() => issuer.now());
  return {
    CheckHost: unary(logger, 'CheckHost', async (call) => {
      const hostId = checkHostId(call.request.hostId);
      return { status: hostStatus(hostId, await issuer.hostState(hostId)) };
    }),

    GetCaBundle: unary(logger, 'GetCaBundle', async () => ({
      pem: issuer.ca.certificatePem,
      certificates: [Buffer.from(issuer.ca.certificateDer)],
    })),

    GetCrl: unary(logger, 'GetCrl', async () => {
      const crl = await issuer.currentCrl();
      return {
        der: Buffer.from(crl.der),
        thisUpdate: timestampFromDate(crl.thisUpdate),
        nextUpdate: timestampFromDate(crl.nextUpdate),
      };
    }),

    ListCertificates: unary(logger, 'ListCertificates', async (call) => {
      const req = call.request;
      if (req.hostId !== '') checkHostId(req.hostId);
      if (!(String(req.status) in STATUS_FILTERS)) throw invalid('unknown certificate status');
      const pageSize = req.pageSize === 0 ? 100 : req.pageSize;
      if (pageSize > 1000) throw invalid('page_size is at most 1000');
      const after = decodePageToken(req.pageToken);
      const at = now();
      const rows = await store.listCertificates(deps.db, {
        hostId: req.hostId,
        status: STATUS_FILTERS[String(req.status)],
        now: at,
        limit: pageSize + 1,
        ...(after === undefined ? {} : { after }),
      });
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        certificates: page.map((r) => certificateProto(r, at)),
        nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(last) : '',
      };
    }),

    RevokeHost: unary(logger, 'RevokeHost', async (call) => {
      const actor = authorizeAdmin(call, deps.auth.adminToken, 'RevokeHost');
      if (typeof actor !== 'string') throw new GrpcRequestError(actor.code, actor.details);
      const hostId = checkHostId(call.request.hostId);
      const reason = call.request.reason.trim();
      if (reason === '' || reason.length > MAX_REASON_CHARS || /\p{Cc}/u.test(reason)) {
        throw invalid(`reason must be 1-${MAX_REASON_CHARS} printable characters (it is audited)`);
      }
      const traceParent = call.metadata.get('traceparent')[0];
      const revoked = await issuer.revokeHost(
        hostId,
        reason,
        actor,
        typeof traceParent === 'string' ? traceParent : '',
      );
      return { serials: revoked.map((r) => r.serial) };
    }),

    WatchFleet: (call) => {
      watchFleet(call, deps).catch((err: unknown) => {
        logger.error({ err }, 'WatchFleet failed');
        // grpc-js turns an 'error' event into the call's status (destroy() would drop the status).
        if (!call.cancelled) call.emit('error', fail(logger, 'WatchFleet', err));
      });
    },
  };
}

async function watchFleet(
  call: grpc.ServerWritableStream<import('@hostgate/protos').WatchFleetRequest__Output, WatchFleetResponse>,
  deps: HandlerDeps,
): Promise<void> {
  const hostIds = call.request.hostIds;
  if (hostIds.length > 10_000) throw invalid('at most 10000 host_ids');
  for (const id of hostIds) checkHostId(id);
  const filter = hostIds.length > 0 ? new Set(hostIds) : undefined;
  let snapshotting = call.request.includeSnapshot;
  const held: FleetChange[] = [];
  let closed = false;
  const send = (change: FleetChange) => {
    if (closed) return;
    if (call.writableLength > MAX_WATCH_BACKLOG) {
      closed = true;
      unsubscribe();
      call.emit('error', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: 'watcher too slow: reconnect and ask for the snapshot again',
      });
      return;
    }
    call.write({ status: hostStatus(change.state.hostId, change.state), cause: CAUSES[change.cause] });
  };
  // Subscribed before the snapshot is read, so no change falls between the two.
  const unsubscribe = deps.hub.subscribe((change) => {
    if (filter !== undefined && !filter.has(change.state.hostId)) return;
    if (!snapshotting) send(change);
    else if (held.length < MAX_WATCH_BACKLOG) held.push(change);
    else {
      // The snapshot is being read too slowly for the fleet's pace: same remedy as a slow reader.
      closed = true;
      unsubscribe();
      call.emit('error', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: 'watcher too slow during the snapshot',
      });
    }
  });
  const end = () => {
    closed = true;
    unsubscribe();
    deps.watchers.delete(call as grpc.ServerWritableStream<unknown, unknown>);
  };
  deps.watchers.add(call as grpc.ServerWritableStream<unknown, unknown>);
  call.on('cancelled', end);
  call.on('close', end);
  call.on('error', end);
  if (!snapshotting) return;
  let pending: WatchFleetResponse | undefined;
  let after = '';
  for (;;) {
    const page = await store.listHosts(
      deps.db,
      after,
      SNAPSHOT_PAGE,
      filter === undefined ? undefined : [...filter],
    );
    for (const state of page) {
      if (closed) return;
      if (pending !== undefined && !call.write(pending)) {
        await new Promise((resolve) => {
          call.once('drain', resolve);
          call.once('close', resolve);
        });
      }
      pending = { status: hostStatus(state.hostId, deps.issuer.effective(state)), cause: CAUSES.snapshot };
    }
    const last = page.at(-1);
    if (last === undefined || page.length < SNAPSHOT_PAGE) break;
    after = last.hostId;
  }
  if (closed) return;
  call.write({
    ...(pending ?? {}),
    cause: pending === undefined ? 'FLEET_CHANGE_CAUSE_SNAPSHOT' : pending.cause,
    snapshotComplete: true,
  });
  snapshotting = false;
  for (const change of held.splice(0)) send(change);
}
