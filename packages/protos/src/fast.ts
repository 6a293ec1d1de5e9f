// A faster path for the Kafka payload codec, equivalent to protobufjs's (fromObject + encode;
// checkWire + decode + toObject with longs/enums as String, defaults, oneofs) for the inputs it
// accepts, and refusing (returning BAIL) everything else so the caller runs the protobufjs path,
// which then gives its exact result or error.
// Encode: one pass, by an encoder compiled per type, checks that each value has the canonical type
// (string, Uint8Array, boolean, integer in range, decimal string or safe integer for longs, known
// enum name, plain object, array) and writes it straight into a scratch buffer: no message
// instances, no Long objects, no writer operation list.
// Decode: one bounds-checked walk, by a decoder compiled per type, builds the output objects
// directly (no checkWire pre-walk, no message instances, no Long objects, no toObject copy);
// anything checkWire would refuse, and anything protobufjs reads in its own way (varints of 6 to 9
// bytes where it reads 32 bits, 5-byte tags, "__proto__" map keys), bails.
import protobuf from 'protobufjs';

/** Returned by fastEncode/fastDecode when the caller must use the protobufjs path. */
export const BAIL: unique symbol = Symbol('bail');

const STRING = 1;
const BYTES = 2;
const BOOL = 3;
const UINT32 = 4;
const INT32 = 5;
const UINT64 = 6;
const INT64 = 7;
const ENUM = 8;
const MESSAGE = 9;
const MAP = 10; // map<string, string>

/** checkWire's nesting limit (wire.ts). */
const MAX_DEPTH = 32;

interface FastField {
  readonly name: string;
  readonly id: number;
  readonly kind: number;
  readonly repeated: boolean;
  /** Repeated and written packed (protobufjs: field.packed and a packable type). */
  readonly packed: boolean;
  /** Wire type of one element. */
  readonly wire: number;
  /** Tag of one (unpacked) element; of the packed run when packed. */
  readonly tag: number;
  readonly tagSize: number;
  /** Enum: name → number (own names only) and number → name. */
  readonly enumByName?: Map<string, number>;
  readonly enumById?: Map<number, string>;
  nested?: FastType;
  /** The oneof (virtual field name) this field is part of, proto3 optional included. */
  readonly oneof?: string;
}

interface Default {
  readonly name: string;
  /** 0: the value as is; 1: a new []; 2: a new {}; 3: a new empty Buffer. */
  readonly make: number;
  readonly value: unknown;
}

export interface FastType {
  readonly fullName: string;
  /** Fields by id, in id order (protobufjs writes and converts in id order). */
  readonly fields: FastField[];
  /** Field of each id (sparse). */
  readonly byId: (FastField | undefined)[];
  /** toObject's defaults, in its order: repeated, maps, then other fields not in a oneof. */
  readonly defaults: Default[];
  /** Oneof members in id order. */
  readonly oneofFields: FastField[];
  /** Bytes fields outside oneofs: their default (a new empty Buffer) is made only if still unset. */
  readonly bytesDefaults: string[];
  /** Writes the fields of a plain object of this type (compiled on first use, see compileEncoder). */
  encode: (obj: Record<string, unknown>, depth: number) => void;
  /** Decodes one message of this type ending at `end` (compiled on first use, see compileDecoder). */
  decode: (end: number, depth: number) => Record<string, unknown>;
  supported: boolean;
}

/** Placeholder of a bytes field until it is decoded or, at the end, defaulted. */
const UNSET_BYTES = 0.5;

const types = new WeakMap<protobuf.Type, FastType>();

