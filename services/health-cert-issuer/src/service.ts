// health-cert-issuer: issues and revokes short-lived health certificates; owns the CA key, certificates, revocations.
// Consumes hostgate.verdicts.v1; publishes hostgate.certificates.v1 and hostgate.events.v1; serves
// HealthCertIssuerService (CheckHost, WatchFleet, CA bundle, CRL, certificates, RevokeHost).
import type * as grpc from '@grpc/grpc-js';
import { type Bus, PoisonMessageError, type Subscription } from '@hostgate/bus';
import { KAFKA_TOPICS, loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import type { HealthCertIssuerServiceHandlers } from '@hostgate/protos';
import {
  type Db,
  type Logger,
  type RunningService,
  startGrpcServer,
  warnIfAdminLoopbackOnly,
} from '@hostgate/service-runtime';
import { openCa } from './ca.ts';
import type { HealthCertIssuerConfig } from './config.ts';
import { SERVICE_NAME } from './config.ts';
import { FleetHub } from './fleet.ts';
import { FleetPoller } from './fleet-poller.ts';
import { grpcHandlers } from './grpc.ts';
import { Issuer } from './issuer.ts';
import { migrations } from './migrations.ts';

export interface HealthCertIssuerDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store (schema health_cert_issuer). */
  db: Db;
}

/** Consumer group on hostgate.verdicts.v1. */
export const CONSUMER_GROUP = SERVICE_NAME;

export interface RunningIssuer extends RunningService {
  readonly issuer: Issuer;
  readonly hub: FleetHub;
}

/** The service's gRPC handlers for an issuer already built (start() wires them). */
export function handlers(
  deps: HealthCertIssuerDeps & { issuer: Issuer; hub: FleetHub; adminToken?: string | undefined },
  watchers: Set<grpc.ServerWritableStream<unknown, unknown>> = new Set(),
): HealthCertIssuerServiceHandlers {
  return grpcHandlers({
    issuer: deps.issuer,
    db: deps.db,
    hub: deps.hub,
    logger: deps.logger,
    auth: { adminToken: deps.adminToken },
    watchers,
  });
}

/**
 * Starts health-cert-issuer on config.address with grpc.health.v1 SERVING once ready. The deps stay
 * the caller's: stop() drains the gRPC server and the verdict consumer but does not close the bus or store.
 */
export async function start(
  config: HealthCertIssuerConfig,
  deps: HealthCertIssuerDeps,
): Promise<RunningIssuer> {
  const logger = deps.logger;
  await deps.db.migrate(migrations);
  const { ca, origin } = await openCa(deps.db, config);
  logger.info({ origin, ca: ca.commonName, notAfter: ca.notAfter }, 'CA loaded');
  const hub = new FleetHub();
  const issuer = new Issuer({
    db: deps.db,
    bus: deps.bus,
    logger,
    ca,
    hub,
    validitySeconds: config.validitySeconds,
    backdateSeconds: config.backdateSeconds,
    crlValiditySeconds: config.crlValiditySeconds,
  });
  warnIfAdminLoopbackOnly(logger, config.adminToken, ['RevokeHost']);
  const watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: config.address,
    logger,
    services: [
      {
        name: SERVICE_NAMES.healthCertIssuer,
        definition: protos.HealthCertIssuerService.service,
        implementation: handlers({ ...deps, issuer, hub, adminToken: config.adminToken }, watchers),
      },
    ],
    reflection: [protos.packageDefinition],
  });
  let subscription: Subscription;
  try {
    subscription = await deps.bus.subscribe({
      topic: KAFKA_TOPICS.verdicts,
      group: CONSUMER_GROUP,
      // An outage delays attestations; it must not dead-letter them after the bus default 1.5 s.
      maxAttempts: config.deliveryAttempts,
      // A PoisonMessageError is dead-lettered by the bus on its first attempt; anything else is retried.
      handler: (message) => issuer.handleVerdict(message),
      onError: (err, context) => {
        if (!(err instanceof PoisonMessageError)) {
          logger.warn({ err, ...context }, 'verdict handling failed; retrying');
          return;
        }
        logger.warn({ err, ...context }, 'poison verdict dead-lettered');
        issuer.metrics.verdict('dead_lettered');
      },
    });
  } catch (err) {
    await server.shutdown(0);
    throw err;
  }
  let sweeping = false;
  let lastPrune = 0;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    const pruneDue = Date.now() - lastPrune > 3600_000;
    (async () => {
      await issuer.sweepExpired();
      if (pruneDue) {
        lastPrune = Date.now();
        const pruned = await issuer.pruneOutbox(config.outboxRetentionHours * 3600_000);
        if (pruned > 0) logger.info({ pruned }, 'old outbox messages dropped');
      }
    })()
      .catch((err: unknown) => logger.error({ err }, 'expiry sweep failed'))
      .finally(() => {
        sweeping = false;
      });
  }, config.expirySweepMs);
  sweep.unref();
  const poller = new FleetPoller({
    db: deps.db,
    hub,
    logger,
    intervalMs: config.fleetPollMs,
    now: issuer.now,
  });
  poller.start();
  server.setServing(true);
  let stopping: Promise<void> | undefined;
  return {
    address: server.address,
    issuer,
    hub,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(sweep);
        poller.stop();
        server.setServing(false);
        await subscription.close();
        // Watch streams never end on their own; end them so the server can drain.
        for (const call of watchers) call.end();
        watchers.clear();
        await server.shutdown(config.shutdownGraceMs);
      })();
      return stopping;
    },
  };
}
