// policy-evaluator: judges measurements against the golden set of the host's class; owns host classes,
// golden sets (versioned, immutable once published), verdict history and the admin audit log.
// Kafka: Measurements (hostgate.measurements.v1) in, Verdict (hostgate.verdicts.v1) out, keyed by
// host id, one verdict per attestation id. gRPC: the operators' admin API and on-demand Evaluate.
import * as grpc from '@grpc/grpc-js';
import { type Bus, type BusMessage, PoisonMessageError, type Subscription } from '@hostgate/bus';
import {
  CaptureError,
  capture,
  evaluate,
  type GoldenSet as LibGoldenSet,
  PolicyStateError,
  PolicyValidationError,
} from '@hostgate/policy';
import {
  decodeMeasurements,
  decodeVerdict,
  encodeMeasurements,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type Measurements__Output,
  type PolicyEvaluatorServiceHandlers,
  SERVICE_NAMES,
  type Verdict,
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
import type { PolicyEvaluatorConfig } from './config.ts';
import {
  draftFromProto,
  goldenSetToProto,
  InvalidGoldenSetError,
  measurementsForPolicy,
  verdictToProto,
} from './convert.ts';
import { migrations } from './migrations.ts';
import { PolicyStore } from './store.ts';
import { type Recorded, VerdictRecorder } from './verdicts.ts';

export interface PolicyEvaluatorDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store (schema policy_evaluator). */
  db: Db;
}

/** Consumer group of the measurements subscription. */
export const CONSUMER_GROUP = 'policy-evaluator';
/** gRPC metadata naming the operator behind an admin call (audit). */
export { OPERATOR_METADATA };

/** A gRPC status to answer with. */
class StatusError extends Error {
  readonly status: grpc.status;
  constructor(status: grpc.status, message: string) {
    super(message);
    this.status = status;
  }
}

const CLASS_RE = /^[A-Za-z0-9._-]{1,64}$/;

function checkClass(hostClass: string, field = 'host_class'): string {
  if (!CLASS_RE.test(hostClass))
    throw new StatusError(
      grpc.status.INVALID_ARGUMENT,
      `${field} must be 1-64 letters, digits, '.', '_' or '-'`,
    );
  return hostClass;
}

function checkHostId(hostId: string): string {
  if (hostId === '' || hostId.length > 256)
    throw new StatusError(grpc.status.INVALID_ARGUMENT, 'host_id is required (at most 256 characters)');
  return hostId;
}

/** What Evaluate judges with: the class's active set (or the version asked for), undefined for NO_POLICY. */
async function judge(
  store: PolicyStore,
  m: Measurements__Output,
  opts: { hostClass?: string; version?: number },
): Promise<Verdict> {
  const hostClass = opts.hostClass || (await store.hostClass(m.hostId));
  let set: LibGoldenSet | undefined;
  if (opts.version) {
    const stored = await store.getSet(hostClass, opts.version);
    if (stored === undefined)
      throw new StatusError(grpc.status.NOT_FOUND, `golden set ${hostClass} v${opts.version} does not exist`);
    set = stored.set;
  } else set = (await store.activeSet(hostClass))?.set;
  const v = evaluate(set, measurementsForPolicy(m));
  return verdictToProto(v, { verdictId: '', hostClass, measurements: m, evaluatedAt: new Date() });
}

/**
 * Handles one Measurements record: the stored verdict of its attestation if there is one, else a new
 * one (stored first, then published). Throws for poison (dead-lettered) and store or bus failures (retried).
 */
