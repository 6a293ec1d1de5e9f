import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { promisify } from 'node:util';
import { type Swtpm, startSwtpm, swtpmMissing } from '@hostgate/testkit/swtpm';
import { Tpm, TPM_RH } from '../src/client/tpm.ts';
import {
  checkEkCertificateKey,
  derCertificateBytes,
  parseEkCertificate,
  verifyEkCertificate,
  verifyEkCertificateChain,
} from '../src/ek-cert.ts';
import { Tpm2Error } from '../src/errors.ts';
import { ekTemplate, ekTemplateOf, marshalTpmtPublic, unmarshalTpmtPublic } from '../src/public.ts';
import { softwareAk } from '../src/testing.ts';

const execP = promisify(execFile);
const swtpmSkip = swtpmMissing();
let opensslSkip: string | undefined;
try {
  await execP('openssl', ['version']);
} catch {
  opensslSkip = 'openssl not on PATH';
}

describe('EK certificate from swtpm (local CA with TPM attributes)', {
  skip: swtpmSkip,
  timeout: 90_000,
}, () => {
  let swtpm: Swtpm;
  let der: Uint8Array;
  let ekRsa: Uint8Array;
  let ekEcc: Uint8Array;
  let der384: Uint8Array | undefined;
  let ekEcc384: Uint8Array;
  before(async () => {
    swtpm = await startSwtpm({ ekCert: true });
    const tpm = Tpm.open(swtpm.address, { timeoutMs: 20_000 });
    try {
      const cert = await tpm.readEkCertificate('rsa');
      assert.ok(cert, 'swtpm_setup stored an RSA EK certificate');
      der = cert;
      const rsa = await tpm.createEk('rsa');
      ekRsa = rsa.public;
      await tpm.flushContext(rsa.handle);
      const ecc = await tpm.createEk('ecc');
      ekEcc = ecc.public;
      await tpm.flushContext(ecc.handle);
      der384 = await tpm.readEkCertificate('ecc384');
      const ecc384 = await tpm.createPrimary(TPM_RH.ENDORSEMENT, marshalTpmtPublic(ekTemplate('ecc384')));
      ekEcc384 = ecc384.public;
      await tpm.flushContext(ecc384.handle);
    } finally {
      await tpm.close();
    }
  });
  after(async () => swtpm?.stop());

  test('chains to the local root through its intermediate and carries the EK public key', () => {
    const { certificate, chain, ekPublic } = verifyEkCertificate({
      certificate: der,
      ekPublic: ekRsa,
      roots: [swtpm.ca!.rootCertPem],
      intermediates: [swtpm.ca!.issuerCertPem],
    });
    assert.equal(chain.length, 3);
    assert.equal(ekPublic.type, 'rsa');
    assert.equal(certificate.keyType, 'rsa');
    assert.ok(certificate.hasEkUsage);
    assert.equal(certificate.tpmModel, 'swtpm');
    assert.equal(certificate.tpmManufacturer, 'id:00001014');
  });
  test('the ECC EK certificate (NV 0x01c00016) certifies the EK made from template H-3 (P-384)', (t) => {
    if (der384 === undefined) return t.skip('this swtpm_setup stored no ECC EK certificate');
    const { certificate, ekPublic } = verifyEkCertificate({
      certificate: der384,
      ekPublic: ekEcc384,
      roots: [swtpm.ca!.rootCertPem],
      intermediates: [swtpm.ca!.issuerCertPem],
    });
    assert.equal(certificate.keyType, 'ecc');
    assert.equal(ekTemplateOf(ekPublic), 'H-3 (ECC NIST P-384)');
    assert.throws(() => checkEkCertificateKey(certificate, ekRsa), { code: 'CERT_KEY_MISMATCH' });
  });
  test('without the intermediate, with only the intermediate as root, or at another time it does not chain', () => {
    const cert = parseEkCertificate(der);
    assert.throws(() => verifyEkCertificateChain(cert, { roots: [swtpm.ca!.rootCertPem] }), {
      code: 'CERT_CHAIN_INVALID',
    });
    // The intermediate as the only anchor is fine: a configured root is trusted as is.
    assert.equal(verifyEkCertificateChain(cert, { roots: [swtpm.ca!.issuerCertPem] }).length, 2);
    assert.throws(
      () =>
        verifyEkCertificateChain(cert, {
          roots: [swtpm.ca!.rootCertPem],
          intermediates: [swtpm.ca!.issuerCertPem],
          at: new Date('2001-01-01T00:00:00Z'),
        }),
      { code: 'CERT_CHAIN_INVALID' },
    );
  });
  test('another EK does not match: CERT_KEY_MISMATCH', () => {
    const cert = parseEkCertificate(der);
    assert.throws(() => checkEkCertificateKey(cert, ekEcc), { code: 'CERT_KEY_MISMATCH' });
    const other = unmarshalTpmtPublic(ekRsa);
    assert.ok(other.type === 'rsa');
    other.modulus = other.modulus.slice();
    other.modulus[100]! ^= 1;
    assert.throws(() => checkEkCertificateKey(cert, other), { code: 'CERT_KEY_MISMATCH' });
  });
  test('NV padding after the DER is ignored; truncation is CERT_MALFORMED', () => {
    const padded = Uint8Array.from([...der, ...new Uint8Array(64).fill(0xff)]);
    assert.equal(derCertificateBytes(padded).length, der.length);
    parseEkCertificate(padded);
    assert.throws(() => parseEkCertificate(der.subarray(0, der.length - 1)), { code: 'CERT_MALFORMED' });
    assert.throws(() => parseEkCertificate(Uint8Array.of(0x30, 0x84, 1, 2, 3, 4)), {
      code: 'CERT_MALFORMED',
      offset: 1,
    });
    // Mutated certificates (fast-check): only Tpm2Error, and never a verified chain with the right EK.
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat(3), (pos, x, extra) => {
        const mutated = der.slice();
        for (let k = 0; k <= extra; k++) mutated[(pos + k * 97) % der.length]! ^= x;
        try {
          verifyEkCertificate({
            certificate: mutated,
            ekPublic: ekRsa,
            roots: [swtpm.ca!.rootCertPem],
            intermediates: [swtpm.ca!.issuerCertPem],
          });
        } catch (err) {
          return err instanceof Tpm2Error;
        }
        return false; // every byte of a certificate is signed or checked: a mutated one must not verify
      }),
      { numRuns: 400 },
    );
  });
});

