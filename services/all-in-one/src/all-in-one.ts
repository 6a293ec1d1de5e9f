// The embedded default: all four services in one process, one in-process bus (or Kafka when
// KAFKA_BROKERS is set), one store. Embedded, the store is a single PGlite instance under
// HOSTGATE_DATA_DIR/embedded with a schema per service — four PGlite instances took 8 s and
// 1.3 GB to initialise on a 2-core machine, one takes under 3 s.
import path from 'node:path';
import * as eventlogReplayer from '@hostgate/eventlog-replayer';
import * as healthCertIssuer from '@hostgate/health-cert-issuer';
import * as policyEvaluator from '@hostgate/policy-evaluator';
import * as quoteCollector from '@hostgate/quote-collector';
import {
  type CommonConfig,
  ConfigError,
  type ConfigOf,
  type ConfigProblem,
  createLogger,
  type Db,
  type EmbeddedPostgres,
  type LogLevel,
  Lifecycle,
  loadServiceConfig,
  openEmbeddedPostgres,
  openPostgresDb,
  openServiceBus,
  type Schema,
  schemaForService,
  startTelemetry,
} from '@hostgate/service-runtime';
import type { DestinationStream } from 'pino';

export interface AllInOneOptions {
  env?: NodeJS.ProcessEnv;
  /** Where log lines go (stdout by default). */
  logDestination?: DestinationStream;
  /** Overrides HOSTGATE_LOG_LEVEL. */
  logLevel?: LogLevel;
  /** Called before anything opens, e.g. to install signal handlers that also cover startup. */
  onLifecycle?: (lifecycle: Lifecycle) => void;
}

export interface AllInOne {
  /** In start order: consumers first, the agents' entry point (quote-collector) last. */
  readonly services: readonly { name: string; address: string }[];
  readonly dataDir: string;
  readonly store: 'pglite' | 'postgres';
  readonly bus: 'in-process' | 'kafka';
  readonly lifecycle: Lifecycle;
  /** Stops the services (reverse start order), then the bus, the store and telemetry. */
  stop(): Promise<boolean>;
}

/** Starts the four services in this process; on failure closes whatever had started and rethrows. */
export async function startAllInOne(opts: AllInOneOptions = {}): Promise<AllInOne> {
  const env = opts.env ?? process.env;
  // Every config is validated before anything starts, and every problem of all four is
  // reported at once, so a typo costs no startup time and no second attempt.
  const problems: ConfigProblem[] = [];
  const load = <S extends Schema>(def: {
    SERVICE_NAME: string;
    configSchema: S;
  }): ConfigOf<S> | undefined => {
    try {
      return loadServiceConfig({ name: def.SERVICE_NAME, config: def.configSchema }, env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems.map((p) => ({ ...p, source: `${def.SERVICE_NAME}: ${p.source}` })));
      return undefined;
    }
  };
  const loaded = {
    healthCertIssuer: load(healthCertIssuer),
    policyEvaluator: load(policyEvaluator),
    eventlogReplayer: load(eventlogReplayer),
    quoteCollector: load(quoteCollector),
  };
  // Shared keys are read by all four: report each bad one once.
  const unique = problems.filter(
    (p, i) =>
      problems.findIndex(
        (q) => q.message === p.message && q.source.split(': ')[1] === p.source.split(': ')[1],
      ) === i,
  );
  if (
    unique.length > 0 ||
    loaded.healthCertIssuer === undefined ||
    loaded.policyEvaluator === undefined ||
    loaded.eventlogReplayer === undefined ||
    loaded.quoteCollector === undefined
  )
    throw new ConfigError('hostgate', unique);
  const configs = {
    healthCertIssuer: loaded.healthCertIssuer,
    policyEvaluator: loaded.policyEvaluator,
    eventlogReplayer: loaded.eventlogReplayer,
    quoteCollector: loaded.quoteCollector,
  };
  const common: CommonConfig = configs.quoteCollector;
  const level = opts.logLevel ?? common.logLevel;
  const loggerFor = (service: string) =>
    createLogger(
      opts.logDestination === undefined
        ? { service, level }
        : { service, level, destination: opts.logDestination },
    );
  const logger = loggerFor('all-in-one');
  const lifecycle = new Lifecycle(logger);
  opts.onLifecycle?.(lifecycle);
  const services: { name: string; address: string }[] = [];
  const dataDir = path.resolve(common.dataDir);
  try {
    const telemetry = await startTelemetry({ serviceName: 'hostgate-all-in-one', env });
    lifecycle.defer('telemetry', () => telemetry.shutdown());

    let embedded: EmbeddedPostgres | undefined;
    const openDb = async (service: string): Promise<Db> => {
      if (common.databaseUrl !== undefined) {
        const db = await openPostgresDb(common.databaseUrl, schemaForService(service));
        lifecycle.defer(`${service} db`, () => db.close());
        return db;
      }
      if (embedded === undefined) {
        const t0 = performance.now();
        const opened = await openEmbeddedPostgres(path.join(dataDir, 'embedded'));
        lifecycle.defer('embedded postgres', () => opened.close());
        logger.info(
          { dataDir: opened.dataDir, ms: Math.round(performance.now() - t0) },
          'embedded PostgreSQL open',
        );
        embedded = opened;
      }
      return embedded.db(schemaForService(service));
    };

    const bus = await openServiceBus('all-in-one', common.kafkaBrokers, logger, { inProcessExpected: true });
    lifecycle.defer('bus', () => bus.close());

    const started = async (name: string, run: () => Promise<{ address: string; stop(): Promise<void> }>) => {
      const t0 = performance.now();
      const svc = await run().catch((err: unknown) => {
        throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      lifecycle.defer(name, () => svc.stop());
      services.push({ name, address: svc.address });
      logger.info(
        { started: name, address: svc.address, ms: Math.round(performance.now() - t0) },
        'service started',
      );
    };
    await started(healthCertIssuer.SERVICE_NAME, async () =>
      healthCertIssuer.start(configs.healthCertIssuer, {
        logger: loggerFor(healthCertIssuer.SERVICE_NAME),
        bus,
        db: await openDb(healthCertIssuer.SERVICE_NAME),
      }),
    );
    await started(policyEvaluator.SERVICE_NAME, async () =>
      policyEvaluator.start(configs.policyEvaluator, {
        logger: loggerFor(policyEvaluator.SERVICE_NAME),
        bus,
        db: await openDb(policyEvaluator.SERVICE_NAME),
      }),
    );
    await started(eventlogReplayer.SERVICE_NAME, () =>
      eventlogReplayer.start(configs.eventlogReplayer, {
        logger: loggerFor(eventlogReplayer.SERVICE_NAME),
        bus,
      }),
    );
    await started(quoteCollector.SERVICE_NAME, async () =>
      quoteCollector.start(configs.quoteCollector, {
        logger: loggerFor(quoteCollector.SERVICE_NAME),
        bus,
        db: await openDb(quoteCollector.SERVICE_NAME),
      }),
    );
  } catch (err) {
    await lifecycle.shutdown('startup failed');
    throw err;
  }
  return {
    services,
    dataDir,
    store: common.databaseUrl === undefined ? 'pglite' : 'postgres',
    bus: common.kafkaBrokers === undefined ? 'in-process' : 'kafka',
    lifecycle,
    stop: () => lifecycle.shutdown('stop'),
  };
}
