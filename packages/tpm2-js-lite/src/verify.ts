// Quote and certify verification: the trust boundary. Inputs are untrusted bytes; what comes back is what
// the AK's signature vouches for (and, for quotes, PCR values that hash to the signed digest).
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { bytesEqual } from './bytes.ts';
import { HASH_BY_ALG, type HashName, TPM_ALG, TPM_ST_ATTEST } from './constants.ts';
import { type TpmsAttest, unmarshalAttest } from './attest.ts';
import {
  digester,
  fromJwk,
  hashName,
  keyFromKeyObject,
  keyFromPem,
  keyFromTpmPublic,
  objectName,
  verifyTpmSignature,
  type VerifyKey,
} from './crypto.ts';
import { Tpm2Error } from './errors.ts';
import { normalizePcrs, type PcrInput, type PcrSelection, type PcrValueMap, selectedPcrs } from './pcr.ts';
import {
  isRestrictedSigningKey,
  marshalTpmtPublic,
  type TpmPublic,
  tpmtPublicBytes,
  unmarshalTpmtPublic,
} from './public.ts';
import { type TpmtSignature, unmarshalSignature } from './signature.ts';

/**
 * The attestation key: TPM2B_PUBLIC or TPMT_PUBLIC bytes, a parsed TpmPublic, a SubjectPublicKeyInfo PEM,
 * a JWK, or a KeyObject. Only a TPM public area lets the verifier check that the AK is a restricted
 * signing key and that the signature uses the AK's own scheme.
 */
export type AkInput = Uint8Array | TpmPublic | string | JsonWebKey | KeyObject;

interface PreparedAk {
  key: VerifyKey;
  public?: TpmPublic;
}

const cacheByObject = new WeakMap<KeyObject, PreparedAk>();
const cacheByBytes = new Map<string, PreparedAk>();
/**
 * AKs kept imported, evicted oldest first. A verifier serving a fleet sees each host's AK in turn, so
 * the limit is a fleet size (a few hundred hosts round-robin through 64 entries missed every time,
 * ≈ 60 µs of import per verification); 1024 imported keys are ~1-2 MB.
 */
const BYTES_CACHE_LIMIT = 1024;
/** Cache keys: one char per byte, decoded natively. */
const latin1 = new TextDecoder('latin1');
let lastAk: { bytes: Uint8Array; prepared: PreparedAk } | undefined;

function checkAk(pub: TpmPublic, allowUnrestricted: boolean): void {
  if (!allowUnrestricted && !isRestrictedSigningKey(pub)) {
    throw new Tpm2Error('KEY_NOT_ATTESTATION_KEY', 'the AK is not a restricted signing key');
  }
}

function prepareAk(ak: AkInput, allowUnrestricted: boolean): PreparedAk {
  // Cached by content, never by identity: a caller may reuse and rewrite its buffers and objects.
  if (typeof ak === 'string') {
    const id = `pem:${ak}`;
    return cacheByBytes.get(id) ?? remember(id, { key: keyFromPem(ak) });
  }
  if (ak instanceof Uint8Array || !('kty' in ak || 'asymmetricKeyType' in ak)) {
    const bytes = ak instanceof Uint8Array ? tpmtPublicBytes(ak) : marshalTpmtPublic(ak as TpmPublic);
    // The same AK again (the common case for a verifier in a loop): compare bytes with a private copy.
    if (lastAk !== undefined && bytesEqual(lastAk.bytes, bytes)) {
      checkAk(lastAk.prepared.public!, allowUnrestricted);
      return lastAk.prepared;
    }
    const id = `tpm:${latin1.decode(bytes)}`;
    const hit = cacheByBytes.get(id);
    if (hit?.public !== undefined) {
      checkAk(hit.public, allowUnrestricted);
      lastAk = { bytes: bytes.slice(), prepared: hit };
      return hit;
    }
    const pub = unmarshalTpmtPublic(bytes);
    checkAk(pub, allowUnrestricted);
    const prepared = remember(id, { key: keyFromTpmPublic(pub), public: pub });
    lastAk = { bytes: bytes.slice(), prepared };
    return prepared;
  }
  if ('asymmetricKeyType' in ak) {
    // KeyObjects are immutable.
    const keyObject = ak as KeyObject;
    const hit = cacheByObject.get(keyObject);
    if (hit !== undefined) return hit;
    const prepared = { key: keyFromKeyObject(keyObject) };
    cacheByObject.set(keyObject, prepared);
    return prepared;
  }
  const id = `jwk:${JSON.stringify(ak)}`;
  return cacheByBytes.get(id) ?? remember(id, { key: fromJwk(ak as JsonWebKey) });
}

