// The software host's half of credential activation, against tpm2-js-lite's MakeCredential.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { makeCredential, parseEkCertificate, verifyEkCertificate } from '@hostgate/tpm2-js-lite';
import { softwareAk } from '@hostgate/tpm2-js-lite/testing';
import { createSoftwareEkRoot, SoftwareHost } from '../src/software-host.ts';

test('a software host recovers a MakeCredential secret only for its own AK', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-swhost-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = await createSoftwareEkRoot(dir);
  const host = new SoftwareHost(root);
  const secret = new Uint8Array(randomBytes(32));
  const made = makeCredential(host.ekPublic, host.ak.name, secret);
  assert.deepEqual(host.activateCredential(made.credentialBlob, made.encryptedSecret), secret);
  const other = makeCredential(host.ekPublic, softwareAk('p256').name, secret);
  assert.throws(() => host.activateCredential(other.credentialBlob, other.encryptedSecret), /INTEGRITY/);
  // Its EK certificate chains to the root and certifies exactly its EK.
  const { certificate } = verifyEkCertificate({
    certificate: host.ekCertificate,
    ekPublic: host.ekPublic,
    roots: [root.ca.certificatePem],
  });
  assert.equal(parseEkCertificate(host.ekCertificate).keyType, certificate.keyType);
});
