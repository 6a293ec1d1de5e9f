export type { DerErrorCode, HealthCertErrorCode } from './errors.ts';
export { DerError, HealthCertError } from './errors.ts';
export type { BitString, DerElement, DerLimits } from './der.ts';
export * as der from './der.ts';
export { fromPem, fromPemAll, toPem } from './pem.ts';
export type { CaPem, CreateCaOptions, HealthCa } from './ca.ts';
export { createCa, exportCaPem, loadCa } from './ca.ts';
export type { CertExtension, NameAttribute, UntrustedCertificate } from './x509.ts';
export { parseCertificate } from './x509.ts';
export type {
  HealthAttestation,
  HealthCertInfo,
  IssuedHealthCert,
  IssueHealthCertOptions,
} from './health-cert.ts';
export {
  DEFAULT_VALIDITY_SECONDS,
  HOST_URI_PREFIX,
  HOSTGATE_OID_ARC,
  issueHealthCert,
  MAX_VALIDITY_SECONDS,
  OID_HOSTGATE_HEALTH,
  parseHealthCert,
  parseHealthExtension,
} from './health-cert.ts';
export type {
  CreateCrlOptions,
  CrlReason,
  IssuedCrl,
  RevokedEntry,
  UntrustedCrl,
  UntrustedRevokedEntry,
} from './crl.ts';
export { CRL_REASONS, createCrl, MAX_CRL_ENTRIES, parseCrl } from './crl.ts';
export type { TrustAnchors, VerifyCrlOptions, VerifyHealthCertOptions } from './verify.ts';
export { verifyCrl, verifyHealthCert } from './verify.ts';
