export type DerErrorCode =
  | 'DER_INPUT_TOO_LARGE'
  | 'DER_TRUNCATED'
  | 'DER_TRAILING'
  | 'DER_TAG_HIGH_FORM'
  | 'DER_TAG_INVALID'
  | 'DER_LENGTH_INDEFINITE'
  | 'DER_LENGTH_NON_MINIMAL'
  | 'DER_LENGTH_TOO_LARGE'
  | 'DER_TOO_DEEP'
  | 'DER_TOO_MANY_ELEMENTS'
  | 'DER_CONSTRUCTED_EXPECTED'
  | 'DER_PRIMITIVE_EXPECTED'
  | 'DER_SET_ORDER'
  | 'DER_UNEXPECTED_TAG'
  | 'DER_INTEGER_INVALID'
  | 'DER_BOOLEAN_INVALID'
  | 'DER_NULL_INVALID'
  | 'DER_BIT_STRING_INVALID'
  | 'DER_OID_INVALID'
  | 'DER_STRING_INVALID'
  | 'DER_TIME_INVALID'
  | 'DER_ENCODE_INVALID';

/** Bytes that are not the strict DER this package reads, or a value the encoder cannot represent. */
export class DerError extends Error {
  readonly code: DerErrorCode;
  /** Byte offset in the decoded input where the problem was found (0 for encoder errors). */
  readonly offset: number;
  constructor(code: DerErrorCode, message: string, offset: number, options?: { cause?: unknown }) {
    super(`${message} (at byte ${offset})`, options);
    this.name = 'DerError';
    this.code = code;
    this.offset = offset;
  }
}

export type HealthCertErrorCode =
  // Arguments handed to the issuing functions.
  | 'ARGUMENT_INVALID'
  | 'SUBJECT_KEY_INVALID'
  | 'SUBJECT_KEY_UNSUPPORTED'
  | 'CA_KEY_MISMATCH'
  | 'CA_INVALID'
  // Structure of a certificate or CRL being read (DER was well formed, the profile is not met).
  | 'PEM_INVALID'
  | 'CERT_STRUCTURE'
  | 'CERT_VERSION'
  | 'CERT_SERIAL'
  | 'CERT_ALGORITHM'
  | 'CERT_NAME'
  | 'CERT_VALIDITY'
  | 'CERT_EXTENSION'
  | 'CERT_EXTENSION_DUPLICATE'
  | 'CERT_EXTENSION_CRITICAL_UNKNOWN'
  | 'CERT_PROFILE'
  | 'CERT_HEALTH_EXTENSION'
  | 'CRL_STRUCTURE'
  | 'CRL_STALE'
  // Verification outcomes.
  | 'SIGNATURE_INVALID'
  | 'ISSUER_MISMATCH'
  | 'NOT_YET_VALID'
  | 'EXPIRED'
  | 'REVOKED';

/** A health certificate, CA or CRL that cannot be made, read or trusted. */
export class HealthCertError extends Error {
  readonly code: HealthCertErrorCode;
  /** Byte offset in the certificate/CRL where the problem was found (0 when not about input bytes). */
  readonly offset: number;
  constructor(code: HealthCertErrorCode, message: string, offset = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HealthCertError';
    this.code = code;
    this.offset = offset;
  }
}
