// docs/services.md: the common keys and every service's address are documented (a failure),
// and the generated per-service tables are compared with the schemas (reported, since service
// owners add keys; `config-reference.ts --write` refreshes them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as eventlogReplayer from '@hostgate/eventlog-replayer';
import * as healthCertIssuer from '@hostgate/health-cert-issuer';
import * as policyEvaluator from '@hostgate/policy-evaluator';
import * as quoteCollector from '@hostgate/quote-collector';
import { commonConfig, envName, envPrefixFor } from '@hostgate/service-runtime';
import { DOC_PATH, withReference } from '../src/config-reference.ts';

const services = [quoteCollector, eventlogReplayer, policyEvaluator, healthCertIssuer];

test('docs/services.md documents the common keys and each service address and port', async () => {
  const doc = await readFile(DOC_PATH, 'utf8');
  const missing: string[] = [];
  for (const [key, field] of Object.entries(commonConfig)) {
    const name = field.env ?? envName('HOSTGATE_', key);
    if (!doc.includes(`| \`${name}\``)) missing.push(name);
  }
  for (const svc of services) {
    if (!doc.includes(`\`${svc.DEFAULT_ADDRESS}\``))
      missing.push(`${svc.SERVICE_NAME} ${svc.DEFAULT_ADDRESS}`);
    const addressVar = `${envPrefixFor(svc.SERVICE_NAME)}ADDRESS`;
    if (!doc.includes(`\`${addressVar}\``)) missing.push(addressVar);
  }
  assert.deepEqual(missing, []);
});

test('the generated configuration tables match the schemas (reported when stale)', async (t) => {
  const doc = await readFile(DOC_PATH, 'utf8');
  const fresh = withReference(doc);
  if (fresh !== doc)
    t.diagnostic(
      'docs/services.md configuration tables are stale: run scripts/node services/all-in-one/src/config-reference.ts --write',
    );
  // The generator itself must cover every key of every schema.
  for (const svc of services)
    for (const [key, field] of Object.entries(svc.configSchema)) {
      if (Object.hasOwn(commonConfig, key)) continue;
      assert.ok(fresh.includes(`\`${field.env ?? envName(envPrefixFor(svc.SERVICE_NAME), key)}\``), key);
    }
});
