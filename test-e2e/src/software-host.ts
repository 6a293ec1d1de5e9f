// A host whose TPM is software: an ECC P-256 EK with a certificate from a test root, an AK and a
// subject key from node:crypto, quotes marshaled as a TPM marshals them (tpm2-js-lite/testing).
// It enrolls through the real credential activation (ECDH + KDFe + KDFa + AES-CFB done here,
// the TPM's side of MakeCredential) — for the fleet bench and for cases swtpm cannot stage.
import {
  createDecipheriv,
  createECDH,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCa, type HealthCa, issueHealthCert } from '@hostgate/health-cert';
import type {
  ActivateEnrollmentResponse__Output,
  AttestResponse__Output,
  EnrollResponse__Output,
  GetChallengeResponse__Output,
  QuoteCollectorServiceClient,
} from '@hostgate/protos';
import { ekTemplate, kdfa, kdfe, marshalTpmtPublic, pcrSelection, TPMA } from '@hostgate/tpm2-js-lite';
import { type SoftwareAk, softwareAk, softwareCertify, softwareQuote } from '@hostgate/tpm2-js-lite/testing';
import { callOptions, unary } from './harness.ts';

/** An EK root for software hosts: its PEM file goes into the collector's EK roots. */
export interface SoftwareEkRoot {
  ca: HealthCa;
  pemFile: string;
}

/** A self-signed P-256 root that signs software EK certificates. */
export async function createSoftwareEkRoot(
  dir: string,
  name = 'HostGate Software EK Root',
): Promise<SoftwareEkRoot> {
  const ca = createCa({ commonName: name, validityDays: 2 });
  const pemFile = path.join(dir, 'software-ek-root.pem');
  await writeFile(pemFile, ca.certificatePem);
  return { ca, pemFile };
}

const b64 = (s: string | undefined) => new Uint8Array(Buffer.from(s ?? '', 'base64url'));

/** Reads a size-prefixed field; throws when it runs past the end. */
function sized(buf: Uint8Array, at: number): [Uint8Array, number] {
  if (at + 2 > buf.length) throw new Error('credential truncated');
  const size = (buf[at]! << 8) | buf[at + 1]!;
  if (at + 2 + size > buf.length) throw new Error('credential field runs past the end');
  return [buf.subarray(at + 2, at + 2 + size), at + 2 + size];
}

export interface QuotedPcrs {
  /** sha256 PCR index → value the quote covers. */
  sha256: Map<number, Uint8Array>;
}

export class SoftwareHost {
  readonly ekPrivate: KeyObject;
  readonly ekPublic: Uint8Array;
  readonly ekCertificate: Uint8Array;
  readonly ak: SoftwareAk;
  /** The subject key: an unrestricted P-256 signing key, fixedTPM/fixedParent like a TPM key. */
  readonly key: SoftwareAk;
  hostId = '';
  #clock = BigInt(Date.now());