function varintSize32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function kindOf(field: protobuf.Field): number {
  if (field instanceof protobuf.MapField)
    return field.keyType === 'string' && field.type === 'string' ? MAP : 0;
  if (field.resolvedType instanceof protobuf.Enum) return ENUM;
  if (field.resolvedType instanceof protobuf.Type) return field.delimited ? 0 : MESSAGE;
  switch (field.type) {
    case 'string':
      return STRING;
    case 'bytes':
      return BYTES;
    case 'bool':
      return BOOL;
    case 'uint32':
      return UINT32;
    case 'int32':
      return INT32;
    case 'uint64':
      return UINT64;
    case 'int64':
      return INT64;
    default:
      return 0; // floats, fixed, zigzag: not needed by the payloads, left to protobufjs
  }
}

/** The fast plan of `type` (built once); `supported` is false when protobufjs must do it all. */
export function fastTypeOf(type: protobuf.Type): FastType {
  return build(type);
}

function build(type: protobuf.Type): FastType {
  const known = types.get(type);
  if (known !== undefined) return known;
  const t: FastType = {
    fullName: type.fullName,
    fields: [],
    byId: [],
    defaults: [],
    oneofFields: [],
    bytesDefaults: [],
    encode: (obj, depth) => {
      t.encode = compileEncoder(t);
      t.encode(obj, depth);
    },
    decode: (end, depth) => {
      t.decode = compileDecoder(t);
      return t.decode(end, depth);
    },
    supported: true,
  };
  types.set(type, t); // before recursing: message types may refer to each other
  const sorted = type.fieldsArray.slice().sort((a, b) => a.id - b.id);
  const repeated: Default[] = [];
  const maps: Default[] = [];
  const normal: Default[] = [];
  for (const field of sorted) {
    field.resolve();
    const kind = kindOf(field);
    if (kind === 0 || field.required || field.id > 0xfffffff) {
      t.supported = false;
      continue;
    }
    const isMap = kind === MAP;
    const wire = kind === STRING || kind === BYTES || kind === MESSAGE || isMap ? 2 : 0;
    const packed =
      field.repeated &&
      field.packed &&
      (protobuf.types.packed as Record<string, number | undefined>)[
        field.resolvedType instanceof protobuf.Enum ? 'int32' : field.type
      ] !== undefined;
    const tag = field.id * 8 + (packed ? 2 : wire);
    let enumByName: Map<string, number> | undefined;
    let enumById: Map<number, string> | undefined;
    if (kind === ENUM) {
      const e = field.resolvedType as protobuf.Enum;
      enumByName = new Map(Object.keys(e.values).map((k) => [k, e.values[k]!]));
      enumById = new Map(Object.keys(e.valuesById).map((k) => [Number(k), e.valuesById[Number(k)]!]));
    }
    const f: FastField = {
      name: field.name,
      id: field.id,
      kind,
      repeated: field.repeated,
      packed,
      wire,
      tag,
      tagSize: varintSize32(tag),
      ...(enumByName ? { enumByName, enumById } : {}),
      ...(field.partOf ? { oneof: field.partOf.name } : {}),
    };
    t.fields.push(f);
    t.byId[field.id] = f;
    if (field.partOf) t.oneofFields.push(f);
    else if (field.repeated) repeated.push({ name: f.name, make: 1, value: undefined });
    else if (isMap) maps.push({ name: f.name, make: 2, value: undefined });
    else if (kind === BYTES) normal.push({ name: f.name, make: 3, value: undefined });
    else if (kind === ENUM)
      normal.push({ name: f.name, make: 0, value: enumById!.get(field.typeDefault as number) });
    else if (kind === UINT64 || kind === INT64)
      normal.push({ name: f.name, make: 0, value: String(field.typeDefault) });
    else if (kind === MESSAGE) normal.push({ name: f.name, make: 0, value: null });
    else normal.push({ name: f.name, make: 0, value: field.typeDefault });
    if (kind === MESSAGE) f.nested = build(field.resolvedType as protobuf.Type);
  }
  t.defaults.push(...repeated, ...maps, ...normal);
  for (const d of t.defaults) if (d.make === 3) t.bytesDefaults.push(d.name);
  return t;
}

