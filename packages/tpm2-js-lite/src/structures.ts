// The pure part of the verifier: wire structures and tpm2-tools file formats, no node:* imports, so it
// bundles for browsers as is (`@hostgate/tpm2-js-lite/structures`). Hashing and signatures live in crypto.ts.
export { marshalAttest, unmarshalAttest } from './attest.ts';
export type { CertifyInfo, ClockInfo, OtherAttestInfo, QuoteInfo, TpmsAttest } from './attest.ts';
export { ByteReader, ByteWriter, bytesEqual, concatBytes, fromHex, toHex } from './bytes.ts';
export {
  CURVE_BY_ID,
  HASH_ALG,
  HASH_BY_ALG,
  LIMITS,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST,
  TPMA,
} from './constants.ts';
export type { CurveName, HashName } from './constants.ts';
export { Tpm2Error } from './errors.ts';
export type { Tpm2ErrorCode } from './errors.ts';
export {
  marshalDigestList,
  marshalPcrSelectionList,
  normalizePcrs,
  parsePcrList,
  pcrSelection,
  selectedPcrs,
  unmarshalDigestList,
  unmarshalPcrSelectionList,
} from './pcr.ts';
export type { PcrInput, PcrSelection, PcrValueMap } from './pcr.ts';
export {
  ekTemplate,
  ekTemplateOf,
  isRestrictedSigningKey,
  marshalPublic,
  marshalTpmtPublic,
  TCG_EK_ATTRIBUTES,
  TCG_EK_ATTRIBUTES_HIGH,
  TCG_EK_POLICY_B_SHA384,
  TCG_EK_POLICY,
  tpmtPublicBytes,
  unmarshalPublic,
  unmarshalTpmtPublic,
} from './public.ts';
export type { EccPublic, EkTemplateName, RsaPublic, SchemeDef, SymDefObject, TpmPublic } from './public.ts';
export { marshalSignature, unmarshalSignature } from './signature.ts';
export type { TpmtSignature } from './signature.ts';
export {
  isSerializedPcrs,
  parsePcrValues,
  parseSerializedPcrs,
  readAkFile,
  serializePcrs,
} from './tpm2-tools-files.ts';
