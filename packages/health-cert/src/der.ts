// Strict DER (ITU-T X.690 §10) for the subset X.509 certificates and CRLs use.
// The decoder treats input as hostile: every length is checked against the bytes left before
// slicing, sizes, nesting and element counts are capped, and every failure is a DerError with
// a stable code and the byte offset.
import { DerError } from './errors.ts';

export const TAG_CLASS_UNIVERSAL = 0;
export const TAG_CLASS_APPLICATION = 1;
export const TAG_CLASS_CONTEXT = 2;
export const TAG_CLASS_PRIVATE = 3;

export const TAG_BOOLEAN = 1;
export const TAG_INTEGER = 2;
export const TAG_BIT_STRING = 3;
export const TAG_OCTET_STRING = 4;
export const TAG_NULL = 5;
export const TAG_OID = 6;
export const TAG_ENUMERATED = 10;
export const TAG_UTF8_STRING = 12;
export const TAG_SEQUENCE = 16;
export const TAG_SET = 17;
export const TAG_PRINTABLE_STRING = 19;
export const TAG_IA5_STRING = 22;
export const TAG_UTC_TIME = 23;
export const TAG_GENERALIZED_TIME = 24;

/** One decoded TLV. `content` and `encoded` are views into the decoded input (not copies). */
export interface DerElement {
  readonly tagClass: number;
  readonly constructed: boolean;
  readonly tagNumber: number;
  /** Offset of the identifier octet, counted from the start of the outermost input (plus baseOffset). */
  readonly offset: number;
  readonly headerLength: number;
  readonly content: Uint8Array;
  /** The whole TLV (identifier, length and content). */
  readonly encoded: Uint8Array;
  /** Parsed children of a constructed element; empty for a primitive one. */
  readonly children: readonly DerElement[];
}

export interface DerLimits {
  /** Largest input accepted, in bytes (default 1 MiB). */
  readonly maxInputBytes?: number;
  /** Deepest nesting of constructed elements (default 32). */
  readonly maxDepth?: number;
  /** Most elements in one input (default 20 000). */
  readonly maxElements?: number;
  /** Added to every reported offset, for inputs that are a slice of a larger structure. */
  readonly baseOffset?: number;
}

const DEFAULT_MAX_INPUT = 1 << 20;
const DEFAULT_MAX_DEPTH = 32;
const DEFAULT_MAX_ELEMENTS = 20_000;
const EMPTY: readonly DerElement[] = Object.freeze([]);

interface DecodeState {
  readonly input: Uint8Array;
  readonly base: number;
  readonly maxDepth: number;
  readonly maxElements: number;
  count: number;
}

/** Decodes exactly one DER element spanning the whole input. */
export function decodeDer(input: Uint8Array, limits: DerLimits = {}): DerElement {
  const base = limits.baseOffset ?? 0;
  const maxInput = limits.maxInputBytes ?? DEFAULT_MAX_INPUT;
  if (!(input instanceof Uint8Array)) {
    throw new DerError('DER_TRUNCATED', 'input is not a byte array', base);
  }
  if (input.length > maxInput) {
    throw new DerError('DER_INPUT_TOO_LARGE', `input of ${input.length} bytes exceeds ${maxInput}`, base);
  }
  const state: DecodeState = {
    input,
    base,
    maxDepth: limits.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxElements: limits.maxElements ?? DEFAULT_MAX_ELEMENTS,
    count: 0,
  };
  const element = decodeElement(state, 0, input.length, 0);
  const end = element.offset - base + element.encoded.length;
  if (end !== input.length) {
    throw new DerError('DER_TRAILING', `${input.length - end} bytes after the element`, base + end);
  }
  return element;
}