function remember(id: string, prepared: PreparedAk): PreparedAk {
  if (cacheByBytes.size >= BYTES_CACHE_LIMIT) cacheByBytes.delete(cacheByBytes.keys().next().value as string);
  cacheByBytes.set(id, prepared);
  return prepared;
}

export interface AttestationFacts {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  /** Name of the key that signed, as the TPM reported it. */
  qualifiedSigner: Uint8Array;
  /** The whole parsed attestation. */
  attest: TpmsAttest;
  signature: TpmtSignature;
}

/** Checks type, key suitability, signature and (when given) nonce; common to quotes and certifications. */
function verifySigned(
  input: { akPublic: AkInput; attest: Uint8Array; signature: Uint8Array | TpmtSignature; nonce?: Uint8Array },
  type: number,
  allowUnrestrictedAk: boolean,
): AttestationFacts {
  const attest = unmarshalAttest(input.attest);
  if (attest.type !== type) {
    throw new Tpm2Error(
      'WRONG_TYPE',
      `attestation type 0x${attest.type.toString(16)}, expected 0x${type.toString(16)}`,
      4,
    );
  }
  const signature =
    input.signature instanceof Uint8Array ? unmarshalSignature(input.signature) : input.signature;
  const ak = prepareAk(input.akPublic, allowUnrestrictedAk);
  if (ak.public !== undefined) {
    const scheme = ak.public.scheme;
    if (
      signature.kind !== 'null' &&
      scheme.scheme !== TPM_ALG.NULL &&
      (scheme.scheme !== signature.sigAlg || scheme.hashAlg !== signature.hashAlg)
    ) {
      throw new Tpm2Error('SCHEME_MISMATCH', "the signature does not use the AK's scheme");
    }
  }
  if (!verifyTpmSignature(ak.key, signature, input.attest)) {
    throw new Tpm2Error('SIGNATURE_INVALID', 'the signature does not verify with the AK');
  }
  if (input.nonce !== undefined && !bytesEqual(attest.extraData, input.nonce)) {
    throw new Tpm2Error(
      'NONCE_MISMATCH',
      'extraData is not the nonce',
      6 + 2 + attest.qualifiedSigner.length + 2,
    );
  }
  return {
    clock: attest.clockInfo.clock,
    resetCount: attest.clockInfo.resetCount,
    restartCount: attest.clockInfo.restartCount,
    safe: attest.clockInfo.safe,
    firmwareVersion: attest.firmwareVersion,
    qualifiedSigner: attest.qualifiedSigner,
    attest,
    signature,
  };
}

export interface VerifyQuoteInput {
  akPublic: AkInput;
  /** TPMS_ATTEST bytes exactly as signed (`tpm2_quote -m`). */
  attest: Uint8Array;
  /** TPMT_SIGNATURE bytes (`tpm2_quote -s`) or parsed. */
  signature: Uint8Array | TpmtSignature;
  /** The challenge; must equal extraData. */
  nonce: Uint8Array;
  /** Claimed PCR values; every quoted PCR needs one. */
  pcrs: PcrInput;
  /** What the verifier asked for; the quote must cover it. Defaults to every PCR in `pcrs`. */
  pcrSelection?: PcrSelection[];
  /** Accept a key that is not a restricted signing key (a software key can sign anything). Default false. */
  allowUnrestrictedAk?: boolean;
}

export interface QuoteFacts extends AttestationFacts {
  /** The quoted PCR values (and only those), which hash to the signed digest. */
  pcrs: PcrValueMap;
  pcrSelect: PcrSelection[];
}

/**
 * Verifies a TPM2_Quote: signature by the AK, magic and type, extraData = nonce, selection covering what was
 * asked, pcrDigest = H_sig(selected PCR values in selection order). Throws Tpm2Error with a stable code.
 */
