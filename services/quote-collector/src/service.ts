// quote-collector: agents' entry point: enrollment, challenges, attestation; owns the host registry and nonces.
// The gRPC API is registered from @hostgate/protos; methods not implemented yet answer UNIMPLEMENTED.
import type { Bus } from '@hostgate/bus';
import { loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import type { QuoteCollectorServiceHandlers } from '@hostgate/protos';
import { type Db, type Logger, type RunningService, startGrpcServer } from '@hostgate/service-runtime';
import type { QuoteCollectorConfig } from './config.ts';
import { migrations } from './migrations.ts';

export interface QuoteCollectorDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store (schema quote_collector). */
  db: Db;
}

/** The service's gRPC handlers (business logic lands here). */
export function handlers(_deps: QuoteCollectorDeps): Partial<QuoteCollectorServiceHandlers> {
  return {};
}

/**
 * Starts quote-collector on config.address with grpc.health.v1 SERVING once ready. The deps stay
 * the caller's: stop() drains the gRPC server but does not close the bus or store.
 */
export async function start(config: QuoteCollectorConfig, deps: QuoteCollectorDeps): Promise<RunningService> {
  const logger = deps.logger;
  await deps.db.migrate(migrations);
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: config.address,
    logger,
    services: [
      {
        name: SERVICE_NAMES.quoteCollector,
        definition: protos.QuoteCollectorService.service,
        implementation: handlers(deps),
      },
    ],
    reflection: [protos.packageDefinition],
  });
  server.setServing(true);
  return {
    address: server.address,
    stop: () => server.shutdown(config.shutdownGraceMs),
  };
}
