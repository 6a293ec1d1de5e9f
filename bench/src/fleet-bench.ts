// Fleet simulator: software hosts (ECC EK + certificate, software AK, real credential activation)
// attest against the Kafka deployment of the four services — one OS process per service by
// default, as deployed — at fixed offered loads and then flat out, and report attestations/s and
// the round trip an agent sees (GetChallenge → certificate) at p50/p99.
//
//   npm run bench:fleet -w @hostgate/bench -- [--hosts 500] [--rates 100,200,500,max] [--duration 15]
//       [--concurrency 128] [--deploy processes|in-process] [--bus kafka|in-process]
//       [--eventlog FILE (a real boot log, e.g. from ../shared/corpus)] [--hops] [--json]
//       [--service-node-options='--cpu-prof --cpu-prof-dir=DIR' (NODE_OPTIONS of each service process)]
//       [--broker-jvm test|server (default test: C1 and the serial GC, as the tests run it; server =
//        full JIT + G1, as Kafka runs in production: less broker CPU at 200/s once compiled, but no
//        better p99 and a lower maximum here, see docs/e2e.md)]
//       [--warmup 0] [--warmup-rate 100] (seconds at that rate before the measured phases, reported
//        apart, e.g. to let the broker's full JIT compile first; 0 = none)
//
// With DATABASE_URL the services use a fresh database on that server (dropped afterwards);
// without it each service uses PGlite in a temporary folder.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseEventLog, replay } from '@hostgate/eventlog';
import { KafkaBus } from '@hostgate/bus';
import {
  type AttestResponse__Output,
  decodeCertificateEvent,
  decodeEvidence,
  decodeMeasurements,
  decodeVerdict,
  KAFKA_TOPICS,
} from '@hostgate/protos';
import {
  buildLog,
  callOptions,
  createSoftwareEkRoot,
  expectedPcrs,
  type KafkaBroker,
  type Pipeline,
  SERVICES,
  type ServiceClients,
  SoftwareHost,
  startKafka,
  startPipeline,
  startServiceProcesses,
  uefiBoot,
  unary,
} from '@hostgate/test-e2e';

export interface Phase {
  /** Offered attestations per second; 'max' runs `concurrency` hosts back to back. */
  rate: number | 'max';
  durationS: number;
}

export interface FleetBenchOptions {
  hosts: number;
  phases: Phase[];
  /**
   * An unmeasured phase run first (reported apart): a deployment that has run for a while has its
   * JIT-compiled code, a fresh one compiles during the first minute (the broker's full JIT most).
   */
  warmup?: Phase;
  /** Hosts attesting at once in the 'max' phase. */
  concurrency: number;
  deploy: 'processes' | 'in-process';
  bus: 'kafka' | 'in-process';
  /** A real boot log every host sends (its PCRs from a replay); default a synthetic UEFI boot. */
  eventLog?: string;
  /** Watch the four topics and split the round trip into hops (Kafka bus only). */
  hops?: boolean;
  /** NODE_OPTIONS for each service process (e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile them); processes only. */
  serviceNodeOptions?: string;
  /**
   * The broker's JVM: 'test' (default: C1 and the serial GC, as the tests run it) or 'server' (full JIT
   * and G1, as Kafka runs in production). 'server' costs more broker CPU while it compiles (≈ 3 against
   * 2.4–2.8 ms per certificate in a first 40 s at 100/s) and less once it has (1.1–1.3 against 1.6–1.7 ms
   * at 200/s after a `warmup`), yet gave no better p99 at 200/s and a lower maximum here (docs/e2e.md).
   */
  brokerJvm?: 'server' | 'test';
  /** Progress lines go here (stderr by default). */
  log?: (line: string) => void;
}

export interface PhaseResult {
  offered: string;
  durationS: number;
  started: number;
  issued: number;
  refused: number;
  errors: number;
  /** Offered attestations no idle host could take (the fleet was too small for the load). */
  skipped: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU milliseconds each measured process spent per certificate issued in the phase. */
  cpuMsPerIssued: Record<string, number>;
  /** With --hops: p50/p99 ms of each leg, as seen by an observer consuming every topic. */
  hops?: Record<string, { p50: number; p99: number }>;
}