/** Whether `t` and every type it contains can take the fast path. */
export function fastSupported(t: FastType, seen = new Set<FastType>()): boolean {
  if (!t.supported) return false;
  if (seen.has(t)) return true;
  seen.add(t);
  for (const f of t.fields) if (f.nested !== undefined && !fastSupported(f.nested, seen)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Encode: one pass writes into a scratch buffer, checking each value as protobufjs fromObject would
// take it; a sub-message or packed run gets a 1-byte length slot that is widened (its bytes moved
// up) when it turns out 128 bytes or longer.

class Bail {}
const bail = new Bail();

const SCRATCH_BYTES = 64 * 1024;
let out: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES);
let w = 0;
let encoding = false;

function ensure(n: number): void {
  if (w + n > out.length) {
    const next = Buffer.allocUnsafe(Math.max(out.length * 2, w + n + SCRATCH_BYTES));
    out.copy(next, 0, 0, w);
    out = next;
  }
}

function writeVarint(v: number): void {
  ensure(5);
  while (v > 127) {
    out[w++] = (v & 127) | 128;
    v >>>= 7;
  }
  out[w++] = v;
}

function writeVarint64(lo: number, hi: number): void {
  ensure(10);
  while (hi !== 0) {
    out[w++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    out[w++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  out[w++] = lo;
}

/** Reserves the 1-byte length slot of what is written next; returns its offset. */
function openLength(): number {
  ensure(1);
  return w++;
}

/** Writes the length of what follows the slot at `at`, widening the slot if needed. */
function closeLength(at: number): void {
  let n = w - at - 1;
  if (n < 128) {
    out[at] = n;
    return;
  }
  const size = varintSize32(n);
  ensure(size - 1);
  out.copyWithin(at + size, at + 1, w);
  w += size - 1;
  while (n > 127) {
    out[at++] = (n & 127) | 128;
    n >>>= 7;
  }
  out[at] = n;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Length-prefixed UTF-8; lone surrogates bail (protobufjs writes them its own way). */
function writeString(s: string): void {
  const len = s.length;
  if (len < 43) {
    // at most 126 bytes: a 1-byte length
    ensure(1 + 3 * len);
    const at = w++;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      out[w + i] = c;
    }
    if (i === len) {
      w += len;
      out[at] = len;
      return;
    }
    if (!s.isWellFormed()) throw bail;
    const n = out.write(s, at + 1, 'utf8');
    w = at + 1 + n;
    out[at] = n;
    return;
  }
  if (!s.isWellFormed()) throw bail;
  const n = Buffer.byteLength(s, 'utf8');
  writeVarint(n);
  ensure(n);
  w += out.write(s, w, n, 'utf8');
}

function writeBytes(b: Uint8Array): void {
  const n = b.length;
  writeVarint(n);
  ensure(n);
  if (n < 64) for (let j = 0; j < n; j++) out[w++] = b[j]!;
  else {
    out.set(b, w);
    w += n;
  }
}

const LONG_STRING = /^-?[0-9]{1,20}$/;
const TWO32 = 4294967296;

/** A 64-bit value as protobufjs's Long.fromValue takes the accepted inputs (strings wrap modulo 2^64). */
function writeLong(v: unknown, unsigned: boolean): void {
  let lo: number;
  let hi: number;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || (unsigned && v < 0)) throw bail;
    const mag = Math.abs(v);
    lo = mag % TWO32;
    hi = Math.floor(mag / TWO32);
    if (v < 0) {
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
  } else if (typeof v === 'string' && LONG_STRING.test(v)) {
    const neg = v.charCodeAt(0) === 45;
    if (v.length <= (neg ? 16 : 15)) {
      const mag = neg ? -Number(v) : Number(v);
      lo = mag % TWO32;
      hi = Math.floor(mag / TWO32);
      if (neg && mag !== 0) {
        lo = (~lo + 1) >>> 0;
        hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
      }
    } else {
      const b = BigInt.asUintN(64, BigInt(v));
      lo = Number(b & 0xffffffffn);
      hi = Number(b >> 32n);
    }
  } else throw bail;
  writeVarint64(lo, hi);
}

function writeInt32(v: number): void {
  if (v >= 0) writeVarint(v);
  else writeVarint64(v >>> 0, 0xffffffff);
}

/** What compiled encoders call: each checks the value as the fast path accepts it, then writes it. */
const E = {
  tag: writeVarint,
  str(v: unknown): void {
    if (typeof v !== 'string') throw bail;
    writeString(v);
  },
  bytes(v: unknown): void {
    if (!(v instanceof Uint8Array)) throw bail;
    writeBytes(v);
  },
  bool(v: unknown): void {
    if (typeof v !== 'boolean') throw bail;
    ensure(1);
    out[w++] = v ? 1 : 0;
  },
  u32(v: unknown): void {
    if (typeof v !== 'number' || v >>> 0 !== v) throw bail;
    writeVarint(v);
  },
  i32(v: unknown): void {
    if (typeof v !== 'number' || (v | 0) !== v) throw bail;
    writeInt32(v);
  },
  enm(names: Map<string, number>, v: unknown): void {
    let n: number | undefined;
    if (typeof v === 'string') n = names.get(v);
    else if (typeof v === 'number' && (v | 0) === v) n = v;
    if (n === undefined) throw bail;
    writeInt32(n);
  },
  u64: (v: unknown): void => writeLong(v, true),
  i64: (v: unknown): void => writeLong(v, false),
  msg(t: FastType, v: unknown, depth: number): void {
    if (!isPlainObject(v)) throw bail;
    const at = openLength();
    t.encode(v, depth);
    closeLength(at);
  },
  /** Entries of a map<string, string>, in Object.keys order as protobufjs writes them. */
  map(tag: number, v: unknown): void {
    if (!isPlainObject(v)) throw bail;
    for (const key of Object.keys(v)) {
      const value = v[key];
      if (key === '__proto__' || typeof value !== 'string') throw bail;
      writeVarint(tag);
      const at = openLength();
      ensure(1);
      out[w++] = 10;
      writeString(key);
      ensure(1);
      out[w++] = 18;
      writeString(value);
      closeLength(at);
    }
  },
  list(v: unknown): unknown[] {
    if (!Array.isArray(v)) throw bail;
    return v;
  },
  open: openLength,
  close: closeLength,
  bail(): never {
    throw bail;
  },
};

const WRITE: Record<number, string> = {
  [STRING]: 'e.str',
  [BYTES]: 'e.bytes',
  [BOOL]: 'e.bool',
  [UINT32]: 'e.u32',
  [INT32]: 'e.i32',
  [UINT64]: 'e.u64',
  [INT64]: 'e.i64',
};

/**
 * The encoder of `t` compiled once: what protobufjs fromObject + encode write, in id order, a field
 * set to null or undefined skipped (any value set, default or not, is written, as protobufjs does).
 */
function compileEncoder(t: FastType): (obj: Record<string, unknown>, depth: number) => void {
  const q = JSON.stringify;
  const lines: string[] = ['if (depth > 100) e.bail();', 'let v;'];
  t.fields.forEach((f, i) => {
    const write = (x: string) =>
      f.kind === MESSAGE
        ? `e.msg(F[${i}].nested, ${x}, depth + 1);`
        : f.kind === ENUM
          ? `e.enm(F[${i}].enumByName, ${x});`
          : `${WRITE[f.kind] ?? 'e.bail'}(${x});`;
    lines.push(`v = o[${q(f.name)}];`, 'if (v !== undefined && v !== null) {');
    if (f.kind === MAP) lines.push(`e.map(${f.tag}, v);`);
    else if (f.repeated && f.packed)
      lines.push(
        'v = e.list(v);',
        `if (v.length !== 0) { e.tag(${f.tag}); const at = e.open(); for (let i = 0; i < v.length; i++) ${write('v[i]')} e.close(at); }`,
      );
    else if (f.repeated)
      lines.push(
        'v = e.list(v);',
        `for (let i = 0; i < v.length; i++) { e.tag(${f.tag}); ${write('v[i]')} }`,
      );
    else lines.push(`e.tag(${f.tag});`, write('v'));
    lines.push('}');
  });
  const source = ['return function encode(o, depth) {', ...lines, '};'].join('\n');
  return new Function('e', 'F', source)(E, t.fields);
}

/** The encoding of `message`, byte for byte protobufjs's, or BAIL. */
export function fastEncode(t: FastType, message: object): Buffer | typeof BAIL {
  if (encoding || !isPlainObject(message)) return BAIL; // re-entered from a getter: let protobufjs do it
  encoding = true;
  w = 0;
  try {
    t.encode(message, 0);
    if (w > SCRATCH_BYTES) {
      // A large record (an Evidence with its event log): hand the scratch buffer over instead of copying.
      const result = out.subarray(0, w);
      out = Buffer.allocUnsafe(SCRATCH_BYTES);
      return result;
    }
    const result = Buffer.allocUnsafe(w);
    out.copy(result, 0, 0, w);
    return result;
  } catch {
    if (out.length > SCRATCH_BYTES) out = Buffer.allocUnsafe(SCRATCH_BYTES);
    return BAIL;
  } finally {
    encoding = false;
  }
}
// ---------------------------------------------------------------------------------------------
// Decode.

/** Node's Buffer#utf8Slice (what protobufjs's BufferReader#string calls): no argument parsing. */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

/** Empty bytes: a new zero-length Buffer each time, as protobufjs gives (Buffer.alloc(0) costs ~10x more). */
const EMPTY = Buffer.alloc(0);
const emptyBytes = (): Buffer => EMPTY.subarray(0, 0);

let buf: Buffer = EMPTY;
let pos = 0;

/** A tag or a uint32/int32/bool/enum varint as protobufjs's Reader.uint32 reads it (5 or 10 bytes at most). */
function varint32(end: number): number {
  let b = buf[pos]!;
  if (b < 0x80 && pos < end) {
    pos++;
    return b;
  }
  let v = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) throw bail;
    b = buf[pos++]!;
    v |= (b & 127) << shift;
    if (b < 0x80) return v >>> 0;
  }
  if (pos >= end) throw bail;
  b = buf[pos++]!;
  v = (v | ((b & 15) << 28)) >>> 0;
  if (b < 0x80) return v;
  // protobufjs then skips 5 bytes without looking at them, checkWire reads on to the last byte: the
  // two agree only when the varint is exactly 10 bytes long (e.g. a negative int32).
  if (end - pos < 5) throw bail;
  for (let i = 0; i < 4; i++) if (buf[pos++]! < 0x80) throw bail;
  if (buf[pos++]! >= 0x80) throw bail;
  return v;
}

/** A length: the full value of at most 5 bytes, within the bytes left. */
function length(end: number): number {
  let len = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw bail;
    const b = buf[pos++]!;
    len += (b & 127) * scale;
    scale *= 128;
    if (b < 0x80) {
      if (len > end - pos) throw bail;
      return len;
    }
  }
  throw bail;
}

