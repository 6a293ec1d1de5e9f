// What every HostGate service shares: the common config keys, picking a store, and the
// standalone entry point (config -> logs -> telemetry -> store -> start -> wait for SIGTERM).
import path from 'node:path';
import type { Bus } from '@hostgate/bus';
import { openServiceBus } from './bus.ts';
import {
  ConfigError,
  type ConfigOf,
  integer,
  loadConfig,
  oneOf,
  optionalString,
  type Schema,
  string,
} from './config.ts';
import { type Db, schemaForService } from './db.ts';
import { openPgliteDb } from './db-pglite.ts';
import { openPostgresDb } from './db-postgres.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, LOG_LEVELS, type Logger } from './logger.ts';
import { startTelemetry } from './telemetry.ts';

/** Keys every service has; their env names are shared (no per-service prefix). */
export const commonConfig = {
  logLevel: oneOf(LOG_LEVELS, 'info', 'log level', { env: 'HOSTGATE_LOG_LEVEL' }),
  dataDir: string('./.hostgate', 'folder for embedded data (PGlite), one subfolder per service', {
    env: 'HOSTGATE_DATA_DIR',
    nonEmpty: true,
  }),
  databaseUrl: optionalString('PostgreSQL server URL; embedded PGlite under dataDir when unset', {
    env: 'DATABASE_URL',
  }),
  kafkaBrokers: optionalString('Kafka bootstrap brokers, comma-separated; in-process bus when unset', {
    env: 'KAFKA_BROKERS',
  }),
  shutdownGraceMs: integer(10_000, 'how long in-flight gRPC calls may run after SIGTERM', {
    env: 'HOSTGATE_SHUTDOWN_GRACE_MS',
    min: 0,
    max: 600_000,
  }),
} satisfies Schema;

export type CommonConfig = ConfigOf<typeof commonConfig>;

/** `quote-collector` -> `HOSTGATE_QUOTE_COLLECTOR_`. */
export function envPrefixFor(service: string): string {
  return `HOSTGATE_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
}

/** Opens the service's store: the PostgreSQL server when databaseUrl is set, else PGlite in dataDir/<service>. */
export function openServiceDb(service: string, config: CommonConfig): Promise<Db> {
  const schema = schemaForService(service);
  if (config.databaseUrl !== undefined) return openPostgresDb(config.databaseUrl, schema);
  return openPgliteDb(path.resolve(config.dataDir, service), schema);
}

/** What a running service hands back to whoever started it. */
export interface RunningService {
  /** host:port its gRPC server listens on. */
  readonly address: string;
  /** Drains and stops the service; does not close the deps it was given. Idempotent. */
  stop(): Promise<void>;
}

/** What a service is given by whoever starts it; the caller owns them and closes them after stop(). */
export interface ServiceDeps {
  logger: Logger;
  bus: Bus;
  /** The service's store; absent for stateless services. */
  db?: Db;
}

export interface ServiceDefinition<S extends Schema, Deps extends ServiceDeps> {
  /** kebab-case name: logs, env prefix, data folder, schema. */
  name: string;
  config: S;
  /** Whether the service owns data (opens a Db). */
  stateful: boolean;
  start(config: ConfigOf<S>, deps: Deps): Promise<RunningService>;
}

/** Loads a service's config from the environment (plus optional values); throws ConfigError. */
export function loadServiceConfig<S extends Schema>(
  def: { name: string; config: S },
  env: NodeJS.ProcessEnv = process.env,
  values?: Record<string, unknown>,
): ConfigOf<S> {
  return loadConfig(def.config, {
    component: def.name,
    envPrefix: envPrefixFor(def.name),
    env,
    ...(values === undefined ? {} : { values }),
  });
}

/**
 * Standalone entry point of one service process. Exits 2 on a configuration error, 1 when
 * startup fails (both with one line on stderr), 0 after a clean shutdown on SIGTERM/SIGINT.
 */
export async function runService<S extends Schema & typeof commonConfig>(
  def: ServiceDefinition<S, ServiceDeps>,
): Promise<void> {
  let config: ConfigOf<S>;
  try {
    config = loadServiceConfig(def);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${def.name}: ${err.message}\n`);
    process.exit(2);
  }
  const common = config as unknown as CommonConfig;
  const logger = createLogger({ service: def.name, level: common.logLevel });
  const lifecycle = new Lifecycle(logger);
  lifecycle.handleSignals({ timeoutMs: common.shutdownGraceMs + 20_000 });
  try {
    const telemetry = await startTelemetry({ serviceName: `hostgate-${def.name}` });
    lifecycle.defer('telemetry', () => telemetry.shutdown());
    // Closed in reverse: service, then bus (its handlers drain into the store), then store.
    const db = def.stateful ? await openServiceDb(def.name, common) : undefined;
    if (db !== undefined) lifecycle.defer('db', () => db.close());
    const bus = await openServiceBus(def.name, common.kafkaBrokers, logger);
    lifecycle.defer('bus', () => bus.close());
    const deps: ServiceDeps = db === undefined ? { logger, bus } : { logger, bus, db };
    const running = await def.start(config, deps);
    lifecycle.defer(def.name, () => running.stop());
    logger.info({ address: running.address, telemetry: telemetry.enabled }, `${def.name} listening`);
  } catch (err) {
    // Interrupted while starting: the signal handler finishes the shutdown and exits.
    if (lifecycle.signal !== undefined) return;
    logger.fatal({ err }, 'startup failed');
    // Also on stderr: a supervisor that keeps only stderr (or discards the JSON log) still sees why.
    process.stderr.write(
      `${def.name}: startup failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    await lifecycle.shutdown('startup failed');
    process.exit(1);
  }
}
