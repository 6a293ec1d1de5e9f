export {
  address,
  boolean,
  type ConfigErrorCode,
  ConfigError,
  type ConfigOf,
  type ConfigProblem,
  describeSchema,
  envName,
  type Field,
  type FieldOptions,
  integer,
  type LoadConfigOptions,
  loadConfig,
  oneOf,
  optionalString,
  parseAddress,
  type Schema,
  string,
} from './config.ts';
export { createLogger, LOG_LEVELS, type Logger, type LoggerOptions, type LogLevel } from './logger.ts';
export {
  ensurePropagator,
  extractFromHeaders,
  extractFromMetadata,
  type Headers,
  injectToHeaders,
  injectToMetadata,
  startTelemetry,
  type Telemetry,
  type TelemetryOptions,
} from './telemetry.ts';
export { HealthService, healthPackageDefinition, healthProtoPath, type ServingStatus } from './health.ts';
export { checkHealth, type HealthCheckResult } from './health-client.ts';
export {
  GrpcBindError,
  type GrpcServer,
  type GrpcServerOptions,
  type GrpcServiceRegistration,
  startGrpcServer,
} from './grpc-server.ts';
export { Batcher, BatcherError, type BatcherOptions } from './batcher.ts';
export { openServiceBus, parseBrokers } from './bus.ts';
export { Lifecycle, type SignalOptions } from './lifecycle.ts';
export {
  checkSchemaName,
  type Db,
  DbError,
  type DbErrorCode,
  type Migration,
  type QueryResult,
  type Queryable,
  schemaForService,
} from './db.ts';
export {
  type EmbeddedOptions,
  type EmbeddedPostgres,
  openEmbeddedPostgres,
  openPgliteDb,
} from './db-pglite.ts';
export { defaultCacheDir, seedFromTemplate } from './pglite-template.ts';
export { openPostgresDb, type PostgresOptions } from './db-postgres.ts';
export {
  type CommonConfig,
  commonConfig,
  envPrefixFor,
  loadServiceConfig,
  openServiceDb,
  type RunningService,
  runService,
  type ServiceDefinition,
  type ServiceDeps,
} from './service.ts';
export {
  type AdminCall,
  AdminAuthError,
  authorizeAdmin,
  isLoopbackPeer,
  OPERATOR_METADATA,
  warnIfAdminLoopbackOnly,
} from './admin-auth.ts';