function decodeElement(state: DecodeState, start: number, end: number, depth: number): DerElement {
  const { input, base } = state;
  state.count++;
  if (state.count > state.maxElements) {
    throw new DerError('DER_TOO_MANY_ELEMENTS', `more than ${state.maxElements} elements`, base + start);
  }
  if (start >= end) throw new DerError('DER_TRUNCATED', 'missing identifier octet', base + start);
  const identifier = input[start]!;
  const tagClass = identifier >> 6;
  const constructed = (identifier & 0x20) !== 0;
  const tagNumber = identifier & 0x1f;
  if (tagNumber === 0x1f) {
    throw new DerError('DER_TAG_HIGH_FORM', 'tag numbers above 30 are not supported', base + start);
  }
  let pos = start + 1;
  if (pos >= end) throw new DerError('DER_TRUNCATED', 'missing length octet', base + pos);
  const first = input[pos]!;
  pos++;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else if (first === 0x80) {
    throw new DerError('DER_LENGTH_INDEFINITE', 'indefinite length is not DER', base + pos - 1);
  } else {
    const count = first & 0x7f;
    if (count > 4) {
      throw new DerError('DER_LENGTH_TOO_LARGE', `length of ${count} octets is too large`, base + pos - 1);
    }
    if (count > end - pos) throw new DerError('DER_TRUNCATED', 'length octets cut short', base + pos);
    if (input[pos] === 0) {
      throw new DerError('DER_LENGTH_NON_MINIMAL', 'length has a leading zero octet', base + pos - 1);
    }
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[pos + i]!;
    if (length < 0x80) {
      throw new DerError('DER_LENGTH_NON_MINIMAL', 'short length in long form', base + pos - 1);
    }
    pos += count;
  }
  if (length > end - pos) {
    throw new DerError(
      'DER_TRUNCATED',
      `declared length ${length} exceeds the ${end - pos} bytes left`,
      base + start,
    );
  }
  const headerLength = pos - start;
  const contentEnd = pos + length;
  if (tagClass === TAG_CLASS_UNIVERSAL) {
    if (tagNumber === 0) throw new DerError('DER_TAG_INVALID', 'universal tag 0 is reserved', base + start);
    const mustConstruct = tagNumber === TAG_SEQUENCE || tagNumber === TAG_SET;
    if (mustConstruct && !constructed) {
      throw new DerError(
        'DER_CONSTRUCTED_EXPECTED',
        `universal ${tagNumber} must be constructed`,
        base + start,
      );
    }
    if (!mustConstruct && constructed) {
      // DER forbids the constructed form of strings; other constructed universal types are not used here.
      throw new DerError('DER_PRIMITIVE_EXPECTED', `universal ${tagNumber} must be primitive`, base + start);
    }
  }
  let children: readonly DerElement[] = EMPTY;
  if (constructed) {
    if (depth >= state.maxDepth) {
      throw new DerError('DER_TOO_DEEP', `nesting deeper than ${state.maxDepth}`, base + start);
    }
    const list: DerElement[] = [];
    let p = pos;
    while (p < contentEnd) {
      const child = decodeElement(state, p, contentEnd, depth + 1);
      list.push(child);
      p = child.offset - base + child.encoded.length;
    }
    if (tagClass === TAG_CLASS_UNIVERSAL && tagNumber === TAG_SET) {
      // X.690 §11.6: the components of a SET OF are in ascending order of their encodings.
      for (let i = 1; i < list.length; i++) {
        if (compareBytes(list[i - 1]!.encoded, list[i]!.encoded) > 0) {
          throw new DerError('DER_SET_ORDER', 'SET OF components are not sorted', list[i]!.offset);
        }
      }
    }
    children = list;
  }
  return new DecodedElement(input, identifier, base + start, start, headerLength, length, children);
}