export async function handleMeasurements(
  deps: PolicyEvaluatorDeps,
  recorder: VerdictRecorder,
  message: BusMessage,
): Promise<void> {
  let m: Measurements__Output;
  try {
    m = decodeMeasurements(message.value);
  } catch (err) {
    throw new PoisonMessageError('PROTO_DECODE', `undecodable Measurements: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (m.attestationId === '' || m.hostId === '')
    throw new PoisonMessageError('MEASUREMENTS_INVALID', 'Measurements without attestation id or host id');
  if (message.key !== m.hostId)
    throw new PoisonMessageError(
      'MEASUREMENTS_INVALID',
      `record key ${JSON.stringify(message.key)} is not the Measurements host id ${JSON.stringify(m.hostId)}`,
    );
  // Judged even on a redelivery: the statement storing the verdict keeps the first one and hands it
  // back, which costs one evaluation instead of a lookup on every first delivery.
  let recorded: Recorded;
  try {
    recorded = await recorder.record(m, message.value, new Date());
  } catch (err) {
    if (err instanceof PolicyValidationError)
      throw new PoisonMessageError('MEASUREMENTS_INVALID', err.message, { cause: err });
    throw err;
  }
  const { verdict, stored } = recorded;
  if (stored.created)
    deps.logger.info(
      {
        attestationId: m.attestationId,
        hostId: m.hostId,
        verdictId: stored.verdictId,
        pass: verdict.pass,
        hostClass: verdict.hostClass,
        policyVersion: verdict.policyVersion,
        refusals: (verdict.refusals ?? []).map((r) => r.code),
      },
      verdict.pass ? 'host passed' : 'host failed',
    );
  else
    deps.logger.info(
      { attestationId: m.attestationId, verdictId: stored.verdictId },
      'redelivered measurements: stored verdict published again',
    );
  await deps.bus.publish(KAFKA_TOPICS.verdicts, m.hostId, stored.verdict);
}

function operatorOf(call: { metadata: grpc.Metadata }): string {
  const v = call.metadata.get(OPERATOR_METADATA)[0];
  const s = typeof v === 'string' ? v.trim() : Buffer.isBuffer(v) ? v.toString('utf8').trim() : '';
  return s === '' ? 'anonymous' : s.slice(0, 256);
}

function pageOf(
  token: string,
  size: number | undefined,
  def: number,
  max: number,
): { limit: number; offset: number } {
  const offset = token === '' ? 0 : /^\d{1,9}$/.test(token) ? Number(token) : Number.NaN;
  if (!Number.isInteger(offset))
    throw new StatusError(grpc.status.INVALID_ARGUMENT, 'page_token is not one this service issued');
  return { limit: Math.min(max, size || def), offset };
}

/** Admin calls that change policy: audited; the admin token when configured, else loopback callers only. */
export const MUTATING_METHODS: ReadonlySet<string> = new Set([
  'PublishGoldenSet',
  'ActivateGoldenSet',
  'DeactivateGoldenSet',
  'Capture',
  'AssignHostClass',
]);

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/** The service's gRPC handlers. */
export function handlers(
  deps: PolicyEvaluatorDeps,
  store = new PolicyStore(deps.db),
  opts: { adminToken?: string | undefined } = {},
): Partial<PolicyEvaluatorServiceHandlers> {
  const { logger } = deps;
  /** Runs an async handler; maps library errors to gRPC status codes in this one place. */
  function unary<Req, Res>(name: string, fn: (req: Req, actor: string) => Promise<Res>): Unary<Req, Res> {
    const mutating = MUTATING_METHODS.has(name);
    return (call, callback) => {
      let actor = operatorOf(call);
      (async () => {
        if (mutating) {
          const authorized = authorizeAdmin(call, opts.adminToken, name);
          if (typeof authorized !== 'string') throw new StatusError(authorized.code, authorized.details);
          actor = authorized;
        }
        return fn(call.request, actor);
      })().then(
        (res) => callback(null, res),
        (err: unknown) => {
          let code = grpc.status.INTERNAL;
          let details = 'internal error';
          if (err instanceof StatusError) [code, details] = [err.status, err.message];
          else if (err instanceof InvalidGoldenSetError)
            [code, details] = [grpc.status.INVALID_ARGUMENT, err.message];
          else if (err instanceof PolicyValidationError)
            [code, details] = [
              grpc.status.INVALID_ARGUMENT,
              `${err.code}: ${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
            ];
          else if (err instanceof PolicyStateError)
            [code, details] = [
              err.code === 'UNKNOWN_VERSION' ? grpc.status.NOT_FOUND : grpc.status.FAILED_PRECONDITION,
              `${err.code}: ${err.message}`,
            ];
          else if (err instanceof CaptureError)
            [code, details] = [grpc.status.FAILED_PRECONDITION, `${err.code}: ${err.message}`];
          else logger.error({ err, method: name, actor }, 'admin call failed');
          callback({ code, details });
        },
      );
    };
  }

  return {
    PublishGoldenSet: unary('PublishGoldenSet', async (req, actor) => {
      const set = await store.publish(draftFromProto(req.goldenSet), actor);
      await store.audit(actor, 'PublishGoldenSet', {
        hostClass: set.class,
        version: set.version,
        rules: set.rules.length,
      });
      logger.info({ actor, hostClass: set.class, version: set.version }, 'golden set published');
      return { goldenSet: goldenSetToProto(set, { createdBy: actor, active: false }) };
    }),
    ActivateGoldenSet: unary('ActivateGoldenSet', async (req, actor) => {
      const hostClass = checkClass(req.hostClass);
      const previous = await store.activate(hostClass, req.version, actor);
      await store.audit(actor, 'ActivateGoldenSet', {
        hostClass,
        version: req.version,
        previous,
        reason: req.reason,
      });
      logger.info({ actor, hostClass, version: req.version, previous }, 'golden set activated');
      const stored = await store.getSet(hostClass, req.version);
      if (!stored)
        throw new StatusError(
          grpc.status.NOT_FOUND,
          `golden set ${hostClass} v${req.version} does not exist`,
        );
      return { goldenSet: goldenSetToProto(stored.set, stored), previousVersion: previous };
    }),
    DeactivateGoldenSet: unary('DeactivateGoldenSet', async (req, actor) => {
      const hostClass = checkClass(req.hostClass);
      const previous = await store.deactivate(hostClass);
      await store.audit(actor, 'DeactivateGoldenSet', { hostClass, previous, reason: req.reason });
      logger.info({ actor, hostClass, previous }, 'golden set deactivated');
      return { previousVersion: previous };
    }),
    ListGoldenSets: unary('ListGoldenSets', async (req) => {
      const page = pageOf(req.pageToken, req.pageSize, 100, 1000);
      if (req.hostClass) checkClass(req.hostClass);
      const sets = await store.listSets({
        ...(req.hostClass ? { hostClass: req.hostClass } : {}),
        activeOnly: req.activeOnly,
        limit: page.limit + 1,
        offset: page.offset,
      });
      const more = sets.length > page.limit;
      return {
        goldenSets: sets.slice(0, page.limit).map((s) => goldenSetToProto(s.set, s, req.omitRules)),
        nextPageToken: more ? String(page.offset + page.limit) : '',
      };
    }),
    GetGoldenSet: unary('GetGoldenSet', async (req) => {
      const hostClass = checkClass(req.hostClass);
      const stored =
        req.version === 0 ? await store.activeSet(hostClass) : await store.getSet(hostClass, req.version);
      if (!stored)
        throw new StatusError(
          grpc.status.NOT_FOUND,
          req.version === 0
            ? `host class ${hostClass} has no active golden set`
            : `golden set ${hostClass} v${req.version} does not exist`,
        );
      return { goldenSet: goldenSetToProto(stored.set, stored) };
    }),
    Capture: unary('Capture', async (req, actor) => {
      const hostId = checkHostId(req.hostId);
      const last = await store.lastMeasurements(hostId);
      if (!last)
        throw new StatusError(
          grpc.status.FAILED_PRECONDITION,
          `host ${hostId} has no measurements that replayed to its quote`,
        );
      const hostClass = req.hostClass ? checkClass(req.hostClass) : await store.hostClass(hostId);
      const m = measurementsForPolicy(decodeMeasurements(last.bytes));
      const draft = capture(hostClass, m, {
        description: req.description || `captured from host ${hostId}, attestation ${last.attestationId}`,
      });
      const set = await store.publish(draft, actor);
      let active = false;
      if (req.activate) {
        await store.activate(set.class, set.version, actor);
        active = true;
      }
      await store.audit(actor, 'Capture', {
        hostId,
        attestationId: last.attestationId,
        hostClass: set.class,
        version: set.version,
        activated: active,
      });
      logger.info(
        { actor, hostId, hostClass: set.class, version: set.version, activated: active },
        'golden set captured',
      );
      return {
        goldenSet: goldenSetToProto(set, { createdBy: actor, active }),
        attestationId: last.attestationId,
      };
    }),
    AssignHostClass: unary('AssignHostClass', async (req, actor) => {
      const hostId = checkHostId(req.hostId);
      const hostClass = checkClass(req.hostClass);
      const previous = await store.assignHostClass(hostId, hostClass, actor);
      await store.audit(actor, 'AssignHostClass', { hostId, hostClass, previous });
      return { previousHostClass: previous };
    }),
    Evaluate: unary('Evaluate', async (req) => {
      let m: Measurements__Output;
      if (req.subject === 'hostId' || (req.subject === undefined && req.hostId)) {
        const last = await store.lastMeasurements(checkHostId(req.hostId ?? ''));
        if (!last)
          throw new StatusError(
            grpc.status.FAILED_PRECONDITION,
            `host ${req.hostId} has no measurements that replayed to its quote`,
          );
        m = decodeMeasurements(last.bytes);
      } else if (req.measurements) {
        // Normalise through the codec so a caller's message has every default the consumer's has.
        m = decodeMeasurements(encodeMeasurements(req.measurements));
      } else throw new StatusError(grpc.status.INVALID_ARGUMENT, 'measurements or host_id is required');
      if (req.hostClass) checkClass(req.hostClass);
      const verdict = await judge(store, m, {
        ...(req.hostClass ? { hostClass: req.hostClass } : {}),
        version: req.version,
      });
      return { verdict };
    }),
    ListVerdicts: unary('ListVerdicts', async (req) => {
      const hostId = checkHostId(req.hostId);
      const page = pageOf(req.pageToken, req.pageSize, 20, 1000);
      const rows = await store.listVerdicts(hostId, {
        failedOnly: req.failedOnly,
        limit: page.limit + 1,
        offset: page.offset,
      });
      const more = rows.length > page.limit;
      return {
        verdicts: rows.slice(0, page.limit).map((b) => decodeVerdict(b)),
        nextPageToken: more ? String(page.offset + page.limit) : '',
      };
    }),
  };
}

