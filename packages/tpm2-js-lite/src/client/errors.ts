import { describeResponseCode } from './response-codes.ts';

export type TransportErrorCode =
  | 'TRANSPORT_ADDRESS'
  | 'TRANSPORT_CLOSED'
  | 'TRANSPORT_IO'
  | 'TRANSPORT_TIMEOUT'
  | 'TRANSPORT_FRAMING'
  | 'RESPONSE_SHORT'
  | 'RESPONSE_TAG'
  | 'RESPONSE_SIZE'
  | 'RESPONSE_TOO_LARGE'
  | 'RESPONSE_TRAILING'
  | 'RESPONSE_MALFORMED';

/** The TPM could not be reached, or what came back is not a well-formed TPM response. */
export class TpmTransportError extends Error {
  readonly code: TransportErrorCode;
  /** Byte offset in the response where the problem was found (0 when not about a response). */
  readonly offset: number;
  constructor(code: TransportErrorCode, message: string, offset = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TpmTransportError';
    this.code = code;
    this.offset = offset;
  }
}

/** The TPM answered with a non-success response code. */
export class TpmResponseError extends Error {
  readonly code = 'TPM_RC';
  /** The raw TPM_RC. */
  readonly rc: number;
  /** Decoded name without parameter/handle/session decoration, e.g. `TPM_RC_POLICY_FAIL`. */
  readonly rcName: string;
  /** Which command produced it, e.g. `TPM2_ActivateCredential`. */
  readonly command: string;
  constructor(command: string, rc: number) {
    const described = describeResponseCode(rc);
    super(`${command} failed: ${described.text}`);
    this.name = 'TpmResponseError';
    this.rc = rc;
    this.rcName = described.name;
    this.command = command;
  }
}
