// policy-evaluator: judges measurements against golden-measurement sets; owns host classes, golden sets, verdict history.
// The gRPC API is registered from @hostgate/protos; methods not implemented yet answer UNIMPLEMENTED.
import type { Bus } from '@hostgate/bus';
import { loadHostgateProtos, SERVICE_NAMES } from '@hostgate/protos';
import type { PolicyEvaluatorServiceHandlers } from '@hostgate/protos';
import { type Db, type Logger, type RunningService, startGrpcServer } from '@hostgate/service-runtime';
import type { PolicyEvaluatorConfig } from './config.ts';
import { migrations } from './migrations.ts';

export interface PolicyEvaluatorDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store (schema policy_evaluator). */
  db: Db;
}

/** The service's gRPC handlers (business logic lands here). */
export function handlers(_deps: PolicyEvaluatorDeps): Partial<PolicyEvaluatorServiceHandlers> {
  return {};
}

/**
 * Starts policy-evaluator on config.address with grpc.health.v1 SERVING once ready. The deps stay
 * the caller's: stop() drains the gRPC server but does not close the bus or store.
 */
export async function start(
  config: PolicyEvaluatorConfig,
  deps: PolicyEvaluatorDeps,
): Promise<RunningService> {
  const logger = deps.logger;
  await deps.db.migrate(migrations);
  const protos = loadHostgateProtos();
  const server = await startGrpcServer({
    address: config.address,
    logger,
    services: [
      {
        name: SERVICE_NAMES.policyEvaluator,
        definition: protos.PolicyEvaluatorService.service,
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
