// The end-to-end harness: the four services started in this process through their exported
// start(config, deps), each with its own bus connection and its own store, as four separate
// deployments would have them. Kafka is real (startKafka) unless the caller asks for the
// in-process bus; the store is the PostgreSQL server at DATABASE_URL (a throwaway schema per
// service) or PGlite in a temporary folder.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Bus, InProcessBus, KafkaBus } from '@hostgate/bus';
import * as eventlogReplayer from '@hostgate/eventlog-replayer';
import * as healthCertIssuer from '@hostgate/health-cert-issuer';
import * as policyEvaluator from '@hostgate/policy-evaluator';
import {
  type EventlogReplayerServiceClient,
  type HealthCertIssuerServiceClient,
  loadHostgateProtos,
  type PolicyEvaluatorServiceClient,
  type QuoteCollectorServiceClient,
} from '@hostgate/protos';
import * as quoteCollector from '@hostgate/quote-collector';
import {
  checkHealth,
  createLogger,
  type Db,
  type EmbeddedPostgres,
  type Logger,
  type LogLevel,
  loadServiceConfig,
  openEmbeddedPostgres,
  openPostgresDb,
  type RunningService,
  schemaForService,
} from '@hostgate/service-runtime';
import { type KafkaBroker, kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { createTestSchema, databaseUrl, type TestSchema } from '@hostgate/testkit/postgres';

export const SERVICES = [
  'health-cert-issuer',
  'policy-evaluator',
  'eventlog-replayer',
  'quote-collector',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Why a test that shells out to `tool` cannot run here, or undefined when it is on PATH. */
export function toolMissing(tool: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, tool))) return undefined;
  }
  return `${tool} not on PATH`;
}

/** Why the Kafka tier cannot run here (Java or the jars missing), or undefined. */
export function kafkaSkipReason(): string | undefined {
  return kafkaMissing();
}

export { type KafkaBroker, startKafka };

export interface PipelineOptions {
  /** A running broker: every service gets its own KafkaBus on it. Absent: one InProcessBus shared by all. */
  kafka?: KafkaBroker;
  /** EK trust anchors (PEM file paths) for quote-collector (HOSTGATE_EK_ROOTS). */
  ekRoots?: string[];
  /** Per-service config values on top of the defaults (addresses default to 127.0.0.1:0). */
  config?: Partial<Record<ServiceName, Record<string, unknown>>>;
  /** Log level of the services (default `warn`, or HOSTGATE_E2E_LOG_LEVEL). */
  logLevel?: LogLevel;
  /** Use PGlite even when DATABASE_URL is set. */
  embedded?: boolean;
}

export interface ServiceClients {
  collector: QuoteCollectorServiceClient;
  replayer: EventlogReplayerServiceClient;
  policy: PolicyEvaluatorServiceClient;
  issuer: HealthCertIssuerServiceClient;
}

export interface Pipeline {
  readonly addresses: Readonly<Record<ServiceName, string>>;
  readonly store: 'postgres' | 'pglite';
  readonly bus: 'kafka' | 'in-process';
  readonly dataDir: string;
  readonly clients: ServiceClients;
  /** Stops the services (collector first), then the buses and the stores; drops the test schemas. */
  stop(): Promise<void>;
}

function logLevel(opts: PipelineOptions): LogLevel {
  const fromEnv = process.env['HOSTGATE_E2E_LOG_LEVEL'];
  return opts.logLevel ?? ((fromEnv as LogLevel | undefined) || 'warn');
}

