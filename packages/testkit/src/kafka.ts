import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

const HOST = '127.0.0.1';
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SCRIPT = path.join(ROOT, 'scripts', 'kafka.sh');

function onPath(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

function jarsFetched(): boolean {
  try {
    execFileSync(SCRIPT, ['classpath'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a real Kafka broker cannot run here, or undefined when it can. Jars that are not
 * fetched yet are not a reason while Maven is present: startKafka fetches them (once, cached).
 */
export function kafkaMissing(): string | undefined {
  if (!onPath('java'))
    return 'java not on PATH (the Kafka tier needs Java 17 and the jars of scripts/kafka.sh fetch)';
  if (!jarsFetched() && !onPath('mvn'))
    return 'Kafka jars not fetched and mvn not on PATH (run scripts/kafka.sh fetch)';
  return undefined;
}

export interface KafkaBroker {
  /** `host:port` for clients' bootstrap lists. */
  bootstrap: string;
  host: string;
  port: number;
  controllerPort: number;
  /** Data, config and log directory (removed by stop()). */
  dir: string;
  /** The pinned Apache Kafka version that is running. */
  version: string;
  /** Stops and starts the same broker (same directory, ports and data), as an operator's restart would. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface KafkaOptions {
  /** Seconds to wait for the broker to report it started. */
  readyTimeoutSeconds?: number;
  /** Keep the data directory after stop() (for post-mortems). */
  keepDir?: boolean;
  /**
   * 'test' (default): C1 only and the serial GC, quick to start, slower per request. 'server':
   * the full JIT and G1, as Kafka's own scripts run a broker (benchmarks; KAFKA_JVM_TUNING).
   */
  jvm?: 'test' | 'server';
}

function script(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(SCRIPT, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`scripts/kafka.sh ${args[0]} failed: ${String(stderr).trim().slice(-3000)}`));
      else resolve(String(stdout));
    });
  });
}

const running = new Set<number>();
let reaperInstalled = false;

function killRunning(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

/** A test process that exits or is interrupted without stop() must not leave a JVM behind. */
function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', killRunning);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killRunning();
      // Re-raise with the default action now that this one-shot listener is gone.
      process.kill(process.pid, signal);
    });
  }
}

/**
 * A single-node KRaft broker on free loopback ports in a temporary directory, ready when
 * this resolves. One per test file: a start costs about two seconds.
 */
export async function startKafka(options: KafkaOptions = {}): Promise<KafkaBroker> {
  const missing = kafkaMissing();
  if (missing) throw new Error(missing);
  const timeoutSeconds = options.readyTimeoutSeconds ?? 60;
  await script(['fetch'], 300_000);
  const version = (await script(['version'], 10_000)).trim();
  let lastError: unknown;
  // Free ports can be taken by someone else before the JVM binds them: retry with new ones.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-kafka-'));
    const port = await freePort();
    let controllerPort = await freePort();
    while (controllerPort === port) controllerPort = await freePort();
    const start = () =>
      new Promise<number>((resolve, reject) => {
        execFile(
          SCRIPT,
          ['start', dir, String(port), String(controllerPort)],
          {
            timeout: (timeoutSeconds + 30) * 1000,
            env: {
              ...process.env,
              KAFKA_START_TIMEOUT: String(timeoutSeconds),
              KAFKA_JVM_TUNING: options.jvm ?? 'test',
            },
          },
          (error, _stdout, stderr) => {
            if (error) reject(new Error(`Kafka did not start: ${String(stderr).trim().slice(-3000)}`));
            else resolve(Number(readFileSync(path.join(dir, 'kafka.pid'), 'utf8').trim()));
          },
        );
      });
    let pid: number;
    try {
      pid = await start();
    } catch (error) {
      lastError = error;
      await script(['stop', dir], 40_000).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    installReaper();
    running.add(pid);
    let stopped = false;
    return {
      bootstrap: `${HOST}:${port}`,
      host: HOST,
      port,
      controllerPort,
      dir,
      version,
      async restart() {
        if (stopped) throw new Error('the broker was stopped');
        await script(['stop', dir], 40_000);
        running.delete(pid);
        pid = await start();
        running.add(pid);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await script(['stop', dir], 40_000);
        running.delete(pid);
        if (!options.keepDir) await rm(dir, { recursive: true, force: true });
      },
    };
  }
  throw lastError instanceof Error ? lastError : new Error('Kafka did not start');
}
