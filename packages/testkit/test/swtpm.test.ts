import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, freePortPair, isPortFree } from '../src/ports.ts';
import { startSwtpm, swtpmMissing } from '../src/swtpm.ts';

const exec = promisify(execFile);
const skip = swtpmMissing();

describe('ports', () => {
  test('freePortPair returns two consecutive bindable ports', async () => {
    const [p, q] = await freePortPair();
    assert.equal(q, p + 1);
    assert.ok(await isPortFree(p));
    assert.ok(await isPortFree(q));
  });

  test('isPortFree is false for a port in use', async () => {
    const port = await freePort();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      assert.equal(await isPortFree(port), false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('swtpm', { timeout: 60_000 }, () => {
  test('tpm2_getrandom talks to a started swtpm; stop frees the port and the state dir', {
    skip,
  }, async () => {
    const tpm = await startSwtpm();
    let stopped = false;
    try {
      const { stdout } = await exec('tpm2_getrandom', ['-T', tpm.tcti, '--hex', '16'], { timeout: 20_000 });
      assert.match(stdout.trim(), /^[0-9a-f]{32}$/);
      assert.ok(existsSync(tpm.stateDir));
      await tpm.stop();
      stopped = true;
      assert.equal(existsSync(tpm.stateDir), false);
      assert.ok(await isPortFree(tpm.port));
    } finally {
      if (!stopped) await tpm.stop();
    }
  });

  test('ekCert provisions EK certificates issued by the local CA', { skip }, async () => {
    const tpm = await startSwtpm({ ekCert: true });
    try {
      assert.ok(tpm.ca);
      assert.match(tpm.ca.rootCertPem, /BEGIN CERTIFICATE/);
      const { stdout } = await exec('tpm2_nvreadpublic', ['-T', tpm.tcti], { timeout: 20_000 });
      // RSA EK certificate index from the TCG EK Credential Profile.
      assert.match(stdout, /0x1c00002/);
      const { stdout: der } = await exec('tpm2_nvread', ['-T', tpm.tcti, '-C', 'o', '0x1c00002'], {
        timeout: 20_000,
        encoding: 'buffer',
      });
      const { X509Certificate } = await import('node:crypto');
      const cert = new X509Certificate(der);
      const issuer = new X509Certificate(tpm.ca.issuerCertPem);
      assert.ok(cert.verify(issuer.publicKey), 'EK certificate is signed by the local CA issuer');
      assert.ok(issuer.verify(new X509Certificate(tpm.ca.rootCertPem).publicKey));
    } finally {
      await tpm.stop();
    }
  });
});