// Views are made on demand: a typed-array view costs far more memory than the element itself,
// and a large CRL has hundreds of thousands of elements.
class DecodedElement implements DerElement {
  readonly #input: Uint8Array;
  readonly #start: number;
  readonly #length: number;
  readonly #identifier: number;
  readonly offset: number;
  readonly headerLength: number;
  readonly children: readonly DerElement[];
  constructor(
    input: Uint8Array,
    identifier: number,
    offset: number,
    start: number,
    headerLength: number,
    length: number,
    children: readonly DerElement[],
  ) {
    this.#input = input;
    this.#identifier = identifier;
    this.#start = start;
    this.#length = length;
    this.offset = offset;
    this.headerLength = headerLength;
    this.children = children;
  }
  get tagClass(): number {
    return this.#identifier >> 6;
  }
  get constructed(): boolean {
    return (this.#identifier & 0x20) !== 0;
  }
  get tagNumber(): number {
    return this.#identifier & 0x1f;
  }
  get content(): Uint8Array {
    const from = this.#start + this.headerLength;
    return this.#input.subarray(from, from + this.#length);
  }
  get encoded(): Uint8Array {
    return this.#input.subarray(this.#start, this.#start + this.headerLength + this.#length);
  }
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Typed readers. Each checks the tag, then the content rules DER adds for that type.

function tagName(tagClass: number, tagNumber: number): string {
  const cls = ['universal', 'application', 'context', 'private'][tagClass] ?? '?';
  return `${cls} ${tagNumber}`;
}

/** Throws unless `element` has the given class and number (and constructed form, when given). */
export function expectTag(
  element: DerElement | undefined,
  tagClass: number,
  tagNumber: number,
  what: string,
  fallbackOffset = 0,
): DerElement {
  if (element === undefined) {
    throw new DerError('DER_UNEXPECTED_TAG', `${what} is missing`, fallbackOffset);
  }
  if (element.tagClass !== tagClass || element.tagNumber !== tagNumber) {
    throw new DerError(
      'DER_UNEXPECTED_TAG',
      `${what}: expected ${tagName(tagClass, tagNumber)}, found ${tagName(element.tagClass, element.tagNumber)}`,
      element.offset,
    );
  }
  return element;
}

export function expectSequence(
  element: DerElement | undefined,
  what: string,
  fallbackOffset = 0,
): DerElement {
  return expectTag(element, TAG_CLASS_UNIVERSAL, TAG_SEQUENCE, what, fallbackOffset);
}

/** Largest INTEGER content read as a number, in octets: enough for any X.509 serial or version. */
const MAX_INTEGER_OCTETS = 64;

/** INTEGER content (two's complement, minimal) as a bigint. */
export function decodeIntegerContent(content: Uint8Array, offset: number): bigint {
  if (content.length === 0) throw new DerError('DER_INTEGER_INVALID', 'empty INTEGER', offset);
  if (content.length > MAX_INTEGER_OCTETS) {
    throw new DerError('DER_INTEGER_INVALID', `INTEGER of ${content.length} octets is too long`, offset);
  }
  if (content.length > 1) {
    const a = content[0]!;
    const b = content[1]!;
    if ((a === 0x00 && (b & 0x80) === 0) || (a === 0xff && (b & 0x80) !== 0)) {
      throw new DerError('DER_INTEGER_INVALID', 'INTEGER is not minimally encoded', offset);
    }
  }
  let value = 0n;
  for (const byte of content) value = (value << 8n) | BigInt(byte);
  if ((content[0]! & 0x80) !== 0) value -= 1n << BigInt(content.length * 8);
  return value;
}

export function readInteger(
  element: DerElement | undefined,
  what = 'INTEGER',
  tagNumber = TAG_INTEGER,
): bigint {
  const el = expectTag(element, TAG_CLASS_UNIVERSAL, tagNumber, what);
  return decodeIntegerContent(el.content, el.offset + el.headerLength);
}

/** An INTEGER that must fit a JavaScript safe integer. */
export function readSmallInteger(element: DerElement | undefined, what = 'INTEGER'): number {
  const value = readInteger(element, what);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DerError('DER_INTEGER_INVALID', `${what} is out of range`, element!.offset);
  }
  return Number(value);
}

export function readBoolean(element: DerElement | undefined, what = 'BOOLEAN'): boolean {
  const el = expectTag(element, TAG_CLASS_UNIVERSAL, TAG_BOOLEAN, what);
  const at = el.offset + el.headerLength;
  if (el.content.length !== 1) throw new DerError('DER_BOOLEAN_INVALID', 'BOOLEAN must be one octet', at);
  const v = el.content[0];
  if (v === 0x00) return false;
  if (v === 0xff) return true;
  throw new DerError('DER_BOOLEAN_INVALID', 'BOOLEAN must be 0x00 or 0xFF in DER', at);
}

export function readNull(element: DerElement | undefined, what = 'NULL'): null {
  const el = expectTag(element, TAG_CLASS_UNIVERSAL, TAG_NULL, what);
  if (el.content.length !== 0) throw new DerError('DER_NULL_INVALID', 'NULL has content', el.offset);
  return null;
}

export interface BitString {
  readonly bytes: Uint8Array;
  readonly unusedBits: number;
}

export function decodeBitStringContent(content: Uint8Array, offset: number): BitString {
  if (content.length === 0) throw new DerError('DER_BIT_STRING_INVALID', 'empty BIT STRING', offset);
  const unusedBits = content[0]!;
  if (unusedBits > 7) throw new DerError('DER_BIT_STRING_INVALID', 'more than 7 unused bits', offset);
  if (content.length === 1 && unusedBits !== 0) {
    throw new DerError('DER_BIT_STRING_INVALID', 'unused bits in an empty BIT STRING', offset);
  }
  const bytes = content.subarray(1);
  if (unusedBits > 0 && (bytes[bytes.length - 1]! & ((1 << unusedBits) - 1)) !== 0) {
    throw new DerError('DER_BIT_STRING_INVALID', 'unused bits are not zero', offset + content.length - 1);
  }
  return { bytes, unusedBits };
}

export function readBitString(element: DerElement | undefined, what = 'BIT STRING'): BitString {
  const el = expectTag(element, TAG_CLASS_UNIVERSAL, TAG_BIT_STRING, what);
  return decodeBitStringContent(el.content, el.offset + el.headerLength);
}

export function readOctetString(element: DerElement | undefined, what = 'OCTET STRING'): Uint8Array {
  return expectTag(element, TAG_CLASS_UNIVERSAL, TAG_OCTET_STRING, what).content;
}

const MAX_OID_OCTETS = 128;

/** OBJECT IDENTIFIER content as dotted decimal (arcs of any size, e.g. 2.25.<uuid>). */
export function decodeOidContent(content: Uint8Array, offset: number): string {
  if (content.length === 0) throw new DerError('DER_OID_INVALID', 'empty OBJECT IDENTIFIER', offset);
  if (content.length > MAX_OID_OCTETS) {
    throw new DerError(
      'DER_OID_INVALID',
      `OBJECT IDENTIFIER of ${content.length} octets is too long`,
      offset,
    );
  }
  const arcs: bigint[] = [];
  let value = 0n;
  let startOfArc = true;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i]!;
    if (startOfArc && byte === 0x80) {
      throw new DerError('DER_OID_INVALID', 'sub-identifier has a leading 0x80', offset + i);
    }
    value = (value << 7n) | BigInt(byte & 0x7f);
    startOfArc = (byte & 0x80) === 0;
    if (startOfArc) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (!startOfArc) {
    throw new DerError('DER_OID_INVALID', 'last sub-identifier is cut short', offset + content.length - 1);
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readOid(element: DerElement | undefined, what = 'OBJECT IDENTIFIER'): string {
  const el = expectTag(element, TAG_CLASS_UNIVERSAL, TAG_OID, what);
  return decodeOidContent(el.content, el.offset + el.headerLength);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function decodeStringContent(tagNumber: number, content: Uint8Array, offset: number): string {
  switch (tagNumber) {
    case TAG_UTF8_STRING:
      try {
        return utf8.decode(content);
      } catch (cause) {
        throw new DerError('DER_STRING_INVALID', 'UTF8String is not valid UTF-8', offset, { cause });
      }
    case TAG_PRINTABLE_STRING:
    case TAG_IA5_STRING: {
      let s = '';
      for (let i = 0; i < content.length; i++) {
        const c = content[i]!;
        if (c > 0x7f) throw new DerError('DER_STRING_INVALID', 'non-ASCII octet in string', offset + i);
        s += String.fromCharCode(c);
      }
      if (tagNumber === TAG_PRINTABLE_STRING && !PRINTABLE.test(s)) {
        throw new DerError('DER_STRING_INVALID', 'character outside PrintableString', offset);
      }
      return s;
    }
    default:
      throw new DerError('DER_UNEXPECTED_TAG', `universal ${tagNumber} is not a supported string`, offset);
  }
}

/** A UTF8String, PrintableString or IA5String (whichever `allowed` lists). */
export function readString(
  element: DerElement | undefined,
  what: string,
  allowed: readonly number[] = [TAG_UTF8_STRING, TAG_PRINTABLE_STRING],
): string {
  if (element === undefined) throw new DerError('DER_UNEXPECTED_TAG', `${what} is missing`, 0);
  if (element.tagClass !== TAG_CLASS_UNIVERSAL || !allowed.includes(element.tagNumber)) {
    throw new DerError('DER_UNEXPECTED_TAG', `${what}: not an allowed string type`, element.offset);
  }
  return decodeStringContent(element.tagNumber, element.content, element.offset + element.headerLength);
}

function digits(content: Uint8Array, from: number, count: number, offset: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const c = content[i]!;
    if (c < 0x30 || c > 0x39) throw new DerError('DER_TIME_INVALID', 'non-digit in time', offset + i);
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/**
 * UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ` content — the only forms DER with
 * RFC 5280 §4.1.2.5 allows (seconds present, Zulu, no fractions).
 */
export function decodeTimeContent(tagNumber: number, content: Uint8Array, offset: number): Date {
  const generalized = tagNumber === TAG_GENERALIZED_TIME;
  const expected = generalized ? 15 : 13;
  if (content.length !== expected || content[expected - 1] !== 0x5a) {
    throw new DerError('DER_TIME_INVALID', `time must be ${expected - 1} digits and Z`, offset);
  }
  let year: number;
  let p: number;
  if (generalized) {
    year = digits(content, 0, 4, offset);
    p = 4;
  } else {
    const yy = digits(content, 0, 2, offset);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p = 2;
  }
  const month = digits(content, p, 2, offset);
  const day = digits(content, p + 2, 2, offset);
  const hour = digits(content, p + 4, 2, offset);
  const minute = digits(content, p + 6, 2, offset);
  const second = digits(content, p + 8, 2, offset);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (
    month < 1 ||
    month > 12 ||
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new DerError('DER_TIME_INVALID', 'time is not a calendar date', offset);
  }
  return date;
}

export function readTime(element: DerElement | undefined, what = 'Time'): Date {
  if (element === undefined) throw new DerError('DER_UNEXPECTED_TAG', `${what} is missing`, 0);
  if (
    element.tagClass !== TAG_CLASS_UNIVERSAL ||
    (element.tagNumber !== TAG_UTC_TIME && element.tagNumber !== TAG_GENERALIZED_TIME)
  ) {
    throw new DerError('DER_UNEXPECTED_TAG', `${what}: expected UTCTime or GeneralizedTime`, element.offset);
  }
  return decodeTimeContent(element.tagNumber, element.content, element.offset + element.headerLength);
}

// ---------------------------------------------------------------------------------------------
// Encoders. Each returns the complete TLV.

function encoderError(message: string): DerError {
  return new DerError('DER_ENCODE_INVALID', message, 0);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function encodeTlv(
  tagClass: number,
  constructed: boolean,
  tagNumber: number,
  content: Uint8Array,
): Uint8Array {
  if (!Number.isInteger(tagClass) || tagClass < 0 || tagClass > 3)
    throw encoderError('tag class out of range');
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30)
    throw encoderError('tag number out of range');
  const length = content.length;
  if (length > 0xffffffff) throw encoderError('content too long');
  // Short form below 128, else 0x80 | n followed by the n length octets, big-endian.
  let lengthOctets = 0;
  if (length >= 0x80) for (let n = length; n > 0; n = Math.floor(n / 256)) lengthOctets++;
  const headerLength = 2 + lengthOctets;
  const out = new Uint8Array(headerLength + length);
  out[0] = (tagClass << 6) | (constructed ? 0x20 : 0) | tagNumber;
  if (length < 0x80) {
    out[1] = length;
  } else {
    out[1] = 0x80 | lengthOctets;
    for (let i = lengthOctets, n = length; i > 0; i--, n = Math.floor(n / 256)) out[1 + i] = n % 256;
  }
  out.set(content, headerLength);
  return out;
}

/** Re-encodes a decoded element (or a tree shaped like one) from its children. */
export function encodeElement(element: {
  readonly tagClass: number;
  readonly constructed: boolean;
  readonly tagNumber: number;
  readonly content: Uint8Array;
  readonly children: readonly DerElement[];
}): Uint8Array {
  const content = element.constructed ? concatBytes(element.children.map(encodeElement)) : element.content;
  return encodeTlv(element.tagClass, element.constructed, element.tagNumber, content);
}

export function encodeIntegerContent(value: bigint): Uint8Array {
  const octets: number[] = [];
  let v = value;
  // Emit two's complement octets until the remaining value is pure sign extension.
  for (;;) {
    const byte = Number(v & 0xffn);
    octets.unshift(byte);
    v >>= 8n;
    if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
  }
  return Uint8Array.from(octets);
}

export function encodeInteger(value: bigint | number, tagNumber = TAG_INTEGER): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw encoderError('INTEGER is not a safe integer');
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, tagNumber, encodeIntegerContent(BigInt(value)));
}

export function encodeEnumerated(value: number): Uint8Array {
  return encodeInteger(value, TAG_ENUMERATED);
}

export function encodeBoolean(value: boolean): Uint8Array {
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

export function encodeNull(): Uint8Array {
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_NULL, new Uint8Array(0));
}

export function encodeBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7)
    throw encoderError('unused bits out of range');
  if (bytes.length === 0 && unusedBits !== 0) throw encoderError('unused bits in an empty BIT STRING');
  if (unusedBits > 0 && (bytes[bytes.length - 1]! & ((1 << unusedBits) - 1)) !== 0) {
    throw encoderError('unused bits must be zero');
  }
  return encodeTlv(
    TAG_CLASS_UNIVERSAL,
    false,
    TAG_BIT_STRING,
    concatBytes([Uint8Array.of(unusedBits), bytes]),
  );
}

