export { unmarshalAttest, marshalAttest } from './attest.ts';
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
export {
  CredentialError,
  CredentialFileError,
  decodeTpm2ToolsCredential,
  ekKeyFromPublic,
  encodeTpm2ToolsCredential,
  kdfa,
  kdfe,
  makeCredential,
  makeCredentialFor,
} from './credential.ts';
export type { CredentialEkKey, CredentialHash, MadeCredential } from './credential.ts';
export { digest, keyFromPem, keyFromTpmPublic, objectName, verifyTpmSignature } from './crypto.ts';
export type { VerifyKey } from './crypto.ts';
export {
  checkEkCertificateKey,
  derCertificateBytes,
  EK_CERT_NV_INDEX,
  parseEkCertificate,
  TCG_KP_EK_CERTIFICATE,
  verifyEkCertificate,
  verifyEkCertificateChain,
} from './ek-cert.ts';
export type { ChainOptions, EkCertificate } from './ek-cert.ts';
export {
  EK_POLICY_A,
  EK_POLICY_B,
  EK_POLICY_C,
  EK_TEMPLATE_IDS,
  ekPolicyFor,
  ekTemplateId,
  ekTemplateInfo,
} from './ek-templates.ts';
export type { EkPolicy, EkTemplateId, EkTemplateInfo } from './ek-templates.ts';
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
export { verifyCertify, verifyQuote } from './verify.ts';
export type {
  AkInput,
  AttestationFacts,
  CertifyFacts,
  QuoteFacts,
  VerifyCertifyInput,
  VerifyQuoteInput,
} from './verify.ts';
export {
  isSerializedPcrs,
  parsePcrValues,
  parseSerializedPcrs,
  readAkFile,
  serializePcrs,
} from './tpm2-tools-files.ts';
