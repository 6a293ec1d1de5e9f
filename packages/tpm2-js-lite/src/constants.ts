// Algorithm ids, structure tags and limits from TPM 2.0 Part 2 (§6.3 TPM_ALG_ID, §6.4 TPM_ECC_CURVE, §6.9 TPM_ST).

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
  MGF1: 0x0007,
  SM4: 0x0013,
  XOR: 0x000a,
} as const;

export const TPM_ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

/** TPMS_ATTEST types (TPM_ST_ATTEST_*). */
export const TPM_ST_ATTEST = {
  NV: 0x8014,
  COMMAND_AUDIT: 0x8015,
  SESSION_AUDIT: 0x8016,
  CERTIFY: 0x8017,
  QUOTE: 0x8018,
  TIME: 0x8019,
  CREATION: 0x801a,
  NV_DIGEST: 0x801c,
} as const;

/** TPMS_ATTEST.magic: the TPM only signs structures starting with this value from its own commands. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA = {
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

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const HASH_BY_ALG: ReadonlyMap<number, { name: HashName; size: number }> = new Map([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);

export const HASH_ALG: Readonly<Record<HashName, number>> = {
  sha1: TPM_ALG.SHA1,
  sha256: TPM_ALG.SHA256,
  sha384: TPM_ALG.SHA384,
  sha512: TPM_ALG.SHA512,
};

export type CurveName = 'P-256' | 'P-384' | 'P-521';
export const CURVE_BY_ID: ReadonlyMap<number, { name: CurveName; size: number }> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { name: 'P-256', size: 32 }],
  [TPM_ECC_CURVE.NIST_P384, { name: 'P-384', size: 48 }],
  [TPM_ECC_CURVE.NIST_P521, { name: 'P-521', size: 66 }],
]);

/** Caps from Part 2 with the reference implementation's sizes (MAX_RSA_KEY_BYTES 512, MAX_ECC_KEY_BYTES 66). */
export const LIMITS = {
  digest: 64,
  /** TPMU_NAME: a digest with its algorithm, or a 4-byte handle. */
  name: 2 + 64,
  /** TPM2B_DATA holds a TPMT_HA. */
  data: 2 + 64,
  rsaKey: 512,
  eccParameter: 66,
  /** HASH_COUNT banks; the reference TPM has 16 at most. */
  pcrBanks: 16,
  /** 256 PCRs per bank at most. */
  pcrSelect: 32,
  /** TPML_DIGEST holds at most 8 digests. */
  digests: 8,
  /** TPM2B_PUBLIC: sizeof(TPMT_PUBLIC) with the largest unique field; generous. */
  public: 1024,
  /** TPM2B_ATTEST: sizeof(TPMS_ATTEST) of the reference implementation is well below this. */
  attest: 2048,
} as const;

export function hashInfo(alg: number): { name: HashName; size: number } | undefined {
  return HASH_BY_ALG.get(alg);
}