/** Starts the pipeline; on failure stops whatever had started and rethrows. */
export async function startPipeline(opts: PipelineOptions = {}): Promise<Pipeline> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-'));
  const closers: { what: string; close: () => Promise<void> }[] = [];
  const closeAll = async () => {
    const errors: unknown[] = [];
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        errors.push(new Error(`stopping ${c.what}: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
    closers.length = 0;
    await rm(dataDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'pipeline did not stop cleanly');
  };
  const level = logLevel(opts);
  const url = opts.embedded ? undefined : databaseUrl();
  try {
    let embedded: EmbeddedPostgres | undefined;
    const openDb = async (service: ServiceName): Promise<Db> => {
      if (url !== undefined) {
        const schema: TestSchema = await createTestSchema(`e2e_${schemaForService(service).slice(0, 20)}`);
        closers.push({ what: `${service} schema`, close: () => schema.drop() });
        const db = await openPostgresDb(url, schema.schema, { maxConnections: 4 });
        closers.push({ what: `${service} db`, close: () => db.close() });
        return db;
      }
      if (embedded === undefined) {
        const opened = await openEmbeddedPostgres(path.join(dataDir, 'pglite'));
        closers.push({ what: 'pglite', close: () => opened.close() });
        embedded = opened;
      }
      return embedded.db(schemaForService(service));
    };
    let shared: Bus | undefined;
    const openBus = async (service: ServiceName): Promise<Bus> => {
      if (opts.kafka !== undefined) {
        const bus = new KafkaBus({ brokers: [opts.kafka.bootstrap], clientId: `e2e-${service}` });
        closers.push({ what: `${service} bus`, close: () => bus.close() });
        return bus;
      }
      if (shared === undefined) {
        const bus = new InProcessBus();
        closers.push({ what: 'in-process bus', close: () => bus.close() });
        shared = bus;
      }
      return shared;
    };
    const common = { address: '127.0.0.1:0', dataDir, logLevel: level };
    const configFor = (service: ServiceName, own: Record<string, unknown> = {}) => ({
      ...common,
      ...own,
      ...(opts.config?.[service] ?? {}),
    });
    const loggerFor = (service: string): Logger => createLogger({ service, level });
    const addresses = {} as Record<ServiceName, string>;
    const started = async (service: ServiceName, run: () => Promise<RunningService>) => {
      const svc = await run();
      closers.push({ what: service, close: () => svc.stop() });
      addresses[service] = svc.address;
    };
    // Config comes from values only (env {}), so the developer's HOSTGATE_* variables never leak in.
    const noEnv = {};
    await started('health-cert-issuer', async () =>
      healthCertIssuer.start(
        loadServiceConfig(
          { name: healthCertIssuer.SERVICE_NAME, config: healthCertIssuer.configSchema },
          noEnv,
          configFor('health-cert-issuer'),
        ),
        {
          logger: loggerFor('health-cert-issuer'),
          bus: await openBus('health-cert-issuer'),
          db: await openDb('health-cert-issuer'),
        },
      ),
    );
    await started('policy-evaluator', async () =>
      policyEvaluator.start(
        loadServiceConfig(
          { name: policyEvaluator.SERVICE_NAME, config: policyEvaluator.configSchema },
          noEnv,
          configFor('policy-evaluator'),
        ),
        {
          logger: loggerFor('policy-evaluator'),
          bus: await openBus('policy-evaluator'),
          db: await openDb('policy-evaluator'),
        },
      ),
    );
    await started('eventlog-replayer', async () =>
      eventlogReplayer.start(
        loadServiceConfig(
          { name: eventlogReplayer.SERVICE_NAME, config: eventlogReplayer.configSchema },
          noEnv,
          configFor('eventlog-replayer'),
        ),
        { logger: loggerFor('eventlog-replayer'), bus: await openBus('eventlog-replayer') },
      ),
    );
    let ekRoots: string | undefined;
    if (opts.ekRoots !== undefined && opts.ekRoots.length > 0) ekRoots = opts.ekRoots.join(':');
    await started('quote-collector', async () =>
      quoteCollector.start(
        loadServiceConfig(
          { name: quoteCollector.SERVICE_NAME, config: quoteCollector.configSchema },
          noEnv,
          configFor('quote-collector', ekRoots === undefined ? {} : { ekRoots }),
        ),
        {
          logger: loggerFor('quote-collector'),
          bus: await openBus('quote-collector'),
          db: await openDb('quote-collector'),
        },
      ),
    );
    const clients = serviceClients(addresses);
    closers.push({
      what: 'clients',
      close: async () => {
        for (const c of Object.values(clients)) c.close();
      },
    });
    let stopped: Promise<void> | undefined;
    return {
      addresses,
      store: url === undefined ? 'pglite' : 'postgres',
      bus: opts.kafka === undefined ? 'in-process' : 'kafka',
      dataDir,
      clients,
      stop: () => {
        stopped ??= closeAll();
        return stopped;
      },
    };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}

/** Plaintext clients for the four services (16 MiB messages: evidence carries up to 8 MiB of log). */
export function serviceClients(addresses: Readonly<Record<ServiceName, string>>): ServiceClients {
  const protos = loadHostgateProtos();
  const creds = grpc.credentials.createInsecure();
  const options = { 'grpc.max_send_message_length': 16 << 20, 'grpc.max_receive_message_length': 16 << 20 };
  return {
    collector: new protos.QuoteCollectorService(addresses['quote-collector'], creds, options),
    replayer: new protos.EventlogReplayerService(addresses['eventlog-replayer'], creds, options),
    policy: new protos.PolicyEvaluatorService(addresses['policy-evaluator'], creds, options),
    issuer: new protos.HealthCertIssuerService(addresses['health-cert-issuer'], creds, options),
  };
}

/** grpc.health.v1 status of each service's own name on its address. */
export async function healthOf(
  addresses: Readonly<Record<ServiceName, string>>,
): Promise<Record<ServiceName, string>> {
  const names: Record<ServiceName, string> = {
    'quote-collector': 'hostgate.v1.QuoteCollectorService',
    'eventlog-replayer': 'hostgate.v1.EventlogReplayerService',
    'policy-evaluator': 'hostgate.v1.PolicyEvaluatorService',
    'health-cert-issuer': 'hostgate.v1.HealthCertIssuerService',
  };
  const out = {} as Record<ServiceName, string>;
  for (const s of SERVICES) out[s] = (await checkHealth(addresses[s], { service: names[s] })).status;
  return out;
}

/** Promise form of a unary call: `unary((cb) => client.Enroll(req, callOptions(), cb))`. */
export function unary<T>(
  start: (cb: (err: grpc.ServiceError | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, value) => {
      if (err !== null) reject(err);
      else if (value === undefined) reject(new Error('empty gRPC response'));
      else resolve(value);
    });
  });
}

/** Call options with a deadline `ms` from now. */
export function callOptions(ms = 30_000): grpc.CallOptions {
  return { deadline: new Date(Date.now() + ms) };
}

/** Whether a gRPC error is UNIMPLEMENTED (a method whose service has not landed it yet). */
export function isUnimplemented(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === grpc.status.UNIMPLEMENTED;
}

/** Writes PEM text to a file in `dir` and returns its path (EK roots are configured as files). */
export async function writePem(dir: string, name: string, pem: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, pem);
  return file;
}
