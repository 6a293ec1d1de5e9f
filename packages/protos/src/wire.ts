// Structural check of protobuf wire bytes against a message type before protobufjs decodes them:
// protobufjs clamps a truncated string to the end of the buffer and lets a field run past the end
// of its enclosing message, so hostile bytes could decode "successfully". Every declared length
// is checked against the bytes left in its enclosing message first.
import protobuf from 'protobufjs';
import { ProtoCodecError } from './errors.ts';

const MAX_DEPTH = 32;

interface Cursor {
  pos: number;
}

function fail(typeName: string, offset: number, message: string): never {
  throw new ProtoCodecError('PROTO_DECODE', typeName, offset, `${typeName}: ${message} at byte ${offset}`);
}

function readVarint(buf: Uint8Array, c: Cursor, end: number, typeName: string): number {
  const start = c.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= end) fail(typeName, start, 'truncated varint');
    const b = buf[c.pos++]!;
    if (i < 7) value += (b & 0x7f) * scale; // exact up to 2^49: enough for tags and lengths
    scale *= 128;
    if ((b & 0x80) === 0) return value;
  }
  return fail(typeName, start, 'varint longer than 10 bytes');
}

function skip(buf: Uint8Array, c: Cursor, end: number, wireType: number, typeName: string): void {
  const at = c.pos;
  switch (wireType) {
    case 0:
      readVarint(buf, c, end, typeName);
      return;
    case 1:
      if (end - c.pos < 8) fail(typeName, at, 'truncated fixed64');
      c.pos += 8;
      return;
    case 2: {
      const len = readVarint(buf, c, end, typeName);
      if (len > end - c.pos) fail(typeName, at, `length ${len} exceeds the ${end - c.pos} bytes left`);
      c.pos += len;
      return;
    }
    case 5:
      if (end - c.pos < 4) fail(typeName, at, 'truncated fixed32');
      c.pos += 4;
      return;
    default:
      fail(typeName, at, `unsupported wire type ${wireType}`);
  }
}

function walk(
  buf: Uint8Array,
  c: Cursor,
  end: number,
  fieldType: (id: number) => protobuf.Type | 'map' | undefined,
  mapValue: (id: number) => protobuf.Type | undefined,
  wireTypesOf: (id: number) => readonly number[] | undefined,
  typeName: string,
  depth: number,
): void {
  if (depth > MAX_DEPTH) fail(typeName, c.pos, `nesting deeper than ${MAX_DEPTH}`);
  while (c.pos < end) {
    const tagAt = c.pos;
    const tag = readVarint(buf, c, end, typeName);
    const id = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (id === 0) fail(typeName, tagAt, 'field number 0');
    // protobufjs decodes a known field by its declared type whatever the wire type says.
    const allowed = wireTypesOf(id);
    if (allowed !== undefined && !allowed.includes(wireType)) {
      fail(typeName, tagAt, `field ${id} has wire type ${wireType}, expected ${allowed.join(' or ')}`);
    }
    const nested = fieldType(id);
    if (nested === undefined || wireType !== 2) {
      skip(buf, c, end, wireType, typeName);
      continue;
    }
    const lenAt = c.pos;
    const len = readVarint(buf, c, end, typeName);
    if (len > end - c.pos) fail(typeName, lenAt, `length ${len} exceeds the ${end - c.pos} bytes left`);
    const subEnd = c.pos + len;
    if (nested === 'map') {
      const value = mapValue(id);
      walk(
        buf,
        c,
        subEnd,
        (k) => (k === 2 ? value : undefined),
        () => undefined,
        () => undefined,
        typeName,
        depth + 1,
      );
    } else {
      walkType(buf, c, subEnd, nested, depth + 1);
    }
    if (c.pos !== subEnd) fail(typeName, c.pos, 'nested message overran its length');
  }
  if (c.pos !== end) fail(typeName, c.pos, 'field overran its enclosing message');
}

function walkType(buf: Uint8Array, c: Cursor, end: number, type: protobuf.Type, depth: number): void {
  const typeName = type.fullName.replace(/^\./, '');
  walk(
    buf,
    c,
    end,
    (id) => {
      const field = type.fieldsById[id];
      if (field === undefined) return undefined;
      if (field instanceof protobuf.MapField) return 'map';
      return field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    },
    (id) => {
      const field = type.fieldsById[id];
      return field?.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    },
    (id) => {
      const field = type.fieldsById[id];
      return field === undefined ? undefined : wireTypes(field);
    },
    typeName,
    depth,
  );
}

// Wire types a field may arrive with (protobuf encoding guide): repeated scalars may be packed.
function wireTypes(field: protobuf.Field): readonly number[] {
  if (field instanceof protobuf.MapField || field.resolvedType instanceof protobuf.Type) return [2];
  const basic = (protobuf.types.basic as Record<string, number | undefined>)[field.type];
  const wire = field.resolvedType instanceof protobuf.Enum ? 0 : (basic ?? 2);
  return field.repeated && wire !== 2 ? [wire, 2] : [wire];
}

/** Throws ProtoCodecError (PROTO_DECODE, with the offset) unless `buf` is well-formed wire data for `type`. */
export function checkWire(type: protobuf.Type, buf: Uint8Array): void {
  walkType(buf, { pos: 0 }, buf.byteLength, type, 0);
}
