// The deployed shape on real infrastructure: the four services as four processes talking
// through a real Apache Kafka broker (KRaft, testkit), each with its own store, checked by
// `hostgate health --json`; SIGTERM stops each with exit 0 (consumers drained, ports freed).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kafkaMissing, startKafka } from '@hostgate/testkit/kafka';
import { freePort, isPortFree } from '@hostgate/testkit/ports';

const root = path.resolve(import.meta.dirname, '../../..');
const bin = path.join(root, 'node_modules', '.bin', 'hostgate');
const NAMES = ['quote-collector', 'eventlog-replayer', 'policy-evaluator', 'health-cert-issuer'] as const;
const envName = (name: string) => `HOSTGATE_${name.toUpperCase().replaceAll('-', '_')}_ADDRESS`;

function waitExit(child: ChildProcess, ms: number): Promise<number | null | 'timeout'> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('four service processes on a real Kafka broker: all SERVING, each exits 0 on SIGTERM', {
  skip: kafkaMissing() ?? false,
  timeout: 240_000,
}, async (t) => {
  const kafka = await startKafka();
  t.after(() => kafka.stop());
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-kafka-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOSTGATE_NODE: process.execPath,
    KAFKA_BROKERS: kafka.bootstrap,
    HOSTGATE_DATA_DIR: dataDir,
    HOSTGATE_LOG_LEVEL: 'warn',
  };
  delete env['DATABASE_URL'];
  delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  for (const name of NAMES) env[envName(name)] = `127.0.0.1:${await freePort()}`;

  const children = new Map<string, { child: ChildProcess; output: () => string }>();
  for (const name of NAMES) {
    const child = spawn(process.execPath, [path.join(root, 'services', name, 'src', 'main.ts')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    children.set(name, { child, output: () => out });
  }
  t.after(async () => {
    for (const { child } of children.values())
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const deadline = Date.now() + 120_000;
  let last = '';
  for (;;) {
    for (const [name, { child, output }] of children)
      if (child.exitCode !== null) assert.fail(`${name} exited ${child.exitCode}:\n${output()}`);
    const r = spawnSync(bin, ['health', '--json', '--timeout-ms', '2000'], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    last = r.stdout;
    if (r.status === 0) break;
    if (Date.now() > deadline) assert.fail(`not all SERVING: ${last}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const health = JSON.parse(last) as { services: { name: string; status: string }[]; ok: boolean };
  assert.equal(health.ok, true);
  assert.deepEqual(
    health.services.map((s) => s.status),
    ['SERVING', 'SERVING', 'SERVING', 'SERVING'],
  );
  // Each process says it talks Kafka, not a private in-process bus.
  for (const [name, { output }] of children)
    assert.doesNotMatch(output(), /bus: in-process/, `${name} fell back to the in-process bus`);

  for (const [name, { child, output }] of children) {
    child.kill('SIGTERM');
    assert.equal(await waitExit(child, 60_000), 0, `${name}:\n${output()}`);
    const address = env[envName(name)] ?? '';
    assert.equal(await isPortFree(Number(address.split(':')[1])), true, `${name} port still bound`);
  }
});
