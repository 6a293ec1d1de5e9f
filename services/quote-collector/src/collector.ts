// The quote-collector core, with no networking: enrollment (EK chain + MakeCredential), activation,
// challenges, and the collector's half of Attest (everything the AK's signatures vouch for). The
// gRPC handlers in service.ts adapt it; the round trip through the pipeline is in attest-flow.ts.
import {
  createHash,
  randomBytes,
  randomFillSync,
  randomUUID,
  timingSafeEqual,
  type X509Certificate,
} from 'node:crypto';
import type {
  AttestRequest__Output,
  CertifiedKey__Output,
  EnrollRequest__Output,
  Evidence,
  HashAlgorithm__Output,
  PcrBank__Output,
  QuoteInfo,
} from '@hostgate/protos';
import { timestampFromDate } from '@hostgate/protos';
import { Batcher } from '@hostgate/service-runtime';
import {
  checkEkCertificateKey,
  CredentialError,
  HASH_BY_ALG,
  type HashName,
  isRestrictedSigningKey,
  makeCredential,
  objectName,
  parseEkCertificate,
  type PcrSelection,
  selectedPcrs,
  TPM_ECC_CURVE,
  TPMA,
  type TpmPublic,
  Tpm2Error,
  unmarshalTpmtPublic,
  verifyCertify,
  verifyEkCertificateChain,
  verifyQuote,
} from '@hostgate/tpm2-js-lite';
import { type CollectorRefusal, refusal } from './refusals.ts';
import type {
  CountersRecord,
  EnrollmentRecord,
  HostRecord,
  NonceState,
  QuoteCollectorStore,
  RememberedAttestation,
  RememberedOutcome,
} from './store.ts';

/** Event log cap (DESIGN: bounded sizes; the replayer's own parser caps are larger). */
export const MAX_EVENT_LOG_BYTES = 8 * 1024 * 1024;
/** TPMT_PUBLIC of an RSA 4096 key with a policy is under 700 bytes. */
const MAX_PUBLIC_BYTES = 2048;
/** TPMS_ATTEST of a quote or certify, TPMT_SIGNATURE: a few hundred bytes each. */
const MAX_ATTEST_BYTES = 4096;
const MAX_CERT_BYTES = 16 * 1024;
const MAX_CHAIN_CERTS = 8;
const NONCE_BYTES = 32;
/** Unused, unexpired nonces one AK may hold (an agent needs one at a time). */
export const MAX_LIVE_NONCES = 16;
/** TPM2B_NAME: nameAlg (2) + digest (at most SHA-512). */
const MAX_NAME_BYTES = 66;

const HASH_ENUM: Record<HashName, HashAlgorithm__Output> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
};
const HASH_FROM_ENUM = new Map<string, HashName>(
  Object.entries(HASH_ENUM).map(([k, v]) => [v, k as HashName]),
);

export function hashAlgorithmName(alg: number): HashAlgorithm__Output {
  const info = HASH_BY_ALG.get(alg);
  return info === undefined ? 'HASH_ALGORITHM_UNSPECIFIED' : HASH_ENUM[info.name];
}

/** The proto form of TPM PCR selections (bank enum + ascending indices). */
export function selectionsToProto(selections: readonly PcrSelection[]) {
  return selections.map((s) => ({
    hashAlgorithm: hashAlgorithmName(s.hashAlg),
    pcrs: selectedPcrs(s.select),
  }));
}

/**
 * Host id of an EK: `ek-` and the first 32 hex digits (128 bits) of SHA-256 over the EK's TPM name.
 * Stable for the EK's lifetime; fits the health certificate's CN rules ([A-Za-z0-9_.:-], ≤ 64).
 */
