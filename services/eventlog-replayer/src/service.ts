// eventlog-replayer: replays boot event logs against quoted PCRs and decodes measurements; stateless.
// Kafka: Evidence (hostgate.evidence.v1) in, Measurements (hostgate.measurements.v1) out, keyed by
// host id; a log that does not replay still yields Measurements, carrying the refusals. gRPC: Replay.
import * as grpc from '@grpc/grpc-js';
import { type Bus, type BusMessage, PoisonMessageError, type Subscription } from '@hostgate/bus';
import {
  decodeEvidence,
  type Evidence__Output,
  type EventlogReplayerServiceHandlers,
  encodeMeasurements,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type Measurements,
  type ReplayResponse,
  SERVICE_NAMES,
  timestampFromDate,
} from '@hostgate/protos';
import { type Logger, type RunningService, startGrpcServer } from '@hostgate/service-runtime';
import type { EventlogReplayerConfig } from './config.ts';
import { MAX_EVENT_LOG_BYTES, replayEventLog } from './replay.ts';

export interface EventlogReplayerDeps {
  logger: Logger;
  bus: Bus;
}

/** Consumer group of the evidence subscription (one replay per attestation per group). */
export const CONSUMER_GROUP = 'eventlog-replayer';

/** Evidence → Measurements (same attestation id and host); pure apart from the clock. */
export function measurementsFromEvidence(evidence: Evidence__Output, now = new Date()): Measurements {
  const outcome = replayEventLog({ eventLog: evidence.eventLog, pcrBanks: evidence.quote?.pcrBanks ?? [] });
  const m: Measurements = {
    attestationId: evidence.attestationId,
    hostId: evidence.hostId,
    replayedAt: timestampFromDate(now),
    replay: outcome.replay,
    pcrBanks: evidence.quote?.pcrBanks ?? [],
    events: outcome.events,
    secureBoot: outcome.secureBoot,
    dbx: outcome.dbx,
    bootApplications: outcome.bootApplications,
    quoteInfo: evidence.quoteInfo,
    certifiedKey: evidence.certifiedKey,
    akPublic: evidence.akPublic,
    refusals: outcome.refusals,
  };
  if (outcome.dbxEventIndex !== undefined) m.dbxEventIndex = outcome.dbxEventIndex;
  return m;
}

/** Handles one evidence record: replay, publish Measurements. Throws only for poison or bus failures. */
export async function handleEvidence(deps: EventlogReplayerDeps, message: BusMessage): Promise<void> {
  let evidence: Evidence__Output;
  try {
    evidence = decodeEvidence(message.value);
  } catch (err) {
    throw new PoisonMessageError('PROTO_DECODE', `undecodable Evidence: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (evidence.attestationId === '' || evidence.hostId === '')
    throw new PoisonMessageError('EVIDENCE_INVALID', 'Evidence without attestation id or host id');
  if (message.key !== evidence.hostId)
    throw new PoisonMessageError(
      'EVIDENCE_INVALID',
      `record key ${JSON.stringify(message.key)} is not the Evidence host id ${JSON.stringify(evidence.hostId)}`,
    );
  const m = measurementsFromEvidence(evidence);
  const value = encodeBounded(m);
  const refusals = m.refusals ?? [];
  deps.logger.info(
    {
      attestationId: evidence.attestationId,
      hostId: evidence.hostId,
      match: m.replay?.match ?? false,
      events: m.events?.length ?? 0,
      refusals: refusals.map((r) => r.code),
    },
    refusals.length === 0 ? 'event log replayed' : 'event log refused',
  );
  await deps.bus.publish(KAFKA_TOPICS.measurements, evidence.hostId, value);
}

/** Largest Measurements record published (a real log gives tens of KiB; 8 MiB of tiny events could give 20 MiB+). */
export const MAX_MEASUREMENTS_BYTES = 4 * 1024 * 1024;

/**
 * Encodes Measurements within MAX_MEASUREMENTS_BYTES: first without the free-text descriptions, then,
 * if still too large, as a refusal that names the limit — never a record consumers would refuse.
 */
export function encodeBounded(m: Measurements, limit = MAX_MEASUREMENTS_BYTES): Uint8Array {
  let bytes = encodeMeasurements(m);
  if (bytes.length <= limit) return bytes;
  const events = (m.events ?? []).map((e) =>
    e.decoded ? { ...e, decoded: { ...e.decoded, description: '' } } : e,
  );
  bytes = encodeMeasurements({ ...m, events });
  if (bytes.length <= limit) return bytes;
  const size = bytes.length;
  return encodeMeasurements({
    ...m,
    events: [],
    bootApplications: [],
    dbx: [],
    secureBoot: { verified: false },
    replay: { ...m.replay, match: false, pcrs: [], eventsAtFault: [] },
    refusals: [
      ...(m.refusals ?? []),
      {
        code: 'EVENTLOG_MALFORMED',
        message: `the decoded event log (${size} bytes) exceeds the ${limit}-byte limit of a Measurements record`,
        details: { limit: String(limit), observed: String(size) },
      },
    ],
  });
}

/** The service's gRPC handlers. */
export function handlers(_deps: EventlogReplayerDeps): Partial<EventlogReplayerServiceHandlers> {
  return {
    Replay(call, callback) {
      const req = call.request;
      if (req.eventLog.length > MAX_EVENT_LOG_BYTES) {
        callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: `event log of ${req.eventLog.length} bytes exceeds ${MAX_EVENT_LOG_BYTES}`,
        });
        return;
      }
      const outcome = replayEventLog({ eventLog: req.eventLog, pcrBanks: req.quotedPcrs });
      const atFault = new Set(outcome.replay.eventsAtFault ?? []);
      const res: ReplayResponse = {
        replay: outcome.replay,
        events: req.includeEvents
          ? outcome.events
          : outcome.events.filter((e) => atFault.has(Number(e.index))),
        secureBoot: outcome.secureBoot,
        dbx: outcome.dbx,
        bootApplications: outcome.bootApplications,
        refusals: outcome.refusals,
      };
      callback(null, res);
    },
  };
}

/**
 * Starts eventlog-replayer on config.address with grpc.health.v1 SERVING once ready, subscribed to
 * the evidence topic. The deps stay the caller's: stop() closes the subscription (draining) and the
 * gRPC server, not the bus.
 */
export async function start(
  config: EventlogReplayerConfig,
  deps: EventlogReplayerDeps,
): Promise<RunningService> {
  const logger = deps.logger;
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: config.address,
    logger,
    // An 8 MiB log plus the PCR values and framing.
    maxReceiveMessageLength: MAX_EVENT_LOG_BYTES + 64 * 1024,
    services: [
      {
        name: SERVICE_NAMES.eventlogReplayer,
        definition: protos.EventlogReplayerService.service,
        implementation: handlers(deps),
      },
    ],
    reflection: [protos.packageDefinition],
  });
  let subscription: Subscription;
  try {
    subscription = await deps.bus.subscribe({
      topic: KAFKA_TOPICS.evidence,
      group: CONSUMER_GROUP,
      maxAttempts: config.deliveryAttempts,
      // A PoisonMessageError is dead-lettered by the bus on its first attempt; anything else is retried.
      handler: (message) => handleEvidence(deps, message),
      onError: (err, ctx) =>
        logger.warn(
          { err, ...ctx, offset: ctx.offset?.toString() },
          err instanceof PoisonMessageError ? 'poison message dead-lettered' : 'evidence handling failed',
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
