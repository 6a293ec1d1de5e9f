// quote-collector: agents' entry point: enrollment, challenges, attestation; owns the host registry and nonces.
// The gRPC handlers are thin: the checks live in collector.ts, the wait for the issuer in certificate-waiter.ts.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Bus } from '@hostgate/bus';
import {
  type AttestResponse,
  encodeEvidence,
  type Host,
  type HostState__Output,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type QuoteCollectorServiceHandlers,
  SERVICE_NAMES,
  timestampFromDate,
} from '@hostgate/protos';
import {
  authorizeAdmin,
  type Db,
  type Logger,
  OPERATOR_METADATA,
  type RunningService,
  startGrpcServer,
  warnIfAdminLoopbackOnly,
} from '@hostgate/service-runtime';
import { CertificateWaiter } from './certificate-waiter.ts';
import { MAX_EVENT_LOG_BYTES, QuoteCollector } from './collector.ts';
import { type QuoteCollectorConfig, requiredPcrSelection } from './config.ts';
import { migrations } from './migrations.ts';
import { type CollectorRefusal, refusal, toProtoRefusal } from './refusals.ts';
import { publishSocEvent, SOC_TYPES } from './soc-events.ts';
import { type HostRecord, type HostStateName, QuoteCollectorStore } from './store.ts';

export interface QuoteCollectorDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store (schema quote_collector). */
  db: Db;
  /** Epoch milliseconds (tests move time); Date.now by default. */
  now?: () => number;
}