/**
 * A named-bit-list BIT STRING (X.690 §11.2.2: trailing zero bits dropped) from bit positions,
 * bit 0 being the most significant bit of the first octet — as keyUsage numbers them.
 */
export function encodeNamedBits(bits: readonly number[]): Uint8Array {
  const highest = bits.length === 0 ? -1 : Math.max(...bits);
  const bytes = new Uint8Array(highest < 0 ? 0 : (highest >> 3) + 1);
  for (const bit of bits) {
    if (!Number.isInteger(bit) || bit < 0 || bit > 255) throw encoderError('named bit out of range');
    bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  const unused = highest < 0 ? 0 : 7 - (highest & 7);
  return encodeBitString(bytes, unused);
}

export function encodeOctetString(bytes: Uint8Array): Uint8Array {
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_OCTET_STRING, bytes);
}

const OID_TEXT = /^[0-9]+(\.[0-9]+)+$/;

export function encodeOidContent(oid: string): Uint8Array {
  if (!OID_TEXT.test(oid)) throw encoderError(`not a dotted OID: ${oid}`);
  const arcs = oid.split('.').map((a) => BigInt(a));
  const [a0, a1] = arcs as [bigint, bigint];
  if (a0 > 2n || (a0 < 2n && a1 > 39n)) throw encoderError(`invalid leading arcs in ${oid}`);
  const out: number[] = [];
  for (const arc of [a0 * 40n + a1, ...arcs.slice(2)]) {
    const group: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...group);
  }
  if (out.length > MAX_OID_OCTETS) throw encoderError('OBJECT IDENTIFIER too long');
  return Uint8Array.from(out);
}

