/**
 * CPU per message of the Kafka bus: a producer publishes N messages to topic A, a relay
 * consumes A and republishes each to B, a sink consumes B; each in its own process, against a
 * real broker (testkit). Reports CPU µs per message (process.cpuUsage) of each process and of
 * the broker (/proc), and the broker requests each process made per message (by API).
 *
 *   node src/bus-bench.ts [--messages 20000] [--rate 500|0] [--bytes 2048] [--keys 200] [--runs 1]
 *                         [--bus /path/to/kafka-bus.ts] [--jvm test|server]
 *
 * --rate 0 publishes flat out (at most 1000 publishes outstanding). --bus loads another copy of
 * kafka-bus.ts (an older version, to compare old and new in one broker, alternating with --bus-b).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectionsApiChannel } from '@platformatic/kafka';
import { type KafkaBroker, startKafka } from '@hostgate/testkit/kafka';

const HERE = import.meta.filename;
const DEFAULT_BUS = path.resolve(import.meta.dirname, '../../packages/bus/src/kafka-bus.ts');

const API_NAMES: Record<number, string> = {
  0: 'produce',
  1: 'fetch',
  3: 'metadata',
  8: 'offsetCommit',
  10: 'findCoordinator',
  12: 'heartbeat',
};

interface Report {
  role: string;
  cpuUs: number;
  messages: number;
  requests: Record<string, number>;
}

type ToChild = { kind: 'go' } | { kind: 'stop' };
type FromChild = { kind: 'ready' } | { kind: 'done' } | { kind: 'report'; report: Report };

async function child(): Promise<void> {
  const [, , , role, bootstrap, busPath, topicA, topicB, group, messagesArg, rateArg, bytesArg, keysArg] =
    process.argv as string[];
  const total = Number(messagesArg);
  const rate = Number(rateArg);
  const bytes = Number(bytesArg);
  const keyCount = Number(keysArg);
  const { context, propagation } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = await import(
    '@opentelemetry/core'
  );
  // As the services run: trace context propagated through the bus, kept across awaits.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  const { KafkaBus, SERVICE_COMMIT_INTERVAL_MS, SERVICE_HANDLER_CONCURRENCY } = (await import(
    busPath!
  )) as typeof import('@hostgate/bus');
  const bus = new KafkaBus({
    brokers: [bootstrap!],
    clientId: `bench-${role}`,
    handlerConcurrency: SERVICE_HANDLER_CONCURRENCY,
    commitIntervalMs: SERVICE_COMMIT_INTERVAL_MS,
  });
  const requests: Record<string, number> = {};
  let counting = false;
  const onRequest = (ctx: unknown) => {
    if (!counting) return;
    const apiKey = (ctx as { apiKey?: number }).apiKey ?? -1;
    const name = API_NAMES[apiKey] ?? `api${apiKey}`;
    requests[name] = (requests[name] ?? 0) + 1;
  };
  connectionsApiChannel.start.subscribe(onRequest);
  const send = (message: FromChild) => process.send!(message);
  let started = process.cpuUsage();
  let count = 0;

  const value = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) value[i] = (i * 31 + 7) & 0xff;
  const keys = Array.from({ length: keyCount }, (_, i) => `host-${i.toString().padStart(6, '0')}`);

  if (role === 'relay' || role === 'sink') {
    await bus.subscribe({
      topic: role === 'relay' ? topicA! : topicB!,
      group: `${group}-${role}`,
      handler:
        role === 'relay'
          ? async (m) => {
              await bus.publish(topicB!, m.key, m.value);
              if (++count === total) send({ kind: 'done' });
            }
          : async () => {
              if (++count === total) send({ kind: 'done' });
            },
    });
  } else {
    await bus.ensureTopics([topicA!]);
  }

  const publishAll = async () => {
    const traceparent = (i: number) =>
      `00-${(i + 1).toString(16).padStart(32, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01`;
    const publishOne = (i: number) =>
      bus.publish(topicA!, keys[i % keyCount]!, value, { traceparent: traceparent(i) });
    if (rate > 0) {
      const t0 = performance.now();
      let sent = 0;
      const outstanding: Array<Promise<void>> = [];
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
          while (sent < due) outstanding.push(publishOne(sent++));
          if (sent >= total) {
            clearInterval(timer);
            resolve();
          }
        }, 5);
      });
      await Promise.all(outstanding);
    } else {
      let next = 0;
      const lane = async () => {
        while (next < total) await publishOne(next++);
      };
      await Promise.all(Array.from({ length: 1000 }, lane));
    }
    count = total;
    send({ kind: 'done' });
  };

  process.on('message', (message: ToChild) => {
    if (message.kind === 'go') {
      started = process.cpuUsage();
      counting = true;
      if (role === 'producer') void publishAll();
    } else if (message.kind === 'stop') {
      const used = process.cpuUsage(started);
      counting = false;
      send({
        kind: 'report',
        report: { role: role!, cpuUs: used.user + used.system, messages: count, requests },
      });
      void bus.close().then(() => process.exit(0));
    }
  });
  send({ kind: 'ready' });
}

/** CPU µs (user + system) of a process so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function run(
  kafka: KafkaBroker,
  brokerPid: number,
  busPath: string,
  tag: string,
  opts: { messages: number; rate: number; bytes: number; keys: number },
): Promise<void> {
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const topicA = `bench-a-${id}`;
  const topicB = `bench-b-${id}`;
  const roles = ['sink', 'relay', 'producer'] as const;
  const children = roles.map((role) =>
    fork(
      HERE,
      [
        'child',
        role,
        kafka.bootstrap,
        busPath,
        topicA,
        topicB,
        `bench-${id}`,
        String(opts.messages),
        String(opts.rate),
        String(opts.bytes),
        String(opts.keys),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    ),
  );
  const next = (i: number, kind: FromChild['kind'], timeoutMs: number) =>
    new Promise<FromChild>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${roles[i]}: no ${kind} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const on = (message: FromChild) => {
        if (message.kind !== kind) return;
        clearTimeout(timer);
        children[i]!.off('message', on);
        resolve(message);
      };
      children[i]!.on('message', on);
    });
  try {
    await Promise.all(children.map((_, i) => next(i, 'ready', 60_000)));
    // Let the groups settle (joins, first empty fetches) before counting.
    await new Promise((r) => setTimeout(r, 1500));
    const brokerStart = procCpuUs(brokerPid);
    const t0 = performance.now();
    const sinkDone = next(0, 'done', 120_000);
    for (const c of children) c.send({ kind: 'go' } satisfies ToChild);
    await sinkDone;
    const seconds = (performance.now() - t0) / 1000;
    const brokerUs = procCpuUs(brokerPid) - brokerStart;
    const reports = children.map((_, i) => next(i, 'report', 30_000));
    for (const c of children) c.send({ kind: 'stop' } satisfies ToChild);
    const got = (await Promise.all(reports)).map((m) => (m as { report: Report }).report);
    const n = opts.messages;
    const cells = got
      .reverse()
      .map((r) => {
        const reqs = Object.entries(r.requests)
          .filter(([name]) => name !== 'heartbeat')
          .map(([name, c]) => `${name} ${(c / n).toFixed(3)}`)
          .join(', ');
        return `${r.role} ${(r.cpuUs / n).toFixed(0)} µs/msg [${reqs}]`;
      })
      .join(' | ');
    console.log(
      `${tag} rate=${opts.rate || 'max'} n=${n} ${seconds.toFixed(1)} s: ${cells} | broker ${(brokerUs / n).toFixed(0)} µs/msg`,
    );
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve();
            const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '20000' },
      rate: { type: 'string', default: '500' },
      bytes: { type: 'string', default: '2048' },
      keys: { type: 'string', default: '200' },
      runs: { type: 'string', default: '1' },
      bus: { type: 'string', default: DEFAULT_BUS },
      'bus-b': { type: 'string' },
      jvm: { type: 'string', default: 'server' },
    },
  });
  const opts = {
    messages: Number(values.messages),
    rate: Number(values.rate),
    bytes: Number(values.bytes),
    keys: Number(values.keys),
  };
  const kafka = await startKafka({ jvm: values.jvm === 'test' ? 'test' : 'server' });
  try {
    const brokerPid = Number(readFileSync(path.join(kafka.dir, 'kafka.pid'), 'utf8').trim());
    const buses: Array<[string, string]> = [['A', path.resolve(values.bus)]];
    if (values['bus-b'] !== undefined) buses.push(['B', path.resolve(values['bus-b'])]);
    // A warm-up run: the broker's JIT, the first topics.
    await run(kafka, brokerPid, buses[0]![1], 'warm-up', {
      ...opts,
      messages: Math.min(opts.messages, 5000),
    });
    for (let i = 0; i < Number(values.runs); i++) {
      for (const [tag, busPath] of buses) await run(kafka, brokerPid, busPath, tag, opts);
    }
  } finally {
    await kafka.stop();
  }
}

if (process.argv[2] === 'child') await child();
else await main();
