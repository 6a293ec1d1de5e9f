import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, type Lifecycle } from '@hostgate/service-runtime';
import { startAllInOne } from '../src/index.ts';

test('bad configuration of several services is reported at once, before anything opens', async () => {
  const env = {
    HOSTGATE_LOG_LEVEL: 'loud',
    HOSTGATE_POLICY_EVALUATOR_ADRESS: '127.0.0.1:1',
    HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: 'not-an-address',
    HOSTGATE_DATA_DIR: '/nonexistent/never/created',
  };
  await assert.rejects(startAllInOne({ env }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    const sources = err.problems.map((p) => p.source).sort();
    assert.deepEqual(sources, [
      'eventlog-replayer: env HOSTGATE_EVENTLOG_REPLAYER_ADDRESS',
      'health-cert-issuer: env HOSTGATE_LOG_LEVEL', // a shared key is reported once
      'policy-evaluator: env HOSTGATE_POLICY_EVALUATOR_ADRESS',
    ]);
    return true;
  });
});

test('a port already in use fails startup naming the service, and closes what had opened', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-aio-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    HOSTGATE_DATA_DIR: dataDir,
    HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS: '127.0.0.1:0',
    HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0',
    HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: '127.0.0.1:0',
    HOSTGATE_QUOTE_COLLECTOR_ADDRESS: `127.0.0.1:${port}`,
  };
  let lifecycle: Lifecycle | undefined;
  await assert.rejects(
    startAllInOne({ env, logLevel: 'silent', onLifecycle: (l) => (lifecycle = l) }),
    new RegExp(`^Error: quote-collector: cannot listen on 127\\.0\\.0\\.1:${port}`),
  );
  assert.equal(lifecycle?.stopping, true);
  // A retry in the same process on the same data folder starts cleanly.
  const again = await startAllInOne({
    env: { ...env, HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '127.0.0.1:0' },
    logLevel: 'silent',
  });
  assert.equal(again.services.length, 4);
  assert.equal(await again.stop(), true);
});