/** Encoded OIDs by their text: a program encodes the same few again and again (bounded all the same). */
const encodedOids = new Map<string, Uint8Array>();
const MAX_ENCODED_OIDS = 256;

export function encodeOid(oid: string): Uint8Array {
  let tlv = encodedOids.get(oid);
  if (tlv === undefined) {
    tlv = encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_OID, encodeOidContent(oid));
    if (encodedOids.size < MAX_ENCODED_OIDS) encodedOids.set(oid, tlv);
  }
  // A copy: callers own what an encoder returns.
  return tlv.slice();
}

export function encodeUtf8String(text: string): Uint8Array {
  if (!text.isWellFormed()) throw encoderError('string has lone surrogates');
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_UTF8_STRING, new TextEncoder().encode(text));
}

function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) throw encoderError('non-ASCII character');
    out[i] = c;
  }
  return out;
}

export function encodePrintableString(text: string): Uint8Array {
  if (!PRINTABLE.test(text)) throw encoderError('character outside PrintableString');
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_PRINTABLE_STRING, asciiBytes(text));
}

export function encodeIa5String(text: string): Uint8Array {
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_IA5_STRING, asciiBytes(text));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function checkedDate(date: Date): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw encoderError('invalid Date');
  if (date.getUTCMilliseconds() !== 0) throw encoderError('DER times carry whole seconds only');
  return date;
}

