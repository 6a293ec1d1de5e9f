// Bounds-checked big-endian reading and growable writing (TPM 2.0 Part 1 §18), shared by the verifier
// structures and the client's command/response code. Only Uint8Array/DataView: runs in browsers.
import { Tpm2Error } from './errors.ts';

export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset: number;
  readonly end: number;
  /** What is being read, for messages (e.g. `TPMS_ATTEST`). */
  readonly what: string;

  constructor(bytes: Uint8Array, what: string, offset = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.end = end;
    this.what = what;
  }
  /** Throws the reader's error type; subclasses (the client's response reader) override it. */
  fail(message: string, offset: number = this.offset): never {
    throw new Tpm2Error('MALFORMED', `${this.what}: ${message} at byte ${offset}`, offset);
  }
  get remaining(): number {
    return this.end - this.offset;
  }
  private need(n: number, field: string): void {
    if (n > this.end - this.offset) this.fail(`${field} needs ${n} bytes, ${this.end - this.offset} left`);
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
  /** A TPM2B's contents, the size checked against `max` and against what is left. */
  tpm2b(field: string, max = 0xffff): Uint8Array {
    const at = this.offset;
    const size = this.u16(`${field} size`);
    if (size > max) this.fail(`${field} of ${size} bytes exceeds ${max}`, at);
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
    if (this.offset !== this.end) this.fail(`${this.end - this.offset} unexpected trailing bytes`);
  }
}

/** Builds TPM structures and commands; grows as needed. */
export class ByteWriter {
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
  u64(v: bigint): this {
    this.room(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
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

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (const byte of b) s += byte.toString(16).padStart(2, '0');
  return s;
}

/** Strict hex (even length, hex digits only); throws RangeError otherwise. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
    throw new RangeError('not an even-length hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