const HOP_TOPICS = [
  KAFKA_TOPICS.evidence,
  KAFKA_TOPICS.measurements,
  KAFKA_TOPICS.verdicts,
  KAFKA_TOPICS.certificates,
] as const;

/** Arrival time at an observer of each attestation's record on each topic. */
class HopObserver {
  readonly arrivals = new Map<string, Partial<Record<string, number>>>();
  #bus: KafkaBus;
  private constructor(bus: KafkaBus) {
    this.#bus = bus;
  }
  static async start(bootstrap: string): Promise<HopObserver> {
    const bus = new KafkaBus({ brokers: [bootstrap], clientId: 'fleet-bench-observer' });
    const o = new HopObserver(bus);
    const decoders: Record<string, (v: Uint8Array) => { attestationId: string }> = {
      [KAFKA_TOPICS.evidence]: decodeEvidence,
      [KAFKA_TOPICS.measurements]: decodeMeasurements,
      [KAFKA_TOPICS.verdicts]: decodeVerdict,
      [KAFKA_TOPICS.certificates]: decodeCertificateEvent,
    };
    const tag = randomBytes(4).toString('hex');
    for (const topic of HOP_TOPICS) {
      await bus.subscribe({
        topic,
        group: `fleet-bench-hops-${tag}-${topic}`,
        handler: async (m) => {
          const at = performance.now();
          const id = decoders[topic]!(m.value).attestationId;
          const entry = o.arrivals.get(id) ?? {};
          entry[topic] ??= at;
          o.arrivals.set(id, entry);
        },
      });
    }
    return o;
  }
  close(): Promise<void> {
    return this.#bus.close();
  }
}

function hopSummary(
  obs: HopObserver,
  calls: { attestationId: string; start: number; end: number }[],
): Record<string, { p50: number; p99: number }> {
  const legs: Record<string, number[]> = {
    'agent → evidence': [],
    'evidence → measurements': [],
    'measurements → verdict': [],
    'verdict → certificate': [],
    'certificate → agent': [],
  };
  for (const c of calls) {
    const a = obs.arrivals.get(c.attestationId);
    const t = HOP_TOPICS.map((topic) => a?.[topic]);
    if (t.some((x) => x === undefined)) continue;
    const [ev, me, ve, ce] = t as number[];
    legs['agent → evidence']!.push(ev! - c.start);
    legs['evidence → measurements']!.push(me! - ev!);
    legs['measurements → verdict']!.push(ve! - me!);
    legs['verdict → certificate']!.push(ce! - ve!);
    legs['certificate → agent']!.push(c.end - ce!);
  }
  const out: Record<string, { p50: number; p99: number }> = {};
  for (const [k, v] of Object.entries(legs)) {
    v.sort((x, y) => x - y);
    out[k] = { p50: Math.round(percentile(v, 50) * 10) / 10, p99: Math.round(percentile(v, 99) * 10) / 10 };
  }
  return out;
}

