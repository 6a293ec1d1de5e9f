export type { DerErrorCode, HealthCertErrorCode } from './errors.ts';
export { DerError, HealthCertError } from './errors.ts';
export type { BitString, DerElement, DerLimits } from './der.ts';
export * as der from './der.ts';
