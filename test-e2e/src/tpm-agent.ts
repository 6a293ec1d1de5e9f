// A host agent on swtpm, talking gRPC to quote-collector directly: what `hostgate agent` does,
// with hooks to send what an honest agent never would (another nonce, other PCRs, an edited
// log, a key that was never enrolled). The TPM is provisioned with an EK certificate from
// swtpm's local CA; its state folder is ours, so a reboot (PCRs reset) keeps the EK.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {
  AttestResponse__Output,
  EnrollResponse__Output,
  GetChallengeResponse__Output,
  QuoteCollectorServiceClient,
} from '@hostgate/protos';
import { type Swtpm, startSwtpm } from '@hostgate/testkit/swtpm';
import { type HashName, type PcrSelection, Tpm, TPM_RH } from '@hostgate/tpm2-js-lite/client';
import { eccAkTemplate, eccSigningKeyTemplate } from '@hostgate/tpm2-js-lite/client';
import { callOptions, unary } from './harness.ts';
import { extendOperations, type LogEvent } from './synthetic-log.ts';

const HASH_BY_ENUM: Record<string, HashName> = {
  HASH_ALGORITHM_SHA1: 'sha1',
  HASH_ALGORITHM_SHA256: 'sha256',
  HASH_ALGORITHM_SHA384: 'sha384',
  HASH_ALGORITHM_SHA512: 'sha512',
};
const ENUM_BY_HASH = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
} as const satisfies Record<HashName, string>;

/** Which AK: the endorsement-hierarchy primary (the host's), or an owner-hierarchy one (a second AK). */
export type AkSlot = 'endorsement' | 'owner';

export interface AttestOverrides {
  /** Use this nonce instead of asking for one. */
  nonce?: Uint8Array;
  /** Quote these PCRs instead of the challenge's selection. */
  selection?: PcrSelection[];
  /** Send this log instead of the one extended. */
  eventLog?: Uint8Array;
  ak?: AkSlot;
}

export interface AttestResult {
  response: AttestResponse__Output;
  nonce: Uint8Array;
  /** TPMT_PUBLIC of the certified subject key (a primary in the owner hierarchy). */
  subjectKeyPublic: Uint8Array;
}

export class SwtpmHost {
  readonly dir: string;
  readonly stateDir: string;
  /** PEM files the collector should trust: swtpm's local root and its issuing CA. */
  readonly roots: string[];
  #swtpm: Swtpm;
  #log: Uint8Array = new Uint8Array(0);

  private constructor(dir: string, swtpm: Swtpm, roots: string[]) {
    this.dir = dir;
    this.stateDir = swtpm.stateDir;
    this.#swtpm = swtpm;
    this.roots = roots;
  }

