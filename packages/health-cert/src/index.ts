export type { DerErrorCode, HealthCertErrorCode } from './errors.ts';
export { DerError, HealthCertError } from './errors.ts';
export type { BitString, DerElement, DerLimits } from './der.ts';
export * as der from './der.ts';
export { fromPem, toPem } from './pem.ts';
export type { CaPem, CreateCaOptions, HealthCa } from './ca.ts';
export { createCa, exportCaPem, loadCa } from './ca.ts';
export type { CertExtension, NameAttribute, UntrustedCertificate } from './x509.ts';
export { parseCertificate } from './x509.ts';