export function verifyQuote(input: VerifyQuoteInput): QuoteFacts {
  const facts = verifySigned(input, TPM_ST_ATTEST.QUOTE, input.allowUnrestrictedAk ?? false);
  const info = facts.attest.attested;
  if (info.kind !== 'quote') throw new Tpm2Error('WRONG_TYPE', 'not a quote', 4);
  const supplied = normalizePcrs(input.pcrs);
  const signature = facts.signature;
  if (signature.kind === 'null') throw new Tpm2Error('UNSUPPORTED_ALGORITHM', 'unsigned quote');
  // One pass over the quote's selection: every quoted PCR needs a value, and the digest input is each
  // selected bank in the quote's order, each PCR ascending (Part 3 §18.4, PCRComputeCurrentDigest).
  const pcrHash = digester(signature.hashAlg);
  const verified: PcrValueMap = new Map();
  for (const sel of info.pcrSelect) {
    const hash = hashName(sel.hashAlg);
    const size = HASH_BY_ALG.get(sel.hashAlg)!.size;
    const bank = supplied.get(hash);
    let out = verified.get(hash);
    if (out === undefined) {
      out = new Map<number, Uint8Array>();
      verified.set(hash, out);
    }
    for (let octet = 0; octet < sel.select.length; octet++) {
      const bits = sel.select[octet]!;
      if (bits === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((bits & (1 << bit)) === 0) continue;
        const pcr = octet * 8 + bit;
        const value = bank?.get(pcr);
        if (value === undefined) {
          throw new Tpm2Error(
            'PCR_SELECTION_MISMATCH',
            `the quote covers ${hash} PCR ${pcr} but no value was supplied`,
          );
        }
        if (value.length !== size) {
          throw new Tpm2Error('MALFORMED', `${hash} PCR ${pcr} value is ${value.length} bytes, not ${size}`);
        }
        pcrHash.update(value);
        out.set(pcr, value);
      }
    }
  }
  // What was asked (by default: every supplied value) must be among the quoted PCRs.
  const notQuoted = (hash: HashName, pcr: number) =>
    new Tpm2Error('PCR_SELECTION_MISMATCH', `${hash} PCR ${pcr} was asked for but is not in the quote`);
  if (input.pcrSelection !== undefined) {
    for (const s of input.pcrSelection) {
      const hash = hashName(s.hashAlg);
      for (const pcr of selectedPcrs(s.select)) if (!verified.get(hash)?.has(pcr)) throw notQuoted(hash, pcr);
    }
  } else {
    for (const [hash, bank] of supplied) {
      for (const pcr of bank.keys()) if (!verified.get(hash)?.has(pcr)) throw notQuoted(hash, pcr);
    }
  }
  const computed = pcrHash.digest();
  if (!bytesEqual(computed, info.pcrDigest)) {
    throw new Tpm2Error('PCR_DIGEST_MISMATCH', 'the supplied PCR values do not hash to the quoted pcrDigest');
  }
  return { ...facts, pcrs: verified, pcrSelect: info.pcrSelect };
}

export interface VerifyCertifyInput {
  akPublic: AkInput;
  /** TPMS_ATTEST bytes of type CERTIFY (`tpm2_certify -o`). */
  attest: Uint8Array;
  signature: Uint8Array | TpmtSignature;
  /** The certified object's public area: TPM2B_PUBLIC / TPMT_PUBLIC bytes or parsed. */
  certifiedPublic: Uint8Array | TpmPublic;
  nonce?: Uint8Array;
  allowUnrestrictedAk?: boolean;
}

export interface CertifyFacts extends AttestationFacts {
  /** The certified key, now known to live in the same TPM as the AK. */
  certifiedPublic: TpmPublic;
  name: Uint8Array;
  qualifiedName: Uint8Array;
}

/** Verifies a TPM2_Certify: the AK signed that an object named nameAlg ‖ H(certifiedPublic) is loaded in its TPM. */
export function verifyCertify(input: VerifyCertifyInput): CertifyFacts {
  const facts = verifySigned(input, TPM_ST_ATTEST.CERTIFY, input.allowUnrestrictedAk ?? false);
  const info = facts.attest.attested;
  if (info.kind !== 'certify') throw new Tpm2Error('WRONG_TYPE', 'not a certification', 4);
  const bytes =
    input.certifiedPublic instanceof Uint8Array ? tpmtPublicBytes(input.certifiedPublic) : undefined;
  const certifiedPublic =
    bytes !== undefined ? unmarshalTpmtPublic(bytes) : (input.certifiedPublic as TpmPublic);
  const name = objectName(bytes ?? certifiedPublic);
  if (!bytesEqual(name, info.name)) {
    throw new Tpm2Error('NAME_MISMATCH', 'the certified name is not the name of the supplied public area');
  }
  return { ...facts, certifiedPublic, name, qualifiedName: info.qualifiedName };
}