export function hostIdForEk(ekPublic: Uint8Array): string {
  const name = objectName(ekPublic);
  return `ek-${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

export interface CollectorOptions {
  store: QuoteCollectorStore;
  /** Parsed trust anchors for EK certificates. */
  ekRoots: readonly X509Certificate[];
  nonceTtlMs: number;
  enrollmentTtlMs: number;
  /** What every quote must select, exactly. */
  pcrSelection: readonly PcrSelection[];
  /** Epoch milliseconds; injected by tests. */
  now?: () => number;
  /** Trusted AKs remembered for the one-statement Attest (default AK_CACHE_SIZE; 0: never). */
  akCacheSize?: number;
}

/** AKs remembered per replica: a few hundred bytes each, so the default holds a large fleet in a few MB. */
export const AK_CACHE_SIZE = 10_000;

/** Calls merged into one statement at most (GetChallenge's nonce inserts, the one-statement Attest). */
export const MAX_BATCH = 64;

const latin1 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * What verifying a quote and a certify needs from the host that trusts an AK. The AK's public area
 * never changes for its name (the name is its hash); the host binding and state can, so the store
 * re-checks them in the statement that uses an entry.
 */
interface TrustedAk {
  hostId: string;
  akName: Uint8Array;
  akPublic: Uint8Array;
}

/** A bounded map akName → TrustedAk, least recently used out first. */
class AkCache {
  private readonly max: number;
  private readonly entries = new Map<string, TrustedAk>();

  constructor(max: number) {
    this.max = max;
  }

  private static key(akName: Uint8Array): string {
    return latin1(akName);
  }

  get(akName: Uint8Array): TrustedAk | undefined {
    const key = AkCache.key(akName);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  set(ak: TrustedAk): void {
    if (this.max <= 0) return;
    const key = AkCache.key(ak.akName);
    this.entries.delete(key);
    this.entries.set(key, ak);
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  delete(akName: Uint8Array): void {
    this.entries.delete(AkCache.key(akName));
  }
}

/**
 * CSPRNG bytes drawn a block at a time (one randomFillSync per 128 nonces rather than one each);
 * every byte is handed out once, as a copy.
 */
class RandomPool {
  private readonly block = Buffer.alloc(4096);
  private offset = this.block.length;

  take(n: number): Uint8Array {
    if (n > this.block.length) return new Uint8Array(randomBytes(n));
    if (this.offset + n > this.block.length) {
      randomFillSync(this.block);
      this.offset = 0;
    }
    const out = new Uint8Array(this.block.subarray(this.offset, this.offset + n));
    this.offset += n;
    return out;
  }
}

interface NonceToAdd {
  nonce: Uint8Array;
  akName: Uint8Array;
  issuedAtMs: number;
  expiresAtMs: number;
}

/** The quote and certify checks of one request against one AK public (they depend on nothing else). */
interface Verified {
  akPublic: Uint8Array;
  refusals: CollectorRefusal[];
  quoteInfo: { facts: ReturnType<typeof verifyQuote>; proto: QuoteInfo } | undefined;
}

export interface EnrollResult {
  hostId: string;
  enrollmentId: string;
  credentialBlob: Uint8Array;
  encryptedSecret: Uint8Array;
  expiresAtMs: number;
  refusals: CollectorRefusal[];
}

export type ActivateResult =
  | { hostId: string; state: HostRecord['state']; refusals: CollectorRefusal[] }
  | { hostId: ''; state: undefined; refusals: CollectorRefusal[] };

/** What Attest returns when the collector accepted the evidence (to be published). */
export interface AcceptedEvidence {
  host: HostRecord;
  evidence: Evidence & { attestationId: string; hostId: string };
}

export type CollectorAttestResult =
  | { kind: 'refused'; hostId: string; refusals: CollectorRefusal[] }
  | ({ kind: 'accepted'; hostId: string } & AcceptedEvidence);

const bytesOf = (b: Uint8Array | undefined | null): Uint8Array =>
  b === undefined || b === null ? new Uint8Array(0) : new Uint8Array(b);
const EMPTY = new Uint8Array(0);
/**
 * A request's bytes as they are, not copied. The decoded request belongs to its call (no buffer of
 * it is reused by the transport) and nothing here or downstream writes to it; what outlives the
 * call (the remembered AKs) comes from the store, never from a request. A copy of more than 64
 * bytes is a fresh off-heap ArrayBuffer (~1-2 µs each, and GC work); Attest copied the AK name,
 * the nonce, the event log and every PCR value for nothing.
 */
const viewOf = (b: Uint8Array | undefined | null): Uint8Array => b ?? EMPTY;
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** AK requirements (TPM 2.0 Part 1 §25): only a restricted signing key's TPMS_ATTEST proves the TPM made it. */
function akProblems(ak: TpmPublic): string[] {
  const problems: string[] = [];
  const a = ak.objectAttributes;
  if (!isRestrictedSigningKey(ak)) problems.push('not a restricted signing key');
  if ((a & TPMA.fixedTPM) === 0)
    problems.push('fixedTPM is clear (the key could be duplicated out of the TPM)');
  if ((a & TPMA.fixedParent) === 0) problems.push('fixedParent is clear');
  if ((a & TPMA.sensitiveDataOrigin) === 0)
    problems.push('sensitiveDataOrigin is clear (the key was imported)');
  return problems;
}

/** The health certificate's subject key: a TPM-resident, sign-only ECC P-256 key. */
function subjectKeyProblems(key: TpmPublic): string[] {
  const problems: string[] = [];
  const a = key.objectAttributes;
  if (key.type !== 'ecc' || key.curveId !== TPM_ECC_CURVE.NIST_P256)
    problems.push('not an ECC NIST P-256 key');
  if ((a & TPMA.sign) === 0) problems.push('cannot sign');
  if ((a & TPMA.decrypt) !== 0) problems.push('can decrypt (must be sign-only)');
  if ((a & TPMA.restricted) !== 0) problems.push('is restricted (cannot sign a TLS handshake)');
  if ((a & TPMA.fixedTPM) === 0) problems.push('fixedTPM is clear');
  if ((a & TPMA.fixedParent) === 0) problems.push('fixedParent is clear');
  if ((a & TPMA.sensitiveDataOrigin) === 0)
    problems.push('sensitiveDataOrigin is clear (the key was imported)');
  return problems;
}

/**
 * What the store keeps of an accepted quote's TPMS_CLOCK_INFO. `selectionJson` is
 * JSON.stringify(quoteInfo.proto.pcrSelection) when the caller has it already: the text is then
 * exactly JSON.stringify({ pcrDigest, pcrSelection }).
 */
export function countersOf(
  quoteInfo: NonNullable<Verified['quoteInfo']>,
  selectionJson?: string,
): CountersRecord {
  const pcrDigest = hex(quoteInfo.proto.pcrDigest as Uint8Array);
  return {
    resetCount: quoteInfo.facts.resetCount,
    restartCount: quoteInfo.facts.restartCount,
    clock: quoteInfo.facts.clock,
    safe: quoteInfo.facts.safe,
    firmwareVersion: quoteInfo.facts.firmwareVersion,
    quoteInfoJson:
      selectionJson === undefined
        ? JSON.stringify({ pcrDigest, pcrSelection: quoteInfo.proto.pcrSelection })
        : `{"pcrDigest":${JSON.stringify(pcrDigest)},"pcrSelection":${selectionJson}}`,
  };
}

/** Orders TPMS_CLOCK_INFO: resetCount, then restartCount within a reset, then clock within both. */
export function countersProblem(
  previous: CountersRecord | undefined,
  next: CountersRecord,
): string | undefined {
  if (previous === undefined) return undefined;
  if (next.resetCount < previous.resetCount)
    return `resetCount went from ${previous.resetCount} to ${next.resetCount}`;
  if (next.resetCount > previous.resetCount) return undefined;
  if (next.restartCount < previous.restartCount)
    return `restartCount went from ${previous.restartCount} to ${next.restartCount} within resetCount ${next.resetCount}`;
  if (next.restartCount > previous.restartCount) return undefined;
  if (next.clock <= previous.clock)
    return `clock went from ${previous.clock} to ${next.clock} ms within resetCount ${next.resetCount} / restartCount ${next.restartCount} (it must increase)`;
  return undefined;
}

export class QuoteCollector {
  readonly store: QuoteCollectorStore;
  private readonly opts: CollectorOptions;
  private readonly now: () => number;
  private readonly akCache: AkCache;
  /** selectionKey of the required selection, computed once (it was recomputed for every quote). */
  private readonly requiredKey: string;
  /**
   * The required selection in proto form and as JSON, made once: every accepted quote selects
   * exactly it (GetChallenge sends it too), so each quote's QuoteInfo and stored counters share it.
   * Frozen: it goes into every Evidence and GetChallenge answer, which only read it.
   */
  private readonly requiredProto: ReturnType<typeof selectionsToProto>;
  private readonly requiredJson: string;
  private readonly randomPool = new RandomPool();
  /**
   * Concurrent calls' statements merged into one (the gRPC server runs many calls at once, and a
   * statement's fixed cost was most of the store's cost per attestation). One AK per batch of
   * nonces (its cap of live nonces is read once per statement), one host per batch of Attests
   * (its counters move once per statement, in call order).
   */
  readonly nonceBatcher: Batcher<NonceToAdd, boolean>;
  readonly attestBatcher: Batcher<RememberedAttestation, RememberedOutcome>;

  constructor(opts: CollectorOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.akCache = new AkCache(opts.akCacheSize ?? AK_CACHE_SIZE);
    this.requiredKey = selectionKey(opts.pcrSelection);
    this.requiredProto = Object.freeze(
      selectionsToProto(opts.pcrSelection).map((s) => Object.freeze({ ...s, pcrs: Object.freeze(s.pcrs) })),
    ) as ReturnType<typeof selectionsToProto>;
    this.requiredJson = JSON.stringify(this.requiredProto);
    this.nonceBatcher = new Batcher((items) => this.store.addNonces(items, MAX_LIVE_NONCES), {
      maxBatch: MAX_BATCH,
      keyOf: (item) => latin1(item.akName),
    });
    this.attestBatcher = new Batcher((items) => this.store.consumeNoncesAndAdvance(items), {
      maxBatch: MAX_BATCH,
      keyOf: (item) => item.ak.hostId,
    });
  }

  get requiredSelection(): readonly PcrSelection[] {
    return this.opts.pcrSelection;
  }

  /** selectionsToProto(requiredSelection), made once (GetChallenge answers it on every call). */
  get requiredSelectionProto(): ReturnType<typeof selectionsToProto> {
    return this.requiredProto;
  }

  /** The counters of a verified quote; the stored JSON reuses the required selection's text. */
  private countersOf(quoteInfo: NonNullable<Verified['quoteInfo']>): CountersRecord {
    return countersOf(
      quoteInfo,
      quoteInfo.proto.pcrSelection === this.requiredProto ? this.requiredJson : undefined,
    );
  }

  async enroll(
    req: Pick<EnrollRequest__Output, 'ekPublic' | 'ekCertificate' | 'ekCertificateChain' | 'akPublic'>,
  ): Promise<EnrollResult> {
    const refusals: CollectorRefusal[] = [];
    const result = (hostId: string): EnrollResult => ({
      hostId,
      enrollmentId: '',
      credentialBlob: new Uint8Array(0),
      encryptedSecret: new Uint8Array(0),
      expiresAtMs: 0,
      refusals,
    });
    const ekBytes = bytesOf(req.ekPublic);
    const akBytes = bytesOf(req.akPublic);
    const certBytes = bytesOf(req.ekCertificate);
    const chain = (req.ekCertificateChain ?? []).map(bytesOf);

    // Keys first: the host id needs a parsable EK.
    let ek: TpmPublic | undefined;
    if (ekBytes.length === 0 || ekBytes.length > MAX_PUBLIC_BYTES) {
      refusals.push(
        refusal('KEY_INVALID', `EK public of ${ekBytes.length} bytes (1..${MAX_PUBLIC_BYTES})`, {
          limit: String(MAX_PUBLIC_BYTES),
        }),
      );
    } else {
      try {
        ek = unmarshalTpmtPublic(ekBytes);
        const a = ek.objectAttributes;
        if ((a & TPMA.restricted) === 0 || (a & TPMA.decrypt) === 0 || (a & TPMA.fixedTPM) === 0) {
          refusals.push(refusal('KEY_INVALID', 'the EK is not a fixedTPM restricted decryption key'));
          ek = undefined;
        }
      } catch (err) {
        refusals.push(refusal('KEY_INVALID', `EK public: ${describeError(err)}`, offsetDetails(err)));
      }
    }
    const hostId = ek === undefined ? '' : hostIdForEk(ekBytes);

    let ak: TpmPublic | undefined;
    if (akBytes.length === 0 || akBytes.length > MAX_PUBLIC_BYTES) {
      refusals.push(
        refusal('KEY_INVALID', `AK public of ${akBytes.length} bytes (1..${MAX_PUBLIC_BYTES})`, {
          limit: String(MAX_PUBLIC_BYTES),
        }),
      );
    } else {
      try {
        ak = unmarshalTpmtPublic(akBytes);
        const problems = akProblems(ak);
        if (problems.length > 0) {
          refusals.push(refusal('KEY_INVALID', `the AK is unsuitable: ${problems.join('; ')}`));
          ak = undefined;
        }
      } catch (err) {
        refusals.push(refusal('KEY_INVALID', `AK public: ${describeError(err)}`, offsetDetails(err)));
      }
    }

    // The EK certificate: parsable, valid now, chained to a configured root, and certifying this EK.
    let certIssuer = '';
    if (certBytes.length === 0 || certBytes.length > MAX_CERT_BYTES) {
      refusals.push(
        refusal('EK_CERT_INVALID', `EK certificate of ${certBytes.length} bytes (1..${MAX_CERT_BYTES})`, {
          limit: String(MAX_CERT_BYTES),
        }),
      );
    } else if (chain.length > MAX_CHAIN_CERTS || chain.some((c) => c.length > MAX_CERT_BYTES)) {
      refusals.push(
        refusal(
          'EK_CERT_INVALID',
          `at most ${MAX_CHAIN_CERTS} intermediates of ${MAX_CERT_BYTES} bytes each`,
        ),
      );
    } else {
      try {
        const cert = parseEkCertificate(certBytes);
        certIssuer = cert.x509.issuer.replace(/\n/g, ', ');
        const at = new Date(this.now());
        if (at < new Date(cert.x509.validFrom) || at > new Date(cert.x509.validTo)) {
          refusals.push(
            refusal(
              'EK_CERT_INVALID',
              `the EK certificate is not valid at ${at.toISOString()} (${cert.x509.validFrom} – ${cert.x509.validTo})`,
            ),
          );
        } else {
          try {
            verifyEkCertificateChain(cert, {
              roots: this.opts.ekRoots.map((r) => r.raw),
              intermediates: chain,
              at,
            });
          } catch (err) {
            refusals.push(
              refusal(
                'EK_CERT_UNTRUSTED',
                `the EK certificate does not chain to a configured root: ${describeError(err)}`,
              ),
            );
          }
        }
        if (ek !== undefined) {
          try {
            checkEkCertificateKey(cert, ek);
          } catch (err) {
            refusals.push(refusal('EK_CERT_MISMATCH', describeError(err)));
          }
        }
      } catch (err) {
        refusals.push(refusal('EK_CERT_INVALID', `EK certificate: ${describeError(err)}`));
      }
    }
    if (refusals.length > 0 || ek === undefined || ak === undefined) return result(hostId);

    const existing = await this.store.getHost(hostId);
    if (existing?.state === 'DISABLED') {
      refusals.push(
        refusal(
          'HOST_DISABLED',
          `host ${hostId} was disabled by an operator${existing.stateReason ? `: ${existing.stateReason}` : ''}`,
        ),
      );
      return result(hostId);
    }

    const akName = objectName(akBytes);
    // The secret is at most the EK nameAlg's digest size (Part 1 §24.4); 32 bytes for SHA-256 EKs.
    const ekDigestSize = HASH_BY_ALG.get(ek.nameAlg)?.size ?? 32;
    const secret = new Uint8Array(randomBytes(Math.min(32, ekDigestSize)));
    let made: { credentialBlob: Uint8Array; encryptedSecret: Uint8Array };
    try {
      made = makeCredential(ekBytes, akName, secret);
    } catch (err) {
      const offset = err instanceof CredentialError ? { offset: String(err.offset) } : undefined;
      refusals.push(
        refusal('KEY_INVALID', `cannot seal a credential to this EK: ${describeError(err)}`, offset),
      );
      return result(hostId);
    }
    const nowMs = this.now();
    const enrollment: Omit<EnrollmentRecord, 'activatedAtMs' | 'hostId'> = {
      enrollmentId: randomUUID(),
      akPublic: akBytes,
      akName,
      secretDigest: new Uint8Array(createHash('sha256').update(secret).digest()),
      createdAtMs: nowMs,
      expiresAtMs: nowMs + this.opts.enrollmentTtlMs,
    };
    await this.store.addEnrollment(
      { hostId, ekPublic: ekBytes, ekCertificate: certBytes, ekCertificateIssuer: certIssuer },
      enrollment,
    );
    return {
      hostId,
      enrollmentId: enrollment.enrollmentId,
      credentialBlob: made.credentialBlob,
      encryptedSecret: made.encryptedSecret,
      expiresAtMs: enrollment.expiresAtMs,
      refusals,
    };
  }

  async activate(enrollmentId: string, secret: Uint8Array): Promise<ActivateResult> {
    const enrollment = enrollmentId.length <= 64 ? await this.store.getEnrollment(enrollmentId) : undefined;
    if (enrollment === undefined || enrollment.activatedAtMs !== undefined) {
      return {
        hostId: '',
        state: undefined,
        refusals: [
          refusal(
            'ENROLLMENT_UNKNOWN',
            `no pending enrollment '${enrollmentId.slice(0, 64)}' (never issued, or already activated)`,
          ),
        ],
      };
    }
    const host = await this.store.getHost(enrollment.hostId);
    const state = host?.state ?? 'PENDING_ACTIVATION';
    if (this.now() >= enrollment.expiresAtMs) {
      return {
        hostId: enrollment.hostId,
        state,
        refusals: [
          refusal(
            'ENROLLMENT_EXPIRED',
            `the enrollment challenge expired at ${new Date(enrollment.expiresAtMs).toISOString()}; enroll again`,
          ),
        ],
      };
    }
    const digest = createHash('sha256').update(secret).digest();
    if (!timingSafeEqual(digest, enrollment.secretDigest)) {
      return {
        hostId: enrollment.hostId,
        state,
        refusals: [
          refusal(
            'ACTIVATION_FAILED',
            'the secret returned is not the one sealed to the EK and AK: the AK is not in the TPM that holds this EK',
          ),
        ],
      };
    }
    const activated = await this.store.activate(enrollment, this.now());
    const refusals =
      activated.state === 'DISABLED'
        ? [
            refusal(
              'HOST_DISABLED',
              `the AK is trusted, but host ${activated.hostId} is disabled by an operator`,
            ),
          ]
        : [];
    return { hostId: activated.hostId, state: activated.state, refusals };
  }

  /**
   * A fresh nonce bound to `akName`: `invalid` when the name is not a TPM name, `too-many` when
   * the AK already holds MAX_LIVE_NONCES unused ones.
   */
  async challenge(
    akName: Uint8Array,
  ): Promise<{ nonce: Uint8Array; expiresAtMs: number } | 'invalid' | 'too-many'> {
    if (akName.length < 2 || akName.length > MAX_NAME_BYTES) return 'invalid';
    const nonce = this.randomPool.take(NONCE_BYTES);
    const nowMs = this.now();
    const expiresAtMs = nowMs + this.opts.nonceTtlMs;
    const added = await this.nonceBatcher.call({ nonce, akName, issuedAtMs: nowMs, expiresAtMs });
    if (!added) return 'too-many';
    return { nonce, expiresAtMs };
  }

  /**
   * The collector's checks of one attestation, in the order that lets each refusal be precise: sizes,
   * the AK, the nonce (consumed whatever follows), then quote, certify, subject key and counters,
   * which are independent and all reported. Accepted evidence is what gets published.
   */
  async attest(req: AttestRequest__Output): Promise<CollectorAttestResult> {
    const akName = viewOf(req.akName);
    const nonce = viewOf(req.nonce);
    const eventLog = viewOf(req.eventLog);
    const quote = req.quote;
    const key = req.certifiedKey;

    const tooLarge: CollectorRefusal[] = [];
    if (eventLog.length > MAX_EVENT_LOG_BYTES)
      tooLarge.push(
        refusal(
          'EVIDENCE_TOO_LARGE',
          `event log of ${eventLog.length} bytes exceeds ${MAX_EVENT_LOG_BYTES}`,
          { limit: String(MAX_EVENT_LOG_BYTES), observed: String(eventLog.length) },
        ),
      );
    const sizes: [string, number][] = [
      ['quote attest', quote?.attest?.length ?? 0],
      ['quote signature', quote?.signature?.length ?? 0],
      ['certified key public', key?.keyPublic?.length ?? 0],
      ['certify attest', key?.certifyAttest?.length ?? 0],
      ['certify signature', key?.certifySignature?.length ?? 0],
    ];
    for (const [what, size] of sizes) {
      if (size > MAX_ATTEST_BYTES)
        tooLarge.push(
          refusal('EVIDENCE_TOO_LARGE', `${what} of ${size} bytes exceeds ${MAX_ATTEST_BYTES}`, {
            limit: String(MAX_ATTEST_BYTES),
            observed: String(size),
          }),
        );
    }
    const bankCount = quote?.pcrBanks?.length ?? 0;
    const valueCount = (quote?.pcrBanks ?? []).reduce((n, b) => n + (b.pcrs?.length ?? 0), 0);
    if (bankCount > 8 || valueCount > 8 * 24)
      tooLarge.push(
        refusal(
          'EVIDENCE_TOO_LARGE',
          `${bankCount} PCR banks with ${valueCount} values (at most 8 banks of 24)`,
        ),
      );
    if (akName.length > MAX_NAME_BYTES)
      tooLarge.push(refusal('EVIDENCE_TOO_LARGE', `AK name of ${akName.length} bytes`));
    if (tooLarge.length > 0) return { kind: 'refused', hostId: '', refusals: tooLarge };

    // A remembered AK (a previous attestation found it trusted by an ACTIVE host): quote and certify
    // are verified first, then one statement consumes the nonce, re-checks that the host is still
    // ACTIVE and still trusts this AK, and records everything. What that statement cannot take (a
    // stale entry, an unusable nonce), and any evidence that fails verification, goes the precise
    // way below, which consumes the nonce first and gives every refusal exactly as it always did.
    const nowMs = this.now();
    let verified: Verified | undefined;
    const known = akName.length > 0 && nonce.length === NONCE_BYTES ? this.akCache.get(akName) : undefined;
    if (known !== undefined) {
      verified = this.verify(known, nonce, req);
      if (verified.refusals.length === 0 && verified.quoteInfo !== undefined) {
        const counters = this.countersOf(verified.quoteInfo);
        const attestationId = randomUUID();
        const r = await this.attestBatcher.call({ ak: known, nonce, next: counters, nowMs, attestationId });
        if (r.kind === 'accepted')
          return this.accepted(
            r.host,
            known.akPublic,
            verified.quoteInfo,
            { attestationId, nowMs, nonce, eventLog },
            req,
          );
        if (r.kind === 'counters-backwards')
          return {
            kind: 'refused',
            hostId: known.hostId,
            refusals: [await this.countersBackwards(known.hostId, counters)],
          };
        // Nothing changed: the precise path says why (and refreshes the entry if it still holds).
        this.akCache.delete(akName);
      }
    }

    // The AK: trusted (activated) for a host, enrolled but never activated, or unknown.
    // The nonce is single use: consumed in the same statement that finds an ACTIVE host, before
    // anything else can fail. A wrong-sized nonce matches nothing and is reported unknown.
    const found =
      akName.length === 0
        ? undefined
        : await this.store.hostConsumingNonce(
            akName,
            nonce.length === NONCE_BYTES ? nonce : new Uint8Array(0),
            nowMs,
          );
    const host = found?.host;
    if (host?.state === 'ACTIVE' && host.akPublic !== undefined && host.akName !== undefined)
      this.akCache.set({ hostId: host.hostId, akName: host.akName, akPublic: host.akPublic });
    else if (akName.length > 0) this.akCache.delete(akName);
    if (host === undefined || host.akPublic === undefined) {
      const pending = akName.length === 0 ? undefined : await this.store.enrollmentByAkName(akName);
      if (pending !== undefined && pending.activatedAtMs === undefined) {
        return {
          kind: 'refused',
          hostId: pending.hostId,
          refusals: [
            refusal(
              'AK_NOT_ACTIVATED',
              `AK ${hex(akName)} was enrolled for host ${pending.hostId} but its credential activation never completed`,
            ),
          ],
        };
      }
      return {
        kind: 'refused',
        hostId: '',
        refusals: [
          refusal(
            'UNKNOWN_AK',
            `AK ${hex(akName) || '(empty name)'} is not the trusted AK of any enrolled host`,
          ),
        ],
      };
    }
    if (host.state === 'DISABLED') {
      return {
        kind: 'refused',
        hostId: host.hostId,
        refusals: [
          refusal(
            'HOST_DISABLED',
            `host ${host.hostId} is disabled by an operator${host.stateReason ? `: ${host.stateReason}` : ''}`,
          ),
        ],
      };
    }
    const refused = (refusals: CollectorRefusal[]): CollectorAttestResult => ({
      kind: 'refused',
      hostId: host.hostId,
      refusals,
    });

    const state: NonceState = found?.nonce ?? { kind: 'unknown' };
    switch (state.kind) {
      case 'consumed':
        break;
      case 'unknown':
        return refused([refusal('NONCE_UNKNOWN', 'this nonce was never issued by GetChallenge')]);
      case 'other-ak':
        return refused([refusal('NONCE_UNKNOWN', 'this nonce was issued for another AK')]);
      case 'reused':
        return refused([
          refusal(
            'NONCE_REUSED',
            `this nonce was already used at ${new Date(state.usedAtMs).toISOString()}; ask GetChallenge for a fresh one`,
          ),
        ]);
      case 'expired':
        return refused([
          refusal(
            'NONCE_EXPIRED',
            `this nonce expired at ${new Date(state.expiresAtMs).toISOString()}; ask GetChallenge for a fresh one`,
            {
              nonce_expired_at: String(state.expiresAtMs),
            },
          ),
        ]);
    }

    // The checks depend only on the AK's public area (and the request): done above if it was known.
    const checked =
      verified !== undefined && Buffer.from(verified.akPublic).equals(host.akPublic)
        ? verified
        : this.verify(
            { hostId: host.hostId, akName: host.akName ?? akName, akPublic: host.akPublic },
            nonce,
            req,
          );
    const quoteInfo = checked.quoteInfo;
    if (checked.refusals.length > 0 || quoteInfo === undefined) return refused(checked.refusals);

    const counters = this.countersOf(quoteInfo);
    const attestationId = randomUUID();
    if (!(await this.store.advanceCounters(host.hostId, counters, nowMs, attestationId)))
      return refused([await this.countersBackwards(host.hostId, counters)]);
    return this.accepted(host, host.akPublic, quoteInfo, { attestationId, nowMs, nonce, eventLog }, req);
  }

  /** Quote and certify checked against `ak` (every refusal of both is reported). */
  private verify(ak: TrustedAk, nonce: Uint8Array, req: AttestRequest__Output): Verified {
    const refusals: CollectorRefusal[] = [];
    const quoteInfo = this.checkQuote(ak, nonce, req, refusals);
    this.checkCertifiedKey(ak, nonce, req.certifiedKey, refusals);
    return { akPublic: ak.akPublic, refusals, quoteInfo };
  }

  /** The refusal when the store did not move the counters (it decided atomically). */
  private async countersBackwards(hostId: string, counters: CountersRecord): Promise<CollectorRefusal> {
    // The previous values only explain the refusal.
    const previous = await this.store.getCounters(hostId);
    const why =
      countersProblem(previous, counters) ??
      `clock ${counters.clock} / resetCount ${counters.resetCount} / restartCount ${counters.restartCount} is not ahead of a concurrent quote`;
    return refusal(
      'COUNTERS_BACKWARDS',
      `the TPM's counters moved backwards since the last accepted quote: ${why} (replayed or forged quote, or a TPM that was cleared)`,
    );
  }

  private accepted(
    host: HostRecord,
    akPublic: Uint8Array,
    quoteInfo: NonNullable<Verified['quoteInfo']>,
    at: { attestationId: string; nowMs: number; nonce: Uint8Array; eventLog: Uint8Array },
    req: AttestRequest__Output,
  ): CollectorAttestResult {
    const { attestationId, nowMs, nonce, eventLog } = at;
    const quote = req.quote;
    const key = req.certifiedKey;
    const evidence = {
      attestationId,
      hostId: host.hostId,
      receivedAt: timestampFromDate(new Date(nowMs)),
      nonce,
      quote: { attest: quote!.attest, signature: quote!.signature, pcrBanks: quote!.pcrBanks },
      quoteInfo: quoteInfo.proto,
      eventLog,
      certifiedKey: {
        keyPublic: key!.keyPublic,
        certifyAttest: key!.certifyAttest,
        certifySignature: key!.certifySignature,
      },
      akPublic,
    } satisfies Evidence;
    return { kind: 'accepted', hostId: host.hostId, host, evidence };
  }

  private checkQuote(
    ak: TrustedAk,
    nonce: Uint8Array,
    req: AttestRequest__Output,
    refusals: CollectorRefusal[],
  ): { facts: ReturnType<typeof verifyQuote>; proto: QuoteInfo } | undefined {
    const quote = req.quote;
    if (quote === null || quote === undefined || quote.attest.length === 0 || quote.signature.length === 0) {
      refusals.push(refusal('QUOTE_MALFORMED', 'no quote (attest and signature are required)'));
      return undefined;
    }
    const pcrs = pcrValuesFromProto(quote.pcrBanks, refusals);
    if (pcrs === undefined) return undefined;
    let facts: ReturnType<typeof verifyQuote>;
    try {
      facts = verifyQuote({
        akPublic: ak.akPublic,
        attest: quote.attest,
        signature: quote.signature,
        nonce,
        pcrs,
        pcrSelection: [...this.opts.pcrSelection],
      });
    } catch (err) {
      refusals.push(quoteRefusal(err, 'quote'));
      return undefined;
    }
    // Exactly the required selection: nothing missing (verifyQuote checked), nothing more, and no
    // values for PCRs the quote does not cover.
    const required = this.requiredKey;
    // The selection as required, byte for byte (what an agent sends), needs no canonical form.
    const asRequired = sameSelections(facts.pcrSelect, this.opts.pcrSelection);
    const quoted = asRequired ? required : selectionKey(facts.pcrSelect);
    if (required !== quoted) {
      refusals.push(
        refusal(
          'PCR_SELECTION_MISMATCH',
          `the quote selects ${quoted || 'no PCRs'}; required is exactly ${required}`,
          { expected: required, observed: quoted },
        ),
      );
      return undefined;
    }
    for (const [bank, values] of pcrs) {
      for (const pcr of values.keys()) {
        if (!facts.pcrs.get(bank)?.has(pcr)) {
          refusals.push(
            refusal(
              'PCR_SELECTION_MISMATCH',
              `a value was sent for ${bank} PCR ${pcr}, which the quote does not cover`,
              { bank, pcr: String(pcr) },
            ),
          );
          return undefined;
        }
      }
    }
    // qualifiedSigner is the AK's qualified name (it depends on the AK's hierarchy), not its name:
    // the AK's signature is what binds the quote to the enrolled AK.
    const info = facts.attest.attested;
    const pcrDigest = info.kind === 'quote' ? info.pcrDigest : new Uint8Array(0);
    const sigHash = facts.signature.kind === 'null' ? 0 : facts.signature.hashAlg;
    const proto: QuoteInfo = {
      clock: facts.clock.toString(),
      resetCount: facts.resetCount,
      restartCount: facts.restartCount,
      safe: facts.safe,
      firmwareVersion: facts.firmwareVersion.toString(),
      pcrSelection: asRequired ? this.requiredProto : selectionsToProto(facts.pcrSelect),
      pcrDigest,
      pcrDigestAlgorithm: hashAlgorithmName(sigHash),
      // The enrolled AK's name (whose signature verified), not qualifiedSigner (a qualified name).
      akName: ak.akName,
    };
    return { facts, proto };
  }

  private checkCertifiedKey(
    ak: TrustedAk,
    nonce: Uint8Array,
    key: CertifiedKey__Output | null | undefined,
    refusals: CollectorRefusal[],
  ): void {
    if (
      key === null ||
      key === undefined ||
      key.keyPublic.length === 0 ||
      key.certifyAttest.length === 0 ||
      key.certifySignature.length === 0
    ) {
      refusals.push(
        refusal(
          'CERTIFY_INVALID',
          'no certified key (key_public, certify_attest and certify_signature are required)',
        ),
      );
      return;
    }
    let pub: TpmPublic;
    try {
      pub = unmarshalTpmtPublic(key.keyPublic);
    } catch (err) {
      refusals.push(
        refusal('SUBJECT_KEY_UNSUITABLE', `certified key public: ${describeError(err)}`, offsetDetails(err)),
      );
      return;
    }
    try {
      verifyCertify({
        akPublic: ak.akPublic,
        attest: key.certifyAttest,
        signature: key.certifySignature,
        certifiedPublic: key.keyPublic,
        nonce,
      });
    } catch (err) {
      const code =
        err instanceof Tpm2Error && err.code === 'NONCE_MISMATCH' ? 'NONCE_MISMATCH' : 'CERTIFY_INVALID';
      refusals.push(
        refusal(code, `TPM2_Certify of the subject key: ${describeError(err)}`, offsetDetails(err)),
      );
    }
    const problems = subjectKeyProblems(pub);
    if (problems.length > 0)
      refusals.push(refusal('SUBJECT_KEY_UNSUITABLE', `the certified key ${problems.join('; ')}`));
  }
}