export interface FleetReport {
  deploy: string;
  bus: string;
  store: string;
  hosts: number;
  cpus: number;
  /** Attestations the services handled in all (setup and warm-up included). */
  attestations: number;
  /** PostgreSQL commits of the four services over the run (processes on DATABASE_URL only). */
  postgresCommits?: number;
  /** The unmeasured warm-up phase, when there was one. */
  warmup?: PhaseResult;
  phases: PhaseResult[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Deployment {
  clients: ServiceClients;
  store: string;
  /** Stops the services; returns the PostgreSQL commits they made when the bench owned the database. */
  stop(): Promise<number | undefined>;
  /** OS processes whose CPU time is measured per phase (service processes, the Kafka broker). */
  pids(): Record<string, number>;
}

/** CPU seconds (user + system) a process has used, from /proc; undefined where /proc is absent. */
function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (clock ticks, 100 Hz on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** The log every simulated host sends and the SHA-256 PCR values its quote covers. */
async function fleetEvidence(
  file: string | undefined,
): Promise<{ eventLog: Uint8Array; pcrs: Map<number, Uint8Array> }> {
  if (file === undefined) {
    const events = uefiBoot();
    return { eventLog: buildLog(events), pcrs: expectedPcrs(events).get('sha256')! };
  }
  const eventLog = new Uint8Array(await readFile(file));
  const replayed = replay(parseEventLog(eventLog));
  const bank = replayed.pcrs['sha256'];
  if (bank === undefined) throw new Error(`${file} has no SHA-256 digests`);
  const pcrs = new Map<number, Uint8Array>();
  // PCRs the log never extended hold their reset value (zeros for 0-15).
  for (let pcr = 0; pcr < 8; pcr++) pcrs.set(pcr, bank[pcr] ?? new Uint8Array(32));
  return { eventLog, pcrs };
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function runFleetBench(opts: FleetBenchOptions): Promise<FleetReport> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-fleet-'));
  let kafka: KafkaBroker | undefined;
  let deployment: Deployment | undefined;
  let observer: HopObserver | undefined;
  try {
    if (opts.bus === 'kafka') {
      log('starting Kafka…');
      kafka = await startKafka({ jvm: opts.brokerJvm ?? 'test' });
    }
    const root = await createSoftwareEkRoot(dir);
    log(`starting the four services (${opts.deploy}, ${opts.bus} bus)…`);
    if (opts.deploy === 'processes') {
      if (kafka === undefined) throw new Error('separate processes need the Kafka bus');
      const procs = await startServiceProcesses({
        kafka,
        ekRoots: [root.pemFile],
        dataDir: path.join(dir, 'data'),
        log,
        ...(opts.serviceNodeOptions === undefined
          ? {}
          : {
              env: Object.fromEntries(
                SERVICES.map((s) => [s, { NODE_OPTIONS: opts.serviceNodeOptions as string }]),
              ),
            }),
      });
      deployment = {
        clients: procs.clients,
        store: procs.store,
        pids: () => procs.pids(),
        stop: async () => (await procs.stop()).postgresCommits,
      };
    } else {
      const pipeline: Pipeline = await startPipeline(
        kafka === undefined ? { ekRoots: [root.pemFile] } : { kafka, ekRoots: [root.pemFile] },
      );
      deployment = {
        clients: pipeline.clients,
        store: pipeline.store,
        stop: async () => {
          await pipeline.stop();
          return undefined;
        },
        pids: () => {
          const out: Record<string, number> = { 'all four services + bench': process.pid };
          const pidFile = kafka === undefined ? undefined : path.join(kafka.dir, 'kafka.pid');
          if (pidFile !== undefined) out['kafka'] = Number(readFileSync(pidFile, 'utf8').trim());
          return out;
        },
      };
    }
    const collector = deployment.clients.collector;
    const { eventLog, pcrs } = await fleetEvidence(opts.eventLog);
    if (opts.hops && kafka !== undefined) observer = await HopObserver.start(kafka.bootstrap);

    log(`enrolling ${opts.hosts} software hosts…`);
    const hosts = Array.from({ length: opts.hosts }, () => new SoftwareHost(root));
    await pool(hosts, 8, async (h) => {
      await h.enroll(collector);
    });
    const first = hosts[0]!;
    const refused = await first.attest(collector, pcrs, eventLog);
    if (refused.result !== 'refused') throw new Error('expected NO_POLICY before any golden set');
    await unary((cb) =>
      deployment!.clients.policy.Capture(
        { hostId: first.hostId, activate: true, description: 'fleet bench' },
        callOptions(),
        cb,
      ),
    );
    // Warm-up: every host attests once (connections, JIT, consumer assignments).
    await pool(hosts, 16, async (h) => {
      const r = await h.attest(collector, pcrs, eventLog);
      if (r.result !== 'certificate') throw new Error(`warm-up refused: ${JSON.stringify(r.refused)}`);
    });

    const running = deployment;
    const runPhase = async (phase: Phase): Promise<PhaseResult> => {
      const idle = [...hosts];
      const latencies: number[] = [];
      let issued = 0;
      let refusedCount = 0;
      let errors = 0;
      let started = 0;
      let skipped = 0;
      const inflight = new Set<Promise<void>>();
      const calls: { attestationId: string; start: number; end: number }[] = [];
      const one = (h: SoftwareHost): Promise<void> => {
        started++;
        const t0 = performance.now();
        const p = h
          .attest(collector, pcrs, eventLog)
          .then((r: AttestResponse__Output) => {
            const end = performance.now();
            latencies.push(end - t0);
            calls.push({ attestationId: r.attestationId, start: t0, end });
            if (r.result === 'certificate') issued++;
            else refusedCount++;
          })
          .catch(() => {
            errors++;
          })
          .finally(() => {
            idle.push(h);
            inflight.delete(p);
          });
        inflight.add(p);
        return p;
      };
      // The simulator's own signing and gRPC share the machine too (agents would be elsewhere).
      const pids = {
        ...running.pids(),
        ...(opts.deploy === 'processes' ? { simulator: process.pid } : {}),
      };
      const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecondsOf(pid)]));
      const t0 = performance.now();
      const endAt = t0 + phase.durationS * 1000;
      if (phase.rate === 'max') {
        const workers = Math.min(opts.concurrency, hosts.length);
        await Promise.all(
          Array.from({ length: workers }, async () => {
            while (performance.now() < endAt) {
              const h = idle.shift();
              if (h === undefined) {
                await sleep(1);
                continue;
              }
              await one(h);
            }
          }),
        );
      } else {
        // Open loop: attestation i is offered at t0 + i/rate, whether or not earlier ones finished.
        const rate = phase.rate;
        const total = Math.round(rate * phase.durationS);
        while (started + skipped < total) {
          const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
          while (started + skipped < due) {
            const h = idle.shift();
            if (h === undefined) skipped++;
            else void one(h);
          }
          await sleep(2);
        }
      }
      const elapsed = (performance.now() - t0) / 1000;
      await Promise.all(inflight);
      const cpuMsPerIssued: Record<string, number> = {};
      for (const [k, pid] of Object.entries(pids)) {
        const before = cpuBefore[k];
        const after = cpuSecondsOf(pid);
        if (before !== undefined && after !== undefined && issued > 0)
          cpuMsPerIssued[k] = Math.round(((after - before) * 1000 * 100) / issued) / 100;
      }
      latencies.sort((a, b) => a - b);
      return {
        offered:
          phase.rate === 'max'
            ? `max (${Math.min(opts.concurrency, hosts.length)} at once)`
            : `${phase.rate}/s`,
        durationS: Math.round(elapsed * 10) / 10,
        started,
        issued,
        refused: refusedCount,
        errors,
        skipped,
        perSecond: Math.round((issued / elapsed) * 10) / 10,
        p50Ms: Math.round(percentile(latencies, 50) * 10) / 10,
        p99Ms: Math.round(percentile(latencies, 99) * 10) / 10,
        maxMs: Math.round((latencies.at(-1) ?? Number.NaN) * 10) / 10,
        cpuMsPerIssued,
        ...(observer === undefined ? {} : { hops: hopSummary(observer, calls) }),
      };
    };

    let warmup: PhaseResult | undefined;
    if (opts.warmup !== undefined && opts.warmup.durationS > 0) {
      const w = opts.warmup;
      log(`warm-up ${w.rate === 'max' ? 'max' : `${w.rate}/s`} for ${w.durationS} s (not measured)…`);
      // Its errors and refusals show in its own row, as a measured phase's do.
      warmup = await runPhase(w);
    }
    const results: PhaseResult[] = [];
    for (const phase of opts.phases) {
      log(`phase ${phase.rate === 'max' ? 'max' : `${phase.rate}/s`} for ${phase.durationS} s…`);
      results.push(await runPhase(phase));
    }
    await observer?.close();
    observer = undefined;
    const store = deployment.store;
    const commits = await deployment.stop();
    deployment = undefined;
    const report: FleetReport = {
      deploy: opts.deploy,
      bus: opts.bus,
      store,
      hosts: opts.hosts,
      cpus: os.availableParallelism(),
      attestations: 1 + hosts.length + (warmup?.started ?? 0) + results.reduce((n, r) => n + r.started, 0),
      ...(warmup === undefined ? {} : { warmup }),
      phases: results,
    };
    if (commits !== undefined) report.postgresCommits = commits;
    return report;
  } finally {
    await observer?.close().catch(() => undefined);
    await deployment?.stop().catch((err: unknown) => log(`stopping the services: ${String(err)}`));
    await kafka?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatReport(r: FleetReport): string {
  const head = [
    'offered',
    'seconds',
    'issued/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'issued',
    'refused',
    'errors',
    'skipped',
  ];
  const shown =
    r.warmup === undefined
      ? r.phases
      : [{ ...r.warmup, offered: `warm-up ${r.warmup.offered}` }, ...r.phases];
  const rows = shown.map((p) => [
    p.offered,
    String(p.durationS),
    String(p.perSecond),
    String(p.p50Ms),
    String(p.p99Ms),
    String(p.maxMs),
    String(p.issued),
    String(p.refused),
    String(p.errors),
    String(p.skipped),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const lines = [
    `fleet bench: ${r.hosts} software hosts, services as ${r.deploy} on a ${r.bus} bus, store ${r.store}, ${r.cpus} CPUs, load average ${os.loadavg()[0]?.toFixed(1)}`,
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ];
  const procs = [...new Set(shown.flatMap((p) => Object.keys(p.cpuMsPerIssued)))];
  if (procs.length > 0) {
    lines.push('CPU ms per certificate (user + system, from /proc):');
    for (const p of shown)
      lines.push(`  ${p.offered}: ${procs.map((k) => `${k} ${p.cpuMsPerIssued[k] ?? '-'}`).join(', ')}`);
  }
  for (const p of r.phases) {
    if (p.hops === undefined) continue;
    lines.push(`round trip by leg at ${p.offered}, p50 / p99 ms (observer consuming every topic):`);
    for (const [leg, v] of Object.entries(p.hops)) lines.push(`  ${leg.padEnd(24)} ${v.p50} / ${v.p99}`);
  }
  if (r.postgresCommits !== undefined)
    lines.push(
      `PostgreSQL: ${r.postgresCommits} commits for ${r.hosts} enrollments and ${r.attestations} attestations (≈ ${(r.postgresCommits / r.attestations).toFixed(1)} per attestation)`,
    );
  return lines.join('\n');
}

export function parseCli(argv: string[]): FleetBenchOptions & { json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: 'string', default: '500' },
      rates: { type: 'string', default: '100,200,500,max' },
      duration: { type: 'string', default: '15' },
      concurrency: { type: 'string', default: '128' },
      deploy: { type: 'string', default: 'processes' },
      bus: { type: 'string', default: 'kafka' },
      eventlog: { type: 'string' },
      hops: { type: 'boolean', default: false },
      'service-node-options': { type: 'string' },
      'broker-jvm': { type: 'string', default: 'test' },
      warmup: { type: 'string', default: '0' },
      'warmup-rate': { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer ${min}..${max}`);
    return n;
  };
  const durationS = int('duration', values.duration, 1, 600);
  const phases = values.rates.split(',').map((r): Phase => {
    const t = r.trim();
    return { rate: t === 'max' ? 'max' : int('rates', t, 1, 100_000), durationS };
  });
  const warmup: Phase = {
    rate: int('warmup-rate', values['warmup-rate'], 1, 100_000),
    durationS: int('warmup', values.warmup, 0, 3600),
  };
  if (values.deploy !== 'processes' && values.deploy !== 'in-process')
    throw new Error('--deploy processes|in-process');
  if (values.bus !== 'kafka' && values.bus !== 'in-process') throw new Error('--bus kafka|in-process');
  if (values['broker-jvm'] !== 'server' && values['broker-jvm'] !== 'test')
    throw new Error('--broker-jvm server|test');
  if (values.deploy === 'processes' && values.bus === 'in-process')
    throw new Error('separate processes need the Kafka bus (--bus kafka)');
  return {
    ...(values.eventlog === undefined ? {} : { eventLog: values.eventlog }),
    ...(values['service-node-options'] === undefined
      ? {}
      : { serviceNodeOptions: values['service-node-options'] }),
    hosts: int('hosts', values.hosts, 1, 100_000),
    hops: values.hops,
    phases,
    ...(warmup.durationS > 0 ? { warmup } : {}),
    concurrency: int('concurrency', values.concurrency, 1, 10_000),
    deploy: values.deploy,
    bus: values.bus,
    brokerJvm: values['broker-jvm'],
    json: values.json,
  };
}

if (import.meta.main) {
  try {
    const opts = parseCli(process.argv.slice(2));
    const report = await runFleetBench(opts);
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  } catch (err) {
    process.stderr.write(`fleet-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
