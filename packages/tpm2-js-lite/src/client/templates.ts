// Object templates as marshaled TPMT_PUBLIC, built from the verifier half's structures. EK templates follow
// the TCG EK Credential Profile 2.0 §B.3.3 ("low range" templates L-1 RSA 2048 and L-2 ECC NIST P-256), so
// the key is the one the manufacturer certified.
import { TPM_ALG, TPM_ECC_CURVE, TPMA } from '../constants.ts';
import { ekTemplate, marshalTpmtPublic, TCG_EK_POLICY, type TpmPublic } from '../public.ts';

/** TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3). */
export const TPMA_OBJECT = TPMA;

/** PolicySecret(TPM_RH_ENDORSEMENT): the EK's authPolicy in the TCG templates. */
export const EK_POLICY = TCG_EK_POLICY;

const AK_ATTRIBUTES =
  TPMA.fixedTPM |
  TPMA.fixedParent |
  TPMA.sensitiveDataOrigin |
  TPMA.userWithAuth |
  TPMA.restricted |
  TPMA.sign;

/** TCG EK template L-1: RSA 2048, AES-128-CFB, unique = 256 zero bytes. */
export function rsaEkTemplate(): Uint8Array {
  return marshalTpmtPublic(ekTemplate('rsa'));
}

/** TCG EK template L-2: ECC NIST P-256, AES-128-CFB, unique x and y = 32 zero bytes each. */
export function eccEkTemplate(): Uint8Array {
  return marshalTpmtPublic(ekTemplate('ecc'));
}

/** Restricted RSA-2048 signing key (RSASSA-SHA256), the AK shape tpm2_createak makes by default. */
export function rsaAkTemplate(): Uint8Array {
  const ak: TpmPublic = {
    type: 'rsa',
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
    modulus: new Uint8Array(0),
  };
  return marshalTpmtPublic(ak);
}

/** Restricted ECC P-256 signing key (ECDSA-SHA256). */
export function eccAkTemplate(): Uint8Array {
  return eccSigningTemplate(AK_ATTRIBUTES);
}

/**
 * Unrestricted ECC P-256 signing key (ECDSA-SHA256): can sign external digests, e.g. a CSR for a
 * health certificate, and be certified by the AK with TPM2_Certify.
 */
export function eccSigningKeyTemplate(): Uint8Array {
  return eccSigningTemplate(AK_ATTRIBUTES & ~TPMA.restricted);
}

function eccSigningTemplate(objectAttributes: number): Uint8Array {
  return marshalTpmtPublic({
    type: 'ecc',
    nameAlg: TPM_ALG.SHA256,
    objectAttributes,
    authPolicy: new Uint8Array(0),
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
    x: new Uint8Array(0),
    y: new Uint8Array(0),
  });
}
