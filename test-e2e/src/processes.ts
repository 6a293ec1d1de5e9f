// The four services as four OS processes (services/*/src/main.ts), configured only through the
// environment as a deployment configures them: KAFKA_BROKERS, DATABASE_URL (a database created
// for this run and dropped at stop) or PGlite per process under HOSTGATE_DATA_DIR, the
// HOSTGATE_*_ADDRESS of each, HOSTGATE_EK_ROOTS. A process can be killed and started again.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkHealth } from '@hostgate/service-runtime';
import type { KafkaBroker } from '@hostgate/testkit/kafka';
import { freePort } from '@hostgate/testkit/ports';
import pg from 'pg';
import { SERVICES, type ServiceClients, type ServiceName, serviceClients } from './harness.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ServiceProcessesOptions {
  kafka: KafkaBroker;
  /** EK trust anchors (PEM files). */
  ekRoots: string[];
  /** HOSTGATE_DATA_DIR of every process (PGlite folders when there is no DATABASE_URL). */
  dataDir: string;
  /** PostgreSQL server; a fresh database is created on it. Default: DATABASE_URL, else PGlite. */
  databaseUrl?: string;
  /** Extra environment per service, e.g. HOSTGATE_QUOTE_COLLECTOR_ATTEST_TIMEOUT_MS. */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Where the stderr tail of a process that died unexpectedly goes. */
  log?: (line: string) => void;
}

export interface ServiceProcesses {
  readonly addresses: Readonly<Record<ServiceName, string>>;
  readonly clients: ServiceClients;
  readonly store: 'postgresql' | 'pglite (one per process)';
  /** Current OS pid of each service process (and the broker's, as `kafka`). */
  pids(): Record<string, number>;
  /** Sends `signal` and waits for the process to exit. */
  kill(service: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts the service again (after kill) and waits until it reports SERVING. */
  restart(service: ServiceName): Promise<void>;
  /** SIGTERM to each (SIGKILL after 15 s), then the database is dropped; returns the commits it saw. */
  stop(): Promise<{ postgresCommits?: number }>;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function waitServing(service: ServiceName, address: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await checkHealth(address, { timeoutMs: 1000 });
    if (h.status === 'SERVING') return;
    if (Date.now() > deadline) throw new Error(`${service} not SERVING after ${timeoutMs} ms (${h.status})`);
    await sleep(100);
  }
}

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function startServiceProcesses(opts: ServiceProcessesOptions): Promise<ServiceProcesses> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const baseUrl = opts.databaseUrl ?? (process.env['DATABASE_URL'] || undefined);
  let dbName: string | undefined;
  let url: string | undefined;
  if (baseUrl !== undefined) {
    dbName = `hostgate_e2e_${randomBytes(5).toString('hex')}`;
    await withPg(baseUrl, (c) => c.query(`CREATE DATABASE ${dbName}`));
    const u = new URL(baseUrl);
    u.pathname = `/${dbName}`;
    url = u.toString();
  }
  const children = new Map<ServiceName, ChildProcess>();
  const addresses = {} as Record<ServiceName, string>;
  const envs = {} as Record<ServiceName, NodeJS.ProcessEnv>;
  const expectedExit = new Set<ChildProcess>();

  const launch = (service: ServiceName) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'services', service, 'src', 'main.ts')], {
      env: envs[service],
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      if (!expectedExit.has(child)) log(`${service} exited ${code ?? signal}: ${stderr.trim()}`);
    });
    children.set(service, child);
  };
  const terminate = async (child: ChildProcess, signal: NodeJS.Signals) => {
    expectedExit.add(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (!(await waitExit(child, 15_000))) {
      child.kill('SIGKILL');
      await waitExit(child, 5000);
    }
  };
  const dropDb = async () => {
    if (dbName !== undefined && baseUrl !== undefined)
      await withPg(baseUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  };

  try {
    for (const service of SERVICES) {
      addresses[service] = `127.0.0.1:${await freePort()}`;
      const prefix = `HOSTGATE_${service.toUpperCase().replace(/-/g, '_')}_`;
      const env: NodeJS.ProcessEnv = {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        HOSTGATE_LOG_LEVEL: 'warn',
        HOSTGATE_DATA_DIR: opts.dataDir,
        KAFKA_BROKERS: opts.kafka.bootstrap,
        [`${prefix}ADDRESS`]: addresses[service],
        ...(opts.env?.[service] ?? {}),
      };
      if (url !== undefined) env['DATABASE_URL'] = url;
      if (service === 'quote-collector') env['HOSTGATE_EK_ROOTS'] = opts.ekRoots.join(':');
      envs[service] = env;
      launch(service);
    }
    for (const service of SERVICES) await waitServing(service, addresses[service], 120_000);
  } catch (err) {
    await Promise.all([...children.values()].map((c) => terminate(c, 'SIGTERM')));
    await dropDb().catch(() => undefined);
    throw err;
  }

  const clients = serviceClients(addresses);
  const kafkaPid = Number(readFileSync(path.join(opts.kafka.dir, 'kafka.pid'), 'utf8').trim());
  let stopped: Promise<{ postgresCommits?: number }> | undefined;
  return {
    addresses,
    clients,
    store: url === undefined ? 'pglite (one per process)' : 'postgresql',
    pids() {
      const out: Record<string, number> = {};
      for (const [service, child] of children) if (child.pid !== undefined) out[service] = child.pid;
      if (Number.isInteger(kafkaPid)) out['kafka'] = kafkaPid;
      return out;
    },
    async kill(service, signal = 'SIGKILL') {
      const child = children.get(service);
      if (child !== undefined) await terminate(child, signal);
    },
    async restart(service) {
      const child = children.get(service);
      if (child !== undefined && child.exitCode === null && child.signalCode === null)
        throw new Error(`${service} is still running`);
      launch(service);
      await waitServing(service, addresses[service], 120_000);
    },
    stop() {
      stopped ??= (async () => {
        for (const c of Object.values(clients)) c.close();
        await Promise.all([...children.values()].map((c) => terminate(c, 'SIGTERM')));
        // Closed connections have flushed their statistics: every commit in this database is ours.
        let postgresCommits: number | undefined;
        if (dbName !== undefined && baseUrl !== undefined) {
          const r = await withPg(baseUrl, (c) =>
            c.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [dbName]),
          );
          postgresCommits = Number(r.rows[0]?.xact_commit ?? Number.NaN);
        }
        await dropDb();
        return postgresCommits === undefined ? {} : { postgresCommits };
      })();
      return stopped;
    },
  };
}
