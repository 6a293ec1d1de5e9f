// eventlog-replayer: replays boot event logs against quoted PCRs and decodes measurements; stateless.
// The gRPC API is registered from @hostgate/protos; methods not implemented yet answer UNIMPLEMENTED.
import type { Bus } from '@hostgate/bus';
import { loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import type { EventlogReplayerServiceHandlers } from '@hostgate/protos';
import { type Logger, type RunningService, startGrpcServer } from '@hostgate/service-runtime';
import type { EventlogReplayerConfig } from './config.ts';

export interface EventlogReplayerDeps {
  logger: Logger;
  bus: Bus;
}

/** The service's gRPC handlers (business logic lands here). */
export function handlers(_deps: EventlogReplayerDeps): Partial<EventlogReplayerServiceHandlers> {
  return {};
}

/**
 * Starts eventlog-replayer on config.address with grpc.health.v1 SERVING once ready. The deps stay
 * the caller's: stop() drains the gRPC server but does not close the bus or store.
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
    services: [
      {
        name: SERVICE_NAMES.eventlogReplayer,
        definition: protos.EventlogReplayerService.service,
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
