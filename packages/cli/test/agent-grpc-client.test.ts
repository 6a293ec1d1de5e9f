import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SERVICE_ENDPOINTS, serviceAddress } from '../src/grpc-client.ts';

test('default endpoints are the ports the services listen on, one env override each', () => {
  assert.equal(serviceAddress('quote-collector', undefined, {}), '127.0.0.1:50051');
  assert.equal(serviceAddress('eventlog-replayer', undefined, {}), '127.0.0.1:50052');
  assert.equal(serviceAddress('policy-evaluator', undefined, {}), '127.0.0.1:50053');
  assert.equal(serviceAddress('health-cert-issuer', undefined, {}), '127.0.0.1:50054');
  assert.equal(
    serviceAddress('quote-collector', undefined, { HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '10.0.0.1:7000' }),
    '10.0.0.1:7000',
  );
  assert.equal(SERVICE_ENDPOINTS['health-cert-issuer'].env, 'HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS');
});

test('--server wins over the environment; a wildcard listen address is dialled on loopback', () => {
  const env = { HOSTGATE_POLICY_EVALUATOR_ADDRESS: '10.0.0.1:7000' };
  assert.equal(serviceAddress('policy-evaluator', 'example:1', env), 'example:1');
  assert.equal(serviceAddress('policy-evaluator', '0.0.0.0:50053', env), '127.0.0.1:50053');
  assert.equal(
    serviceAddress('policy-evaluator', undefined, { HOSTGATE_POLICY_EVALUATOR_ADDRESS: ' ' }),
    '127.0.0.1:50053',
  );
});