function offsetDetails(err: unknown): Record<string, string> | undefined {
  if (typeof err === 'object' && err !== null && 'offset' in err && typeof err.offset === 'number')
    return { offset: String(err.offset) };
  return undefined;
}

/** Whether two selection lists are the same banks with the same select bytes, in the same order. */
function sameSelections(a: readonly PcrSelection[], b: readonly PcrSelection[]): boolean {
  if (a.length !== b.length) return false;
  for (const [i, x] of a.entries()) {
    const y = b[i]!;
    if (x.hashAlg !== y.hashAlg || Buffer.compare(x.select, y.select) !== 0) return false;
  }
  return true;
}

/** `sha1:0,1+sha256:0,1` with banks in TPM_ALG_ID order: comparable across orderings. */
function selectionKey(selections: readonly PcrSelection[]): string {
  const byBank = new Map<number, Set<number>>();
  for (const s of selections) {
    const set = byBank.get(s.hashAlg) ?? new Set<number>();
    for (const p of selectedPcrs(s.select)) set.add(p);
    byBank.set(s.hashAlg, set);
  }
  return [...byBank]
    .filter(([, pcrs]) => pcrs.size > 0)
    .sort((a, b) => a[0] - b[0])
    .map(
      ([alg, pcrs]) =>
        `${HASH_BY_ALG.get(alg)?.name ?? `0x${alg.toString(16)}`}:${[...pcrs].sort((x, y) => x - y).join(',')}`,
    )
    .join('+');
}

