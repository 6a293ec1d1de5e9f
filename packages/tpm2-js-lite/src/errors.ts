// The verifier half's one error type: callers branch on `code`, parsers report the byte `offset`.

export type Tpm2ErrorCode =
  /** A length, count or value is out of bounds, truncated, or followed by trailing bytes. */
  | 'MALFORMED'
  /** TPMS_ATTEST.magic is not TPM_GENERATED_VALUE: the TPM did not produce this structure. */
  | 'BAD_MAGIC'
  /** The attestation is of another TPM_ST type than the verification asked for. */
  | 'WRONG_TYPE'
  /** An algorithm, curve, scheme or key size this library does not handle. */
  | 'UNSUPPORTED_ALGORITHM'
  /** The signature's scheme or hash is not the one the key allows, or its key type differs. */
  | 'SCHEME_MISMATCH'
  /** The key may not sign attestations (not a restricted signing key). */
  | 'KEY_NOT_ATTESTATION_KEY'
  | 'SIGNATURE_INVALID'
  | 'NONCE_MISMATCH'
  /** The quote does not select what was asked, or PCR values were supplied for unquoted PCRs. */
  | 'PCR_SELECTION_MISMATCH'
  /** The quoted PCR digest is not the hash of the supplied values. */
  | 'PCR_DIGEST_MISMATCH'
  /** The certified name is not the name of the supplied public area. */
  | 'NAME_MISMATCH'
  /** A certificate cannot be parsed, or holds a key of another kind. */
  | 'CERT_MALFORMED'
  /** A certificate does not chain to a configured root, or a link is outside its validity. */
  | 'CERT_CHAIN_INVALID'
  /** The certificate's public key is not the EK's. */
  | 'CERT_KEY_MISMATCH';

export class Tpm2Error extends Error {
  readonly code: Tpm2ErrorCode;
  /** Byte offset in the input where the problem was found; 0 when it is not about a position. */
  readonly offset: number;
  constructor(code: Tpm2ErrorCode, message: string, offset = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Tpm2Error';
    this.code = code;
    this.offset = offset;
  }
}
