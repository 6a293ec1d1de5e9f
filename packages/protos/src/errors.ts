// Typed errors of the Kafka payload codec: callers dead-letter on them by `code`.

export type ProtoErrorCode = 'PROTO_DECODE' | 'PROTO_TOO_LARGE' | 'PROTO_ENCODE';

/** A payload could not be encoded or decoded; `offset` is the byte position reached (decode). */
export class ProtoCodecError extends Error {
  override readonly name = 'ProtoCodecError';
  readonly code: ProtoErrorCode;
  readonly typeName: string;
  readonly offset: number;

  constructor(
    code: ProtoErrorCode,
    typeName: string,
    offset: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.typeName = typeName;
    this.offset = offset;
  }
}