  constructor(root: SoftwareEkRoot) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const template = ekTemplate('ecc');
    if (template.type !== 'ecc') throw new Error('ECC EK template expected');
    this.ekPrivate = pair.privateKey;
    this.ekPublic = marshalTpmtPublic({ ...template, x: b64(jwk.x), y: b64(jwk.y) });
    // Any X.509 certificate of the EK's key signed by the root serves as its EK certificate.
    this.ekCertificate = issueHealthCert({
      ca: root.ca,
      hostId: `ek-${Buffer.from(b64(jwk.x).subarray(0, 8)).toString('hex')}`,
      subjectPublicKey: pair.publicKey,
      policyClass: 'ek',
      policyVersion: 1,
      verdictId: 'ek',
      pcrDigest: '00'.repeat(32),
      validitySeconds: 86_400,
    }).der;
    this.ak = softwareAk('p256');
    const keyAttributes =
      TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.userWithAuth | TPMA.sign;
    this.key = softwareAk('p256', { attributes: keyAttributes });
  }

  /** TPM2_ActivateCredential for the ECC EK: recovers the secret MakeCredential sealed to (EK, AK name). */
  activateCredential(credentialBlob: Uint8Array, encryptedSecret: Uint8Array): Uint8Array {
    const [point] = sized(encryptedSecret, 0);
    const [ephX, atY] = sized(point, 0);
    const [ephY] = sized(point, atY);
    const ecdh = createECDH('prime256v1');
    const d = this.ekPrivate.export({ format: 'jwk' }).d;
    ecdh.setPrivateKey(b64(d));
    const z = new Uint8Array(ecdh.computeSecret(Buffer.concat([Uint8Array.of(4), ephX, ephY])));
    const ekX = b64(this.ekPrivate.export({ format: 'jwk' }).x);
    const seed = kdfe('sha256', z, 'IDENTITY', ephX, ekX, 256);
    const symKey = kdfa('sha256', seed, 'STORAGE', this.ak.name, new Uint8Array(0), 128);
    const hmacKey = kdfa('sha256', seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
    const [idObject] = sized(credentialBlob, 0);
    const [integrity, at] = sized(idObject, 0);
    const encIdentity = idObject.subarray(at);
    const mac = createHmac('sha256', hmacKey).update(encIdentity).update(this.ak.name).digest();
    if (mac.length !== integrity.length || !timingSafeEqual(mac, integrity))
      throw new Error('TPM_RC_INTEGRITY: credential not made for this EK and AK');
    const decipher = createDecipheriv('aes-128-cfb', symKey, new Uint8Array(16));
    const plain = new Uint8Array(Buffer.concat([decipher.update(encIdentity), decipher.final()]));
    const [secret] = sized(plain, 0);
    return new Uint8Array(secret);
  }

  async enroll(collector: QuoteCollectorServiceClient): Promise<string> {
    const enrolled = await unary<EnrollResponse__Output>((cb) =>
      collector.Enroll(
        {
          ekPublic: this.ekPublic,
          ekCertificate: this.ekCertificate,
          ekCertificateChain: [],
          akPublic: this.ak.publicBytes,
        },
        callOptions(),
        cb,
      ),
    );
    if (enrolled.refusals.length > 0)
      throw new Error(`enrollment refused: ${JSON.stringify(enrolled.refusals)}`);
    const secret = this.activateCredential(
      new Uint8Array(enrolled.credentialBlob),
      new Uint8Array(enrolled.encryptedSecret),
    );
    const activated = await unary<ActivateEnrollmentResponse__Output>((cb) =>
      collector.ActivateEnrollment({ enrollmentId: enrolled.enrollmentId, secret }, callOptions(), cb),
    );
    if (activated.refusals.length > 0)
      throw new Error(`activation refused: ${JSON.stringify(activated.refusals)}`);
    this.hostId = activated.hostId;
    return this.hostId;
  }

  /** GetChallenge, quote the sha256 PCRs asked for with `pcrs`, certify the key, Attest. */
  async attest(
    collector: QuoteCollectorServiceClient,
    pcrs: Map<number, Uint8Array>,
    eventLog: Uint8Array,
    opts: { clock?: { clock?: bigint; resetCount?: number; restartCount?: number } } = {},
  ): Promise<AttestResponse__Output> {
    const ch = await unary<GetChallengeResponse__Output>((cb) =>
      collector.GetChallenge({ akName: this.ak.name }, callOptions(), cb),
    );
    const nonce = new Uint8Array(ch.nonce);
    const wanted = ch.pcrSelection.find((s) => s.hashAlgorithm === 'HASH_ALGORITHM_SHA256')?.pcrs ?? [];
    this.#clock += 1000n;
    const clock = {
      clock: opts.clock?.clock ?? this.#clock,
      resetCount: opts.clock?.resetCount ?? 1,
      restartCount: opts.clock?.restartCount ?? 0,
    };
    const quote = softwareQuote({
      ak: this.ak,
      nonce,
      pcrs: new Map([['sha256', pcrs]]),
      selection: [pcrSelection('sha256', [...wanted])],
      clock,
    });
    const certify = softwareCertify({ ak: this.ak, nonce, certified: this.key.publicBytes });
    return unary<AttestResponse__Output>((cb) =>
      collector.Attest(
        {
          akName: this.ak.name,
          nonce,
          quote: {
            attest: quote.attest,
            signature: quote.signature,
            pcrBanks: [
              {
                hashAlgorithm: 'HASH_ALGORITHM_SHA256',
                pcrs: [...wanted]
                  .sort((a, b) => a - b)
                  .map((index) => ({ index, digest: pcrs.get(index) ?? new Uint8Array(32) })),
              },
            ],
          },
          eventLog,
          certifiedKey: {
            keyPublic: this.key.publicBytes,
            certifyAttest: certify.attest,
            certifySignature: certify.signature,
          },
        },
        callOptions(60_000),
        cb,
      ),
    );
  }
}
