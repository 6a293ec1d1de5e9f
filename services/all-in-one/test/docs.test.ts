// docs/services.md lists every configuration variable the services read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as eventlogReplayer from '@hostgate/eventlog-replayer';
import * as healthCertIssuer from '@hostgate/health-cert-issuer';
import * as policyEvaluator from '@hostgate/policy-evaluator';
import * as quoteCollector from '@hostgate/quote-collector';
import { envName, envPrefixFor, type Schema } from '@hostgate/service-runtime';

const services: { SERVICE_NAME: string; DEFAULT_ADDRESS: string; configSchema: Schema }[] = [
  quoteCollector,
  eventlogReplayer,
  policyEvaluator,
  healthCertIssuer,
];

test('docs/services.md names every variable and default address', async () => {
  const doc = await readFile(path.resolve(import.meta.dirname, '../../../docs/services.md'), 'utf8');
  const missing: string[] = [];
  for (const svc of services) {
    if (!doc.includes(`\`${svc.DEFAULT_ADDRESS}\``))
      missing.push(`${svc.SERVICE_NAME} address ${svc.DEFAULT_ADDRESS}`);
    for (const [key, field] of Object.entries(svc.configSchema)) {
      const name = field.env ?? envName(envPrefixFor(svc.SERVICE_NAME), key);
      if (!doc.includes(`\`${name}\``)) missing.push(`${svc.SERVICE_NAME}: ${name}`);
    }
  }
  assert.deepEqual(missing, []);
});
