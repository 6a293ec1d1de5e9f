// Bounds-checked little-endian reads over untrusted event data. Every read checks the bytes
// left first and raises DecodeFault (code + offset), which decodeEvent turns into a raw event.

/** Stable reasons an event body could not be decoded. */
export type DecodeErrorCode =
  | 'truncated'
  | 'length-too-large'
  | 'bad-value'
  | 'bad-signature'
  | 'trailing-bytes'
  | 'too-many-items'
  | 'decoder-bug';

/** Why a body was kept raw: `offset` is the byte (into the event data) where decoding stopped. */
export interface DecodeError {
  readonly code: DecodeErrorCode;
  readonly offset: number;
  readonly message: string;
}

/** Thrown inside decoders only; never escapes decodeEvent. */
export class DecodeFault extends Error {
  override readonly name = 'DecodeFault';
  readonly code: DecodeErrorCode;
  readonly offset: number;
  constructor(code: DecodeErrorCode, message: string, offset: number) {
    super(`${message} (offset ${offset})`);
    this.code = code;
    this.offset = offset;
  }
  toError(): DecodeError {
    return { code: this.code, offset: this.offset, message: this.message };
  }
}

/** A cursor over `bytes` whose offsets are reported relative to `base` (the event data start). */
export class Reader {
  readonly bytes: Uint8Array;
  readonly base: number;
  pos = 0;
  constructor(bytes: Uint8Array, base = 0) {
    this.bytes = bytes;
    this.base = base;
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  /** Absolute offset (into the event data) of the cursor. */
  get offset(): number {
    return this.base + this.pos;
  }
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new DecodeFault('truncated', `${what}: need ${n} bytes, ${this.remaining} left`, this.offset);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const b = this.bytes;
    const v = b[this.pos]! | (b[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.bytes;
    const o = this.pos;
    this.pos += 4;
    return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
  }
  u64(what: string): bigint {
    const lo = this.u32(what);
    const hi = this.u32(what);
    return BigInt(lo) | (BigInt(hi) << 32n);
  }
  /** A u64 length or count that must fit in the bytes left once multiplied by `unit`. */
  length64(what: string, unit = 1): number {
    const at = this.offset;
    const v = this.u64(what);
    if (v * BigInt(unit) > BigInt(this.remaining)) {
      throw new DecodeFault(
        'length-too-large',
        `${what} ${v} × ${unit} exceeds the ${this.remaining} bytes left`,
        at,
      );
    }
    return Number(v);
  }
  /** A u32 length or count that must fit in the bytes left once multiplied by `unit`. */
  length32(what: string, unit = 1): number {
    const at = this.offset;
    const v = this.u32(what);
    if (v * unit > this.remaining) {
      throw new DecodeFault(
        'length-too-large',
        `${what} ${v} × ${unit} exceeds the ${this.remaining} bytes left`,
        at,
      );
    }
    return v;
  }
  bytesN(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.pos);
    this.pos = this.bytes.length;
    return out;
  }
  /** A sub-reader over the next `n` bytes, offsets still relative to the event data. */
  sub(n: number, what: string): Reader {
    const at = this.offset;
    return new Reader(this.bytesN(n, what), at);
  }
}