/** PCR values from the request; duplicates or unknown banks are refused, never merged. */
function pcrValuesFromProto(
  banks: readonly PcrBank__Output[],
  refusals: CollectorRefusal[],
): Map<HashName, Map<number, Uint8Array>> | undefined {
  const out = new Map<HashName, Map<number, Uint8Array>>();
  for (const bank of banks) {
    const hash = HASH_FROM_ENUM.get(bank.hashAlgorithm);
    if (hash === undefined) {
      refusals.push(refusal('QUOTE_MALFORMED', `PCR bank ${bank.hashAlgorithm} is not supported`));
      return undefined;
    }
    if (out.has(hash)) {
      refusals.push(refusal('QUOTE_MALFORMED', `PCR bank ${hash} appears twice`, { bank: hash }));
      return undefined;
    }
    const values = new Map<number, Uint8Array>();
    for (const v of bank.pcrs) {
      if (!Number.isInteger(v.index) || v.index < 0 || v.index > 23 || values.has(v.index)) {
        refusals.push(
          refusal('QUOTE_MALFORMED', `${hash} PCR index ${v.index} is out of range or repeated`, {
            bank: hash,
            pcr: String(v.index),
          }),
        );
        return undefined;
      }
      values.set(v.index, v.digest ?? EMPTY);
    }
    out.set(hash, values);
  }
  return out;
}

/** Maps a verifier error to the refusal code the API promises. */
function quoteRefusal(err: unknown, what: string): CollectorRefusal {
  if (!(err instanceof Tpm2Error)) return refusal('QUOTE_MALFORMED', `${what}: ${describeError(err)}`);
  const details = err.offset > 0 ? { offset: String(err.offset) } : undefined;
  switch (err.code) {
    case 'SIGNATURE_INVALID':
    case 'SCHEME_MISMATCH':
      return refusal('SIGNATURE_INVALID', `${what}: ${err.message}`, details);
    case 'NONCE_MISMATCH':
      return refusal('NONCE_MISMATCH', `${what}: the quote's extraData is not the nonce`, details);
    case 'PCR_SELECTION_MISMATCH':
      return refusal('PCR_SELECTION_MISMATCH', `${what}: ${err.message}`, details);
    case 'PCR_DIGEST_MISMATCH':
      return refusal('PCR_DIGEST_MISMATCH', `${what}: ${err.message}`, details);
    default:
      return refusal('QUOTE_MALFORMED', `${what}: ${err.code}: ${err.message}`, details);
  }
}
