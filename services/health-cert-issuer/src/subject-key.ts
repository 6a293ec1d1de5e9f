// The certificate's subject key: the TPM-resident key the verdict carries, checked again here
// (defence in depth: the collector verified it, but the issuer is the one that signs).
import type { KeyObject } from 'node:crypto';
import type { CertifiedKey__Output } from '@hostgate/protos';
import {
  keyFromTpmPublic,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPMA,
  type TpmPublic,
  unmarshalTpmtPublic,
  verifyCertify,
} from '@hostgate/tpm2-js-lite';
import type { Refusal } from './refusal.ts';

const MAX_PUBLIC_BYTES = 1024;
const MAX_ATTEST_BYTES = 4096;

/**
 * The key as a KeyObject, imported once per verdict and handed to issueHealthCert as it is (an SPKI
 * would be imported again there); `spki` is its SubjectPublicKeyInfo DER, exported on first read.
 */
export type SubjectKeyResult =
  | { ok: true; key: KeyObject; readonly spki: Uint8Array }
  | { ok: false; refusal: Refusal };

function accepted(key: KeyObject): SubjectKeyResult {
  let spki: Uint8Array | undefined;
  return {
    ok: true,
    key,
    get spki() {
      spki ??= new Uint8Array(key.export({ type: 'spki', format: 'der' }));
      return spki;
    },
  };
}

/**
 * Accepted subject keys by their TPMT_PUBLIC bytes. A host's TPM-resident key is the same on every
 * attestation: importing it (JWK -> KeyObject) was ~10 % of the issuer's CPU per verdict, and
 * unmarshalling and checking its public area, which depend on those bytes alone, ~2 %; the same
 * KeyObject also lets issueHealthCert reuse its SPKI. The TPM2_Certify check runs every time.
 */
const acceptedKeys = new Map<string, KeyObject>();
const MAX_ACCEPTED = 4096;

function remember(id: string, key: KeyObject): KeyObject {
  if (acceptedKeys.size >= MAX_ACCEPTED) acceptedKeys.delete(acceptedKeys.keys().next().value as string);
  acceptedKeys.set(id, key);
  return key;
}

function refuse(
  code: 'CERTIFY_INVALID' | 'SUBJECT_KEY_UNSUITABLE',
  message: string,
  details: Record<string, string> = {},
): SubjectKeyResult {
  return { ok: false, refusal: { code, message, details } };
}

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : 'UNKNOWN';
}

/**
 * The certified key (KeyObject and SPKI DER) when it is a fixedTPM, fixedParent, sensitiveDataOrigin, unrestricted sign-only ECC
 * P-256 key whose TPM2_Certify verifies with the AK; otherwise the refusal.
 */
export function subjectKeyFromVerdict(
  certified: CertifiedKey__Output | null,
  akPublic: Uint8Array,
): SubjectKeyResult {
  if (certified === null || certified.keyPublic.length === 0) {
    return refuse('CERTIFY_INVALID', 'the verdict carries no certified key to issue the certificate to');
  }
  if (certified.keyPublic.length > MAX_PUBLIC_BYTES) {
    return refuse('SUBJECT_KEY_UNSUITABLE', 'the certified key public area is too large', {
      limit: String(MAX_PUBLIC_BYTES),
    });
  }
  if (
    certified.certifyAttest.length > MAX_ATTEST_BYTES ||
    certified.certifySignature.length > MAX_ATTEST_BYTES
  ) {
    return refuse('CERTIFY_INVALID', 'the TPM2_Certify evidence is too large', {
      limit: String(MAX_ATTEST_BYTES),
    });
  }
  const keyPublic = certified.keyPublic;
  const id = Buffer.from(keyPublic.buffer, keyPublic.byteOffset, keyPublic.byteLength).toString('base64');
  const known = acceptedKeys.get(id);
  if (known !== undefined) return certifiedBy(certified, akPublic) ?? accepted(known);
  let pub: TpmPublic;
  try {
    pub = unmarshalTpmtPublic(certified.keyPublic);
  } catch (err) {
    return refuse('SUBJECT_KEY_UNSUITABLE', `the certified key public area is malformed (${codeOf(err)})`);
  }
  const attrs = pub.objectAttributes;
  const problems: string[] = [];
  if (pub.type !== 'ecc' || pub.curveId !== TPM_ECC_CURVE.NIST_P256)
    problems.push('not an ECC NIST P-256 key');
  if ((attrs & TPMA.fixedTPM) === 0) problems.push('not fixedTPM');
  if ((attrs & TPMA.fixedParent) === 0) problems.push('not fixedParent');
  if ((attrs & TPMA.sensitiveDataOrigin) === 0) problems.push('not sensitiveDataOrigin (it was imported)');
  if ((attrs & TPMA.sign) === 0) problems.push('not a signing key');
  if ((attrs & TPMA.decrypt) !== 0) problems.push('also a decryption key');
  if ((attrs & TPMA.restricted) !== 0) problems.push('restricted (cannot sign a TLS handshake)');
  if (pub.type === 'ecc' && pub.scheme.scheme !== TPM_ALG.NULL && pub.scheme.scheme !== TPM_ALG.ECDSA) {
    problems.push('its scheme is not ECDSA');
  }
  if (problems.length > 0) {
    return refuse('SUBJECT_KEY_UNSUITABLE', `the certified key is ${problems.join(', ')}`, {
      observed: `0x${attrs.toString(16).padStart(8, '0')}`,
    });
  }
  const certify = certifiedBy(certified, akPublic);
  if (certify !== undefined) return certify;
  try {
    return accepted(remember(id, keyFromTpmPublic(pub).keyObject));
  } catch (err) {
    return refuse('SUBJECT_KEY_UNSUITABLE', `the certified key is not a usable public key (${codeOf(err)})`);
  }
}

/** The refusal when the TPM2_Certify does not bind the key to the AK; undefined when it does. */
function certifiedBy(certified: CertifiedKey__Output, akPublic: Uint8Array): SubjectKeyResult | undefined {
  if (akPublic.length === 0)
    return refuse('CERTIFY_INVALID', 'the verdict carries no AK to check the TPM2_Certify with');
  try {
    verifyCertify({
      akPublic,
      attest: certified.certifyAttest,
      signature: certified.certifySignature,
      certifiedPublic: certified.keyPublic,
    });
    return undefined;
  } catch (err) {
    return refuse(
      'CERTIFY_INVALID',
      `the TPM2_Certify of the key does not verify with the AK (${codeOf(err)})`,
    );
  }
}
