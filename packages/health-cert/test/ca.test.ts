import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { createCa, exportCaPem, loadCa } from '../src/ca.ts';
import { HealthCertError } from '../src/errors.ts';
import { fromPem } from '../src/pem.ts';
import { openssl, opensslSkip, workDir } from './helpers.ts';

const code = (c: string) => (e: unknown) => e instanceof HealthCertError && e.code === c;

test('createCa makes a self-signed P-256 CA that node:crypto reads', () => {
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const ca = createCa({ commonName: 'HostGate Dev CA', validityDays: 30, notBefore });
  const x = new X509Certificate(ca.certificatePem);
  assert.equal(x.ca, true);
  assert.equal(x.verify(ca.publicKey), true);
  assert.equal(x.checkIssued(x), true);
  assert.equal(x.subject, 'O=HostGate\nCN=HostGate Dev CA');
  assert.equal(new Date(x.validFrom).toISOString(), '2026-01-01T00:00:00.000Z');
  assert.equal(new Date(x.validTo).toISOString(), '2026-01-31T00:00:00.000Z');
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.deepEqual(Buffer.from(fromPem(ca.certificatePem, 'CERTIFICATE')), Buffer.from(ca.certificateDer));
});

test('openssl accepts the CA and shows its extensions', { skip: opensslSkip }, (t) => {
  const ca = createCa({ commonName: 'HostGate Dev CA', validityDays: 3650 });
  const dir = workDir(t);
  const caFile = dir.write('ca.pem', ca.certificatePem);
  const verified = openssl('verify', '-x509_strict', '-CAfile', caFile, caFile);
  assert.equal(verified.status, 0, verified.stderr + verified.stdout);
  const text = openssl('x509', '-in', caFile, '-noout', '-text').stdout;
  assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /ASN1 OID: prime256v1/);
  const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(text)?.[1];
  const aki = /Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(text)?.[1];
  assert.ok(ski && ski === aki, `SKI ${ski} AKI ${aki}`);
  assert.equal(ski.replaceAll(':', '').toLowerCase(), Buffer.from(ca.keyIdentifier).toString('hex'));
});

test('exportCaPem and loadCa round trip; a foreign key is refused', () => {
  const ca = createCa({ commonName: 'Round Trip CA' });
  const loaded = loadCa(exportCaPem(ca));
  assert.deepEqual(Buffer.from(loaded.certificateDer), Buffer.from(ca.certificateDer));
  assert.deepEqual(Buffer.from(loaded.subject), Buffer.from(ca.subject));
  assert.deepEqual(Buffer.from(loaded.keyIdentifier), Buffer.from(ca.keyIdentifier));
  assert.equal(loaded.commonName, 'Round Trip CA');
  const other = createCa({ commonName: 'Other CA' });
  assert.throws(
    () => loadCa({ certificatePem: ca.certificatePem, privateKeyPem: exportCaPem(other).privateKeyPem }),
    code('CA_KEY_MISMATCH'),
  );
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  assert.throws(
    () =>
      loadCa({
        certificatePem: ca.certificatePem,
        privateKeyPem: String(p384.export({ type: 'pkcs8', format: 'pem' })),
      }),
    code('CA_INVALID'),
  );
  assert.throws(() => createCa({ commonName: 'x', privateKey: p384 }), code('CA_INVALID'));
  assert.throws(() => loadCa({ certificatePem: 'nonsense', privateKeyPem: '' }), code('PEM_INVALID'));
  assert.throws(() => createCa({ commonName: '' }), code('ARGUMENT_INVALID'));
  assert.throws(() => createCa({ commonName: 'x', validityDays: 0 }), code('ARGUMENT_INVALID'));
});