let lo = 0;
let hi = 0;

/** A 64-bit varint (at most 10 bytes) into lo/hi, modulo 2^64 as protobufjs reads it. */
function varint64(end: number): void {
  lo = 0;
  hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw bail;
    const b = buf[pos++]!;
    const bits = b & 127;
    const shift = i * 7;
    if (shift < 28) lo |= bits << shift;
    else if (shift === 28) {
      lo |= bits << 28;
      hi |= bits >>> 4;
    } else hi |= bits << (shift - 32);
    if (b < 0x80) {
      lo >>>= 0;
      hi >>>= 0;
      return;
    }
  }
  throw bail;
}

function longString(unsigned: boolean): string {
  if (hi === 0) return String(lo);
  if (hi < 0x200000) return String(hi * TWO32 + lo);
  const b = (BigInt(hi) << 32n) | BigInt(lo);
  return (unsigned ? b : BigInt.asIntN(64, b)).toString();
}

function skip(wire: number, end: number): void {
  switch (wire) {
    case 0:
      for (let i = 0; i < 10; i++) {
        if (pos >= end) throw bail;
        if (buf[pos++]! < 0x80) return;
      }
      throw bail;
    case 1:
      if (end - pos < 8) throw bail;
      pos += 8;
      return;
    case 2: {
      const n = length(end); // not `pos += length(end)`: that adds to the position before the length
      pos += n;
      return;
    }
    case 5:
      if (end - pos < 4) throw bail;
      pos += 4;
      return;
    default:
      throw bail;
  }
}