  /** A TPM with RSA and ECC EKs and certificates from a fresh local CA (swtpm_setup --create-ek-cert). */
  static async create(): Promise<SwtpmHost> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-tpm-'));
    try {
      const swtpm = await startSwtpm({ ekCert: true, stateDir: path.join(dir, 'state') });
      const ca = swtpm.ca;
      if (ca === undefined) throw new Error('swtpm started without its CA');
      const root = path.join(dir, 'ek-root.pem');
      const issuer = path.join(dir, 'ek-issuer.pem');
      await writeFile(root, ca.rootCertPem);
      await writeFile(issuer, ca.issuerCertPem);
      return new SwtpmHost(dir, swtpm, [root, issuer]);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get address(): string {
    return this.#swtpm.address;
  }

  /** The log the PCRs were extended with since the last reboot. */
  get eventLog(): Uint8Array {
    return this.#log;
  }

  /**
   * Power cycle: the PCRs start from zero again and resetCount goes up; EK and certificates stay.
   * While the TPM is off its state can be saved (`saveTo`) or an older one put back (`restoreFrom`),
   * which is how a host would replay an old TPM state to roll its counters back.
   */
  async reboot(opts: { saveTo?: string; restoreFrom?: string } = {}): Promise<void> {
    // An orderly TPM2_Shutdown(CLEAR) first: an unorderly one counts as a dictionary-attack
    // failure, and a few of them lock the AK out (TPM_RC_LOCKOUT).
    await this.withTpm((tpm) => tpm.run({ name: 'Shutdown', code: 0x145, params: (w) => w.u16(0) }));
    await this.#swtpm.stop();
    if (opts.saveTo !== undefined) await cp(this.stateDir, opts.saveTo, { recursive: true });
    if (opts.restoreFrom !== undefined) {
      await rm(this.stateDir, { recursive: true, force: true });
      await cp(opts.restoreFrom, this.stateDir, { recursive: true });
    }
    this.#swtpm = await startSwtpm({ stateDir: this.stateDir });
    this.#log = new Uint8Array(0);
  }

  async stop(): Promise<void> {
    await this.#swtpm.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  async withTpm<T>(fn: (tpm: Tpm) => Promise<T>): Promise<T> {
    const tpm = Tpm.open(this.#swtpm.address);
    try {
      return await fn(tpm);
    } finally {
      await tpm.close();
    }
  }

  /** Extends every event's digests into the PCRs (what `hostgate agent attest --extend-from` does). */
  async boot(events: LogEvent[], log: Uint8Array): Promise<void> {
    await this.withTpm(async (tpm) => {
      for (const op of extendOperations(events)) await tpm.pcrExtend(op.pcr, op.digests);
    });
    this.#log = log;
  }

  async ekPublic(): Promise<{ public: Uint8Array; certificate: Uint8Array }> {
    return this.withTpm(async (tpm) => {
      const ek = await tpm.createEk('rsa');
      await tpm.flushContext(ek.handle);
      const certificate = await tpm.readEkCertificate('rsa');
      if (certificate === undefined) throw new Error('swtpm has no RSA EK certificate');
      return { public: ek.public, certificate };
    });
  }

  async akPublic(slot: AkSlot = 'endorsement'): Promise<{ public: Uint8Array; name: Uint8Array }> {
    return this.withTpm(async (tpm) => {
      const ak = await tpm.createPrimary(
        slot === 'endorsement' ? TPM_RH.ENDORSEMENT : TPM_RH.OWNER,
        eccAkTemplate(),
      );
      await tpm.flushContext(ak.handle);
      return { public: ak.public, name: ak.name };
    });
  }

  /** Enroll (step 1) only: the AK stays pending until activate(). */
  async enrollOnly(
    collector: QuoteCollectorServiceClient,
    slot: AkSlot = 'endorsement',
  ): Promise<EnrollResponse__Output> {
    const ek = await this.ekPublic();
    const ak = await this.akPublic(slot);
    return unary<EnrollResponse__Output>((cb) =>
      collector.Enroll(
        { ekPublic: ek.public, ekCertificate: ek.certificate, ekCertificateChain: [], akPublic: ak.public },
        callOptions(),
        cb,
      ),
    );
  }

  /** ActivateCredential in the TPM for an Enroll answer, then ActivateEnrollment. */
  async activate(
    collector: QuoteCollectorServiceClient,
    enrolled: EnrollResponse__Output,
    slot: AkSlot = 'endorsement',
  ) {
    const secret = await this.withTpm(async (tpm) => {
      const ek = await tpm.createEk('rsa');
      const ak = await tpm.createPrimary(
        slot === 'endorsement' ? TPM_RH.ENDORSEMENT : TPM_RH.OWNER,
        eccAkTemplate(),
      );
      try {
        return await tpm.activateCredentialWithEk(
          ak.handle,
          ek.handle,
          new Uint8Array(enrolled.credentialBlob),
          new Uint8Array(enrolled.encryptedSecret),
        );
      } finally {
        await tpm.flushContext(ak.handle);
        await tpm.flushContext(ek.handle);
      }
    });
    return unary<import('@hostgate/protos').ActivateEnrollmentResponse__Output>((cb) =>
      collector.ActivateEnrollment({ enrollmentId: enrolled.enrollmentId, secret }, callOptions(), cb),
    );
  }

  async challenge(
    collector: QuoteCollectorServiceClient,
    slot: AkSlot = 'endorsement',
  ): Promise<GetChallengeResponse__Output> {
    const ak = await this.akPublic(slot);
    return unary<GetChallengeResponse__Output>((cb) =>
      collector.GetChallenge({ akName: ak.name }, callOptions(), cb),
    );
  }

  /** One attestation round trip (GetChallenge unless a nonce is given, Quote, Certify, Attest). */
  async attest(collector: QuoteCollectorServiceClient, o: AttestOverrides = {}): Promise<AttestResult> {
    const slot = o.ak ?? 'endorsement';
    let nonce = o.nonce;
    let selection = o.selection;
    if (nonce === undefined || selection === undefined) {
      const ch = await this.challenge(collector, slot);
      nonce ??= new Uint8Array(ch.nonce);
      selection ??= ch.pcrSelection.map((s) => ({
        hash: HASH_BY_ENUM[String(s.hashAlgorithm)] ?? 'sha256',
        pcrs: [...s.pcrs],
      }));
    }
    const quoteNonce = nonce;
    const quoteSelection = selection;
    const evidence = await this.withTpm(async (tpm) => {
      const ak = await tpm.createPrimary(
        slot === 'endorsement' ? TPM_RH.ENDORSEMENT : TPM_RH.OWNER,
        eccAkTemplate(),
      );
      const key = await tpm.createPrimary(TPM_RH.OWNER, eccSigningKeyTemplate());
      try {
        const quote = await tpm.quote(ak.handle, quoteNonce, quoteSelection);
        const values = await tpm.pcrRead(quoteSelection);
        const certify = await tpm.certify(key.handle, ak.handle, quoteNonce);
        return { akName: ak.name, quote, values, key, certify };
      } finally {
        await tpm.flushContext(key.handle);
        await tpm.flushContext(ak.handle);
      }
    });
    const pcrBanks = quoteSelection.map((s) => ({
      hashAlgorithm: ENUM_BY_HASH[s.hash],
      pcrs: [...s.pcrs]
        .sort((a, b) => a - b)
        .map((index) => ({
          index,
          digest: evidence.values.values.get(s.hash)?.get(index) ?? new Uint8Array(0),
        })),
    }));
    const response = await unary<AttestResponse__Output>((cb) =>
      collector.Attest(
        {
          akName: evidence.akName,
          nonce: quoteNonce,
          quote: { attest: evidence.quote.attest, signature: evidence.quote.signature, pcrBanks },
          eventLog: o.eventLog ?? this.#log,
          certifiedKey: {
            keyPublic: evidence.key.public,
            certifyAttest: evidence.certify.attest,
            certifySignature: evidence.certify.signature,
          },
        },
        callOptions(60_000),
        cb,
      ),
    );
    return { response, nonce: quoteNonce, subjectKeyPublic: evidence.key.public };
  }
}

/** Refusal codes of an AttestResponse (empty when a certificate came back). */
export function refusalCodes(response: AttestResponse__Output): string[] {
  return response.refused?.refusals.map((r) => String(r.code)) ?? [];
}
