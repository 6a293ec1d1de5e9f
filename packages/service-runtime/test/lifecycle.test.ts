import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { isPortFree } from '@hostgate/testkit/ports';
import { checkHealth, createLogger, Lifecycle } from '../src/index.ts';

const quiet = () =>
  createLogger({ service: 't', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

test('closers run in reverse order; a failing one is reported and the rest still run', async () => {
  const order: string[] = [];
  const life = new Lifecycle(quiet());
  life.defer('db', () => {
    order.push('db');
  });
  life.defer('bus', async () => {
    order.push('bus');
    throw new Error('broker gone');
  });
  life.defer('server', async () => {
    await new Promise((r) => setTimeout(r, 10));
    order.push('server');
  });
  const [a, b] = await Promise.all([life.shutdown(), life.shutdown()]);
  assert.deepEqual(order, ['server', 'bus', 'db']);
  assert.equal(a, false);
  assert.equal(b, false);
  assert.throws(() => life.defer('late', () => {}), /shutdown has begun/);
});

// A real process: SIGTERM must drain the gRPC server, close resources, exit 0 and free the port.
const child = path.join(import.meta.dirname, 'fixtures', 'signal-child.ts');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} shuts a serving process down cleanly with exit 0`, async () => {
    const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const address = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child never listened: ${out}`)), 10_000);
        proc.stdout.on('data', () => {
          const m = /LISTENING (\S+)/.exec(out);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      assert.equal((await checkHealth(address)).status, 'SERVING');
      proc.kill(signal);
      assert.equal(await exited, 0, out);
      assert.match(out, /closed resource a after server/);
      assert.equal(await isPortFree(Number(address.split(':')[1])), true);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });
}