function scalar(f: FastField, end: number): unknown {
  switch (f.kind) {
    case STRING: {
      const n = length(end);
      const s = (buf as Utf8Sliceable).utf8Slice(pos, pos + n);
      pos += n;
      return s;
    }
    case BYTES: {
      const n = length(end);
      if (n === 0) return emptyBytes();
      const b = buf.subarray(pos, pos + n);
      pos += n;
      return b;
    }
    case BOOL:
      return varint32(end) !== 0;
    case UINT32:
      return varint32(end);
    case INT32:
      return varint32(end) | 0;
    case ENUM: {
      const n = varint32(end) | 0;
      return f.enumById!.get(n) ?? n;
    }
    case UINT64:
      varint64(end);
      return longString(true);
    case INT64:
      varint64(end);
      return longString(false);
    default:
      throw bail;
  }
}

/** What compiled decoders call: the reads above, on the module's buf/pos. */
const H = {
  more: (end: number): boolean => pos < end,
  tag(end: number): number {
    const start = pos;
    const tag = varint32(end);
    if (pos - start > 4) throw bail; // a 5-byte tag: checkWire and protobufjs may read different ids
    return tag;
  },
  str(end: number): string {
    const n = length(end);
    const s = (buf as Utf8Sliceable).utf8Slice(pos, pos + n);
    pos += n;
    return s;
  },
  bytes(end: number): Buffer {
    const n = length(end);
    if (n === 0) return emptyBytes();
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  },
  u32: (end: number): number => varint32(end),
  i32: (end: number): number => varint32(end) | 0,
  bool: (end: number): boolean => varint32(end) !== 0,
  enm(names: Map<number, string>, end: number): string | number {
    const n = varint32(end) | 0;
    return names.get(n) ?? n;
  },
  u64(end: number): string {
    varint64(end);
    return longString(true);
  },
  i64(end: number): string {
    varint64(end);
    return longString(false);
  },
  sub(t: FastType, end: number, depth: number): Record<string, unknown> {
    const n = length(end);
    return t.decode(pos + n, depth);
  },
  map(map: Record<string, string>, end: number): void {
    const n = length(end);
    mapEntry(map, pos + n);
  },
  /** A packed run of a repeated scalar (accepted whether the field is declared packed or not). */
  packed(f: FastField, list: unknown[], end: number): void {
    const n = length(end);
    const runEnd = pos + n;
    while (pos < runEnd) list.push(scalar(f, runEnd));
  },
  /** A tag no case took: an unknown field is skipped; a known one with another wire type bails. */
  unknown(t: FastType, tag: number, end: number): void {
    const id = tag >>> 3;
    if (id === 0 || t.byId[id] !== undefined) throw bail;
    skip(tag & 7, end);
  },
  done(end: number): void {
    if (pos !== end) throw bail;
  },
  empty: emptyBytes,
  bail(): never {
    throw bail;
  },
};