/** Reads the EK trust anchors: colon-separated PEM files, each holding one or more certificates. */
export function loadEkRoots(spec: string | undefined): X509Certificate[] {
  if (spec === undefined || spec.trim() === '') return [];
  const roots: X509Certificate[] = [];
  for (const file of spec.split(':').filter((f) => f.trim() !== '')) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(
        `HOSTGATE_EK_ROOTS: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error(`HOSTGATE_EK_ROOTS: ${file} holds no PEM certificate`);
    for (const pem of blocks) {
      try {
        roots.push(new X509Certificate(pem));
      } catch (err) {
        throw new Error(`HOSTGATE_EK_ROOTS: ${file}: ${(err as Error).message}`);
      }
    }
  }
  return roots;
}

const STATE_TO_PROTO: Record<HostStateName, HostState__Output> = {
  PENDING_ACTIVATION: 'HOST_STATE_PENDING_ACTIVATION',
  ACTIVE: 'HOST_STATE_ACTIVE',
  DISABLED: 'HOST_STATE_DISABLED',
};

const ts = (ms: number | undefined) => (ms === undefined ? null : timestampFromDate(new Date(ms)));

async function hostToProto(store: QuoteCollectorStore, h: HostRecord): Promise<Host> {
  const counters = await store.getCounters(h.hostId);
  let lastQuoteInfo: Host['lastQuoteInfo'] = null;
  if (counters !== undefined) {
    const extra = JSON.parse(counters.quoteInfoJson) as { pcrDigest?: string; pcrSelection?: unknown };
    lastQuoteInfo = {
      clock: counters.clock.toString(),
      resetCount: counters.resetCount,
      restartCount: counters.restartCount,
      safe: counters.safe,
      firmwareVersion: counters.firmwareVersion.toString(),
      pcrDigest: Buffer.from(extra.pcrDigest ?? '', 'hex'),
      pcrSelection: (extra.pcrSelection ?? []) as NonNullable<Host['lastQuoteInfo']>['pcrSelection'],
      akName: h.akName ?? new Uint8Array(0),
    };
  }
  return {
    hostId: h.hostId,
    state: STATE_TO_PROTO[h.state],
    ekPublic: h.ekPublic,
    ekCertificate: h.ekCertificate,
    akPublic: h.akPublic ?? new Uint8Array(0),
    akName: h.akName ?? new Uint8Array(0),
    enrolledAt: ts(h.enrolledAtMs),
    activatedAt: ts(h.activatedAtMs),
    lastAttestedAt: ts(h.lastAttestedAtMs),
    lastQuoteInfo,
    ekCertificateIssuer: h.ekCertificateIssuer,
  };
}

function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export interface CollectorRuntime {
  collector: QuoteCollector;
  waiter: CertificateWaiter;
  bus: Bus;
  logger: Logger;
  attestTimeoutMs: number;
  /** When set, SetHostState needs `authorization: Bearer <token>`; unset: loopback callers only. */
  adminToken?: string | undefined;
  now?: () => number;
}

/** gRPC metadata naming the operator behind an admin call (audit). */
export { OPERATOR_METADATA };

/** The full Attest round trip: the collector's checks, Evidence published, the issuer's answer awaited. */
export async function attestRoundTrip(
  rt: CollectorRuntime,
  req: Parameters<QuoteCollector['attest']>[0],
): Promise<AttestResponse> {
  const refused = (hostId: string, refusals: CollectorRefusal[], attestationId = ''): AttestResponse => ({
    attestationId,
    hostId,
    refused: { refusals: refusals.map(toProtoRefusal) },
  });
  const checked = await rt.collector.attest(req);
  if (checked.kind === 'refused') {
    await publishSocEvent(
      rt.bus,
      rt.logger,
      SOC_TYPES.attestationRefused,
      checked.hostId,
      { refusals: checked.refusals.map(toProtoRefusal) },
      new Date(),
    );
    rt.logger.info(
      { hostId: checked.hostId, codes: checked.refusals.map((r) => r.code) },
      'attestation refused by the collector',
    );
    return refused(checked.hostId, checked.refusals);
  }
  const { evidence } = checked;
  const { attestationId, hostId } = evidence;
  // Registered before publishing, so an answer faster than this function cannot be missed.
  const wait = rt.waiter.wait(attestationId, rt.attestTimeoutMs);
  try {
    await rt.bus.publish(KAFKA_TOPICS.evidence, hostId, encodeEvidence(evidence), {
      'content-type': 'application/protobuf; proto=hostgate.v1.Evidence',
      'hostgate-attestation-id': attestationId,
    });
  } catch (err) {
    wait.cancel();
    rt.logger.error({ err, hostId, attestationId }, 'publishing evidence failed');
    return refused(
      hostId,
      [refusal('INTERNAL', 'the evidence could not be handed to the pipeline; retry')],
      attestationId,
    );
  }
  rt.logger.info({ hostId, attestationId }, 'evidence published');
  const outcome = await wait.promise;
  if (outcome.kind === 'timeout') {
    return refused(
      hostId,
      [
        refusal(
          'TIMEOUT',
          `no certificate or refusal within ${rt.attestTimeoutMs} ms; attestation ${attestationId} may still complete`,
        ),
      ],
      attestationId,
    );
  }
  const event = outcome.event;
  if (event.type === 'CERTIFICATE_EVENT_TYPE_ISSUED' && event.certificate !== null) {
    return { attestationId, hostId, certificate: event.certificate };
  }
  const reasons =
    event.refusals.length > 0
      ? event.refusals
      : [toProtoRefusal(refusal('INTERNAL', 'refused without a reason'))];
  return { attestationId, hostId, refused: { refusals: reasons } };
}

/** The service's gRPC handlers over a running collector. */
export function handlers(rt: CollectorRuntime): QuoteCollectorServiceHandlers {
  const { collector, logger } = rt;
  const store = collector.store;
  // Any unexpected failure answers INTERNAL with one line; the stack goes to the log.
  const unary =
    <Req, Res>(
      name: string,
      fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
    ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      fn(call.request, call).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (
            typeof err === 'object' &&
            err !== null &&
            'code' in err &&
            typeof err.code === 'number' &&
            'details' in err
          ) {
            callback(err as grpc.ServiceError);
            return;
          }
          logger.error({ err, method: name }, 'request failed');
          callback(grpcError(grpc.status.INTERNAL, `${name} failed unexpectedly; retry`));
        },
      );
    };

  return {
    Enroll: unary('Enroll', async (req) => {
      const r = await collector.enroll(req);
      logger.info({ hostId: r.hostId, refused: r.refusals.map((x) => x.code) }, 'enroll');
      return {
        enrollmentId: r.enrollmentId,
        hostId: r.hostId,
        credentialBlob: r.credentialBlob,
        encryptedSecret: r.encryptedSecret,
        expiresAt: r.expiresAtMs > 0 ? timestampFromDate(new Date(r.expiresAtMs)) : null,
        refusals: r.refusals.map(toProtoRefusal),
      };
    }),
    ActivateEnrollment: unary('ActivateEnrollment', async (req) => {
      const r = await collector.activate(req.enrollmentId, req.secret);
      logger.info({ hostId: r.hostId, refused: r.refusals.map((x) => x.code) }, 'activate enrollment');
      if (r.refusals.length === 0)
        await publishSocEvent(rt.bus, logger, SOC_TYPES.hostEnrolled, r.hostId, {}, new Date());
      return {
        hostId: r.hostId,
        state: r.state === undefined ? 'HOST_STATE_UNSPECIFIED' : STATE_TO_PROTO[r.state],
        refusals: r.refusals.map(toProtoRefusal),
      };
    }),
    GetChallenge: unary('GetChallenge', async (req) => {
      const c = await collector.challenge(req.akName);
      if (c === 'invalid')
        throw grpcError(grpc.status.INVALID_ARGUMENT, 'ak_name must be a TPM name (2 to 66 bytes)');
      if (c === 'too-many')
        throw grpcError(
          grpc.status.RESOURCE_EXHAUSTED,
          'this AK holds too many unused nonces; use one or wait for them to expire',
        );
      return {
        nonce: c.nonce,
        expiresAt: timestampFromDate(new Date(c.expiresAtMs)),
        pcrSelection: collector.requiredSelectionProto,
      };
    }),
    Attest: unary('Attest', (req) => attestRoundTrip(rt, req)),
    GetHost: unary('GetHost', async (req) => {
      const h = req.hostId.length <= 64 ? await store.getHost(req.hostId) : undefined;
      if (h === undefined) throw grpcError(grpc.status.NOT_FOUND, `no host '${req.hostId.slice(0, 64)}'`);
      return { host: await hostToProto(store, h) };
    }),
    ListHosts: unary('ListHosts', async (req) => {
      const size = req.pageSize === 0 ? 100 : Math.min(req.pageSize, 1000);
      const state =
        req.state === 'HOST_STATE_UNSPECIFIED'
          ? undefined
          : (Object.entries(STATE_TO_PROTO).find(([, v]) => v === req.state)?.[0] as
              | HostStateName
              | undefined);
      const rows = await store.listHosts({
        ...(state === undefined ? {} : { state }),
        ...(req.pageToken === '' ? {} : { after: req.pageToken }),
        limit: size + 1,
      });
      const page = rows.slice(0, size);
      return {
        hosts: await Promise.all(page.map((h) => hostToProto(store, h))),
        nextPageToken: rows.length > size ? (page[page.length - 1]?.hostId ?? '') : '',
      };
    }),
    SetHostState: unary('SetHostState', async (req, call) => {
      const actor = authorizeAdmin(call, rt.adminToken, 'SetHostState');
      if (typeof actor !== 'string') throw grpcError(actor.code, actor.details);
      if (req.state !== 'HOST_STATE_ACTIVE' && req.state !== 'HOST_STATE_DISABLED')
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          'state must be HOST_STATE_ACTIVE or HOST_STATE_DISABLED',
        );
      const h = req.hostId.length <= 64 ? await store.getHost(req.hostId) : undefined;
      if (h === undefined) throw grpcError(grpc.status.NOT_FOUND, `no host '${req.hostId.slice(0, 64)}'`);
      if (req.state === 'HOST_STATE_ACTIVE' && h.akName === undefined)
        throw grpcError(
          grpc.status.FAILED_PRECONDITION,
          `host ${h.hostId} never completed activation; it cannot be made ACTIVE`,
        );
      const next = req.state === 'HOST_STATE_ACTIVE' ? 'ACTIVE' : 'DISABLED';
      const reason = req.reason.slice(0, 1024);
      const updated = await store.setHostState(h.hostId, next, reason, {
        actor,
        atMs: (rt.now ?? Date.now)(),
      });
      logger.info({ hostId: h.hostId, from: h.state, to: next, reason, actor }, 'audit: host state changed');
      return { host: await hostToProto(store, updated ?? h) };
    }),
  };
}

/**
 * Starts quote-collector on config.address with grpc.health.v1 SERVING once ready. The deps stay
 * the caller's: stop() drains the gRPC server but does not close the bus or store.
 */
export async function start(config: QuoteCollectorConfig, deps: QuoteCollectorDeps): Promise<RunningService> {
  const logger = deps.logger;
  const ekRoots = loadEkRoots(config.ekRoots);
  if (ekRoots.length === 0)
    logger.warn('HOSTGATE_EK_ROOTS is unset: every enrollment will be refused EK_CERT_UNTRUSTED');
  warnIfAdminLoopbackOnly(logger, config.adminToken, ['SetHostState']);
  await deps.db.migrate(migrations);
  const store = new QuoteCollectorStore(deps.db);
  const now = deps.now ?? Date.now;
  const collector = new QuoteCollector({
    store,
    ekRoots,
    nonceTtlMs: config.nonceTtlMs,
    enrollmentTtlMs: config.enrollmentTtlMs,
    pcrSelection: requiredPcrSelection(config),
    now,
  });
  const waiter = new CertificateWaiter({ store, now });
  await waiter.subscribe(deps.bus, logger);
  const protos = loadHostgateProtos();
  let server: Awaited<ReturnType<typeof startGrpcServer>>;
  try {
    server = await startGrpcServer({
      address: config.address,
      logger,
      // Room for an event log at the cap plus the rest of the request, so an oversized log is
      // refused EVIDENCE_TOO_LARGE with a reason rather than cut off by the transport.
      maxReceiveMessageLength: MAX_EVENT_LOG_BYTES + 2 * 1024 * 1024,
      services: [
        {
          name: SERVICE_NAMES.quoteCollector,
          definition: protos.QuoteCollectorService.service,
          implementation: handlers({
            collector,
            waiter,
            bus: deps.bus,
            logger,
            attestTimeoutMs: config.attestTimeoutMs,
            adminToken: config.adminToken,
            now,
          }),
        },
      ],
      reflection: [protos.packageDefinition],
    });
  } catch (err) {
    await waiter.close();
    throw err;
  }
  server.setServing(true);
  // Expired nonces and enrollments are refused either way; pruning only keeps the tables small.
  const prune = setInterval(() => {
    Promise.all([store.pruneNonces(now() - 3_600_000), store.pruneEnrollments(now() - 3_600_000)]).catch(
      (err: unknown) => logger.warn({ err }, 'pruning expired nonces and enrollments failed'),
    );
  }, 600_000);
  prune.unref();
  let stopped: Promise<void> | undefined;
  return {
    address: server.address,
    stop: () => {
      stopped ??= (async () => {
        clearInterval(prune);
        await server.shutdown(config.shutdownGraceMs);
        await waiter.close();
      })();
      return stopped;
    },
  };
}
