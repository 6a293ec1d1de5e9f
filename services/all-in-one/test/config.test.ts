import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@hostgate/service-runtime';
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