const READ: Record<number, string> = {
  [STRING]: 'h.str(end)',
  [BYTES]: 'h.bytes(end)',
  [BOOL]: 'h.bool(end)',
  [UINT32]: 'h.u32(end)',
  [INT32]: 'h.i32(end)',
  [UINT64]: 'h.u64(end)',
  [INT64]: 'h.i64(end)',
};

/**
 * The decoder of `t` as JavaScript source compiled once (as protobufjs compiles its own): a switch
 * on the tag, an object literal of toObject's defaults in toObject's key order, named property
 * stores. Field names and values come from the loaded .proto files and are quoted with JSON.stringify.
 */
function compileDecoder(t: FastType): (end: number, depth: number) => Record<string, unknown> {
  const q = JSON.stringify;
  const literal = t.defaults
    .map((d) => {
      const value =
        d.make === 1 ? '[]' : d.make === 2 ? '{}' : d.make === 3 ? String(UNSET_BYTES) : q(d.value);
      return `${q(d.name)}: ${value}`;
    })
    .join(', ');
  const lines: string[] = [];
  const oneofVars: string[] = [];
  t.fields.forEach((f, i) => {
    const prop = `o[${q(f.name)}]`;
    let read: string;
    if (f.kind === MESSAGE) read = `h.sub(F[${i}].nested, end, depth + 1)`;
    else if (f.kind === ENUM) read = `h.enm(F[${i}].enumById, end)`;
    else read = READ[f.kind] ?? 'h.bail()';
    const elementTag = f.id * 8 + f.wire;
    if (f.kind === MAP) lines.push(`case ${elementTag}: h.map(${prop}, end); break;`);
    else if (f.repeated) {
      lines.push(`case ${elementTag}: ${prop}.push(${read}); break;`);
      if (f.wire !== 2) lines.push(`case ${f.id * 8 + 2}: h.packed(F[${i}], ${prop}, end); break;`);
    } else if (f.oneof !== undefined) {
      oneofVars.push(`v${i}`);
      lines.push(`case ${elementTag}: v${i} = ${read}; break;`);
    } else lines.push(`case ${elementTag}: ${prop} = ${read}; break;`);
  });
  const after: string[] = [];
  for (const name of t.bytesDefaults)
    after.push(`if (o[${q(name)}] === ${UNSET_BYTES}) o[${q(name)}] = h.empty();`);
  // toObject sets oneof members (and their virtual field) in id order, after the defaults.
  t.fields.forEach((f, i) => {
    if (f.oneof !== undefined)
      after.push(`if (v${i} !== undefined) { o[${q(f.name)}] = v${i}; o[${q(f.oneof)}] = ${q(f.name)}; }`);
  });
  const source = [
    'return function decode(end, depth) {',
    `if (depth > ${MAX_DEPTH}) h.bail();`,
    `const o = { ${literal} };`,
    ...oneofVars.map((v) => `let ${v};`),
    'while (h.more(end)) {',
    'const tag = h.tag(end);',
    'switch (tag) {',
    ...lines,
    'default: h.unknown(T, tag, end);',
    '}',
    '}',
    'h.done(end);',
    ...after,
    'return o;',
    '};',
  ].join('\n');
  return new Function('h', 'T', 'F', source)(H, t, t.fields);
}

function mapEntry(map: Record<string, string>, end: number): void {
  let key = '';
  let value = '';
  while (pos < end) {
    const start = pos;
    const tag = varint32(end);
    if (pos - start > 4) throw bail;
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 1 || id === 2) {
      if (wire !== 2) throw bail;
      const n = length(end);
      const s = (buf as Utf8Sliceable).utf8Slice(pos, pos + n);
      pos += n;
      if (id === 1) key = s;
      else value = s;
    } else {
      if (id === 0) throw bail;
      skip(wire, end);
    }
  }
  if (pos !== end) throw bail;
  if (key === '__proto__') throw bail;
  map[key] = value;
}

/** The decoded object (deep-equal to protobufjs decode + toObject after checkWire), or BAIL. */
export function fastDecode(t: FastType, bytes: Buffer): Record<string, unknown> | typeof BAIL {
  buf = bytes;
  pos = 0;
  try {
    return t.decode(bytes.length, 0);
  } catch {
    return BAIL;
  } finally {
    buf = EMPTY;
  }
}
