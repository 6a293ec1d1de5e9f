// The standalone process (src/main.ts through runService): JSON logs, SERVING, SIGTERM -> exit 0
// with the port freed; a configuration error -> exit 2 naming the variable.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHealth } from '@hostgate/service-runtime';
import { isPortFree } from '@hostgate/testkit/ports';

const main = path.resolve(import.meta.dirname, '../src/main.ts');

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['KAFKA_BROKERS'];
  delete env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  return env;
}

test('standalone: logs its address, serves health, exits 0 on SIGTERM and frees the port', async (t) => {
  const child = spawn(process.execPath, [main], {
    env: cleanEnv({ HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: '127.0.0.1:0', HOSTGATE_LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as { msg?: string; address?: string; service?: string; level?: string };
        if (rec.msg === 'eventlog-replayer listening' && rec.address !== undefined) {
          assert.equal(rec.service, 'eventlog-replayer');
          assert.equal(rec.level, 'info');
          clearTimeout(timer);
          resolve(rec.address);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
  });
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  assert.equal((await checkHealth(address)).status, 'SERVING');
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.equal(await isPortFree(Number(address.split(':')[1])), true);
});

test('standalone: an unknown variable under its prefix exits 2 and names it', () => {
  const r = spawnSync(process.execPath, [main], {
    env: cleanEnv({ HOSTGATE_EVENTLOG_REPLAYER_PORT: '1' }),
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /HOSTGATE_EVENTLOG_REPLAYER_PORT: unknown variable/);
});

test('standalone: a startup failure (its address taken) exits 1 and says why on stderr', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  try {
    const port = (blocker.address() as net.AddressInfo).port;
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [main], {
        env: cleanEnv({ HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: `127.0.0.1:${port}` }),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (status) => {
        clearTimeout(timer);
        resolve({ status, stderr });
      });
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^eventlog-replayer: startup failed: .*${port}`, 'm'));
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});