/**
 * Starts policy-evaluator on config.address with grpc.health.v1 SERVING once ready, subscribed to the
 * measurements topic. The deps stay the caller's: stop() closes the subscription (draining) and the
 * gRPC server, not the bus or store.
 */
export async function start(
  config: PolicyEvaluatorConfig,
  deps: PolicyEvaluatorDeps,
): Promise<RunningService> {
  const logger = deps.logger;
  await deps.db.migrate(migrations);
  const store = new PolicyStore(deps.db);
  const recorder = new VerdictRecorder(store);
  warnIfAdminLoopbackOnly(logger, config.adminToken, [...MUTATING_METHODS]);
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: config.address,
    logger,
    services: [
      {
        name: SERVICE_NAMES.policyEvaluator,
        definition: protos.PolicyEvaluatorService.service,
        implementation: handlers(deps, store, { adminToken: config.adminToken }),
      },
    ],
    reflection: [protos.packageDefinition],
  });
  let subscription: Subscription;
  try {
    subscription = await deps.bus.subscribe({
      topic: KAFKA_TOPICS.measurements,
      group: CONSUMER_GROUP,
      maxAttempts: config.deliveryAttempts,
      // A PoisonMessageError is dead-lettered by the bus on its first attempt; anything else is retried.
      handler: (message) => handleMeasurements(deps, recorder, message),
      onError: (err, ctx) =>
        logger.warn(
          { err, topic: ctx.topic, partition: ctx.partition, offset: ctx.offset?.toString() },
          err instanceof PoisonMessageError ? 'poison message dead-lettered' : 'measurements handling failed',
        ),
    });
  } catch (err) {
    await server.shutdown(0);
    throw err;
  }
  server.setServing(true);
  let stopping: Promise<void> | undefined;
  return {
    address: server.address,
    stop: () => {
      stopping ??= (async () => {
        server.setServing(false);
        await subscription.close();
        await server.shutdown(config.shutdownGraceMs);
      })();
      return stopping;
    },
  };
}
