// Object templates as marshaled TPMT_PUBLIC. EK templates follow the TCG EK Credential Profile 2.0 §B.3.3
// ("low range" templates L-1 RSA 2048 and L-2 ECC NIST P-256), so the key is the one the manufacturer certified.
import { CommandWriter } from './wire.ts';

const ALG_RSA = 0x0001;
const ALG_ECC = 0x0023;
const ALG_SHA256 = 0x000b;
const ALG_AES = 0x0006;
const ALG_CFB = 0x0043;
const ALG_NULL = 0x0010;
const ALG_RSASSA = 0x0014;
const ALG_ECDSA = 0x0018;
const ECC_NIST_P256 = 0x0003;

/** TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

/** PolicySecret(TPM_RH_ENDORSEMENT): the EK's authPolicy in the TCG templates. */
export const EK_POLICY = Uint8Array.from(
  Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex'),
);

const EK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.adminWithPolicy |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt;

const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;

/** TCG EK template L-1: RSA 2048, AES-128-CFB, unique = 256 zero bytes. */
export function rsaEkTemplate(): Uint8Array {
  return new CommandWriter()
    .u16(ALG_RSA)
    .u16(ALG_SHA256)
    .u32(EK_ATTRIBUTES)
    .tpm2b(EK_POLICY)
    .u16(ALG_AES)
    .u16(128)
    .u16(ALG_CFB)
    .u16(ALG_NULL)
    .u16(2048)
    .u32(0)
    .tpm2b(new Uint8Array(256))
    .finish();
}

/** TCG EK template L-2: ECC NIST P-256, AES-128-CFB, unique x and y = 32 zero bytes each. */
export function eccEkTemplate(): Uint8Array {
  return new CommandWriter()
    .u16(ALG_ECC)
    .u16(ALG_SHA256)
    .u32(EK_ATTRIBUTES)
    .tpm2b(EK_POLICY)
    .u16(ALG_AES)
    .u16(128)
    .u16(ALG_CFB)
    .u16(ALG_NULL)
    .u16(ECC_NIST_P256)
    .u16(ALG_NULL)
    .tpm2b(new Uint8Array(32))
    .tpm2b(new Uint8Array(32))
    .finish();
}

/** Restricted RSA-2048 signing key (RSASSA-SHA256), the AK shape tpm2_createak makes by default. */
export function rsaAkTemplate(): Uint8Array {
  return new CommandWriter()
    .u16(ALG_RSA)
    .u16(ALG_SHA256)
    .u32(AK_ATTRIBUTES)
    .tpm2b()
    .u16(ALG_NULL)
    .u16(ALG_RSASSA)
    .u16(ALG_SHA256)
    .u16(2048)
    .u32(0)
    .tpm2b()
    .finish();
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
  return eccSigningTemplate(AK_ATTRIBUTES & ~TPMA_OBJECT.restricted);
}

function eccSigningTemplate(attributes: number): Uint8Array {
  return new CommandWriter()
    .u16(ALG_ECC)
    .u16(ALG_SHA256)
    .u32(attributes)
    .tpm2b()
    .u16(ALG_NULL)
    .u16(ALG_ECDSA)
    .u16(ALG_SHA256)
    .u16(ECC_NIST_P256)
    .u16(ALG_NULL)
    .tpm2b()
    .tpm2b()
    .finish();
}