function timeTail(d: Date): string {
  return (
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    'Z'
  );
}

export function encodeUtcTime(date: Date): Uint8Array {
  const d = checkedDate(date);
  const year = d.getUTCFullYear();
  if (year < 1950 || year > 2049) throw encoderError('UTCTime covers 1950-2049 only');
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_UTC_TIME, asciiBytes(pad(year % 100, 2) + timeTail(d)));
}

export function encodeGeneralizedTime(date: Date): Uint8Array {
  const d = checkedDate(date);
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw encoderError('GeneralizedTime covers years 0-9999 only');
  return encodeTlv(TAG_CLASS_UNIVERSAL, false, TAG_GENERALIZED_TIME, asciiBytes(pad(year, 4) + timeTail(d)));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 (and before 1950). */
export function encodeTime(date: Date): Uint8Array {
  const year = checkedDate(date).getUTCFullYear();
  return year >= 1950 && year <= 2049 ? encodeUtcTime(date) : encodeGeneralizedTime(date);
}

export function encodeSequence(...parts: Uint8Array[]): Uint8Array {
  return encodeTlv(TAG_CLASS_UNIVERSAL, true, TAG_SEQUENCE, concatBytes(parts));
}

/** SET OF: components sorted by their encodings, as DER requires. */
export function encodeSetOf(...parts: Uint8Array[]): Uint8Array {
  const sorted = [...parts].sort(compareBytes);
  return encodeTlv(TAG_CLASS_UNIVERSAL, true, TAG_SET, concatBytes(sorted));
}

/** `[n] EXPLICIT inner` */
export function encodeExplicit(tagNumber: number, inner: Uint8Array): Uint8Array {
  return encodeTlv(TAG_CLASS_CONTEXT, true, tagNumber, inner);
}

/** `[n] IMPLICIT` over primitive content (e.g. GeneralName uniformResourceIdentifier, keyIdentifier). */
export function encodeImplicit(tagNumber: number, content: Uint8Array, constructed = false): Uint8Array {
  return encodeTlv(TAG_CLASS_CONTEXT, constructed, tagNumber, content);
}
