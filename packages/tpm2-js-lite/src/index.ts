// Everything browser-safe (wire structures, tpm2-tools files) is the /structures entry; this adds what needs node:crypto.
export * from './structures.ts';
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
export { verifyCertify, verifyQuote } from './verify.ts';
export type {
  AkInput,
  AttestationFacts,
  CertifyFacts,
  QuoteFacts,
  VerifyCertifyInput,
  VerifyQuoteInput,
} from './verify.ts';