describe('ECC EK certificate from an OpenSSL CA (root → intermediate → EK)', {
  skip: opensslSkip,
  timeout: 60_000,
}, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-ekcert-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  test('a P-256 EK certificate verifies and matches the EK public; a different EK does not', async () => {
    const f = (n: string) => path.join(dir, n);
    const ek = softwareAk('p256');
    await writeFile(f('ek.pem'), ek.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(
      f('ext.cnf'),
      [
        '[ca]',
        'basicConstraints=critical,CA:TRUE',
        'keyUsage=critical,keyCertSign',
        '[ek]',
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,keyAgreement',
        'extendedKeyUsage=2.23.133.8.1',
        '',
      ].join('\n'),
    );
    const ossl = (...args: string[]) => execP('openssl', args, { cwd: dir });
    await ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'root.key',
      '-out',
      'root.pem',
      '-subj',
      '/CN=Test EK Root',
      '-days',
      '30',
      '-extensions',
      'ca',
      '-config',
      f('ext.cnf'),
    );
    await ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'int.key',
      '-out',
      'int.csr',
      '-subj',
      '/CN=Test EK Intermediate',
    );
    await ossl(
      'x509',
      '-req',
      '-in',
      'int.csr',
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-CAcreateserial',
      '-out',
      'int.pem',
      '-days',
      '30',
      '-extfile',
      f('ext.cnf'),
      '-extensions',
      'ca',
    );
    await ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'dummy.key',
      '-out',
      'ek.csr',
      '-subj',
      '/CN=ek',
    );
    await ossl(
      'x509',
      '-req',
      '-in',
      'ek.csr',
      '-CA',
      'int.pem',
      '-CAkey',
      'int.key',
      '-CAcreateserial',
      '-force_pubkey',
      'ek.pem',
      '-outform',
      'DER',
      '-out',
      'ek.der',
      '-days',
      '30',
      '-extfile',
      f('ext.cnf'),
      '-extensions',
      'ek',
    );
    const der = new Uint8Array(await readFile(f('ek.der')));
    const roots = [await readFile(f('root.pem'), 'utf8')];
    const intermediates = [await readFile(f('int.pem'), 'utf8')];
    const { certificate, chain } = verifyEkCertificate({
      certificate: der,
      ekPublic: ek.publicBytes,
      roots,
      intermediates,
    });
    assert.equal(certificate.keyType, 'ecc');
    assert.ok(certificate.hasEkUsage);
    assert.equal(chain.length, 3);
    assert.throws(
      () =>
        verifyEkCertificate({
          certificate: der,
          ekPublic: softwareAk('p256').publicBytes,
          roots,
          intermediates,
        }),
      { code: 'CERT_KEY_MISMATCH' },
    );
    // A root that signed nothing here, and the right root without the intermediate.
    await ossl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'other.key',
      '-out',
      'other.pem',
      '-subj',
      '/CN=Test EK Root',
      '-days',
      '30',
      '-extensions',
      'ca',
      '-config',
      f('ext.cnf'),
    );
    const stranger = await readFile(f('other.pem'), 'utf8');
    assert.throws(
      () =>
        verifyEkCertificate({ certificate: der, ekPublic: ek.publicBytes, roots: [stranger], intermediates }),
      {
        code: 'CERT_CHAIN_INVALID',
      },
    );
    assert.throws(() => verifyEkCertificate({ certificate: der, ekPublic: ek.publicBytes, roots }), {
      code: 'CERT_CHAIN_INVALID',
    });
  });
});
