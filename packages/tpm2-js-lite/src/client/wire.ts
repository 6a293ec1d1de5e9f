import { TpmTransportError } from './errors.ts';

/** Builds command bytes; growable, big-endian as TPM 2.0 Part 1 §18 requires. */
export class CommandWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
    return this;
  }
  u16(v: number): this {
    this.room(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
    return this;
  }
  i32(v: number): this {
    this.room(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  /** A TPM2B: u16 size then the bytes. */
  tpm2b(b: Uint8Array = new Uint8Array(0)): this {
    if (b.length > 0xffff) throw new RangeError(`TPM2B of ${b.length} bytes`);
    return this.u16(b.length).bytes(b);
  }
  /** Overwrites a u32 already written (sizes known only after the body). */
  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Reads response bytes; every read is bounds-checked and fails with a typed error naming the offset. */
export class ResponseReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset: number;
  readonly end: number;
  private readonly what: string;

  constructor(bytes: Uint8Array, what: string, offset = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.end = end;
    this.what = what;
  }
  get remaining(): number {
    return this.end - this.offset;
  }
  private need(n: number, field: string): void {
    if (n > this.end - this.offset) {
      throw new TpmTransportError(
        'RESPONSE_MALFORMED',
        `${this.what}: ${field} needs ${n} bytes, ${this.end - this.offset} left`,
        this.offset,
      );
    }
  }
  u8(field = 'u8'): number {
    this.need(1, field);
    return this.view.getUint8(this.offset++);
  }
  u16(field = 'u16'): number {
    this.need(2, field);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }
  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }
  u64(field = 'u64'): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }
  take(n: number, field = 'bytes'): Uint8Array {
    this.need(n, field);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  /** A TPM2B's contents, the size checked against what is left and against `max`. */
  tpm2b(field: string, max = 0xffff): Uint8Array {
    const at = this.offset;
    const size = this.u16(`${field} size`);
    if (size > max) {
      throw new TpmTransportError(
        'RESPONSE_MALFORMED',
        `${this.what}: ${field} of ${size} bytes exceeds ${max}`,
        at,
      );
    }
    return this.take(size, field);
  }
  /** A TPM2B with its size prefix, as tools write it to files. */
  tpm2bWhole(field: string, max = 0xffff): Uint8Array {
    const start = this.offset;
    this.tpm2b(field, max);
    return this.bytes.slice(start, this.offset);
  }
  rest(): Uint8Array {
    const out = this.bytes.slice(this.offset, this.end);
    this.offset = this.end;
    return out;
  }
  expectEnd(): void {
    if (this.offset !== this.end) {
      throw new TpmTransportError(
        'RESPONSE_MALFORMED',
        `${this.what}: ${this.end - this.offset} unexpected trailing bytes`,
        this.offset,
      );
    }
  }
}
