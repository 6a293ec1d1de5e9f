// Structural check of protobuf wire bytes against a message type before protobufjs decodes them:
// protobufjs clamps a truncated string to the end of the buffer, lets a field run past the end
// of its enclosing message, and decodes a known field by its declared type whatever the wire
// type says, so hostile bytes could decode "successfully". Every declared length is checked
// against the bytes left in its enclosing message first.
import protobuf from 'protobufjs';
import { ProtoCodecError } from './errors.ts';

const MAX_DEPTH = 32;

/** How to check one message type, computed once per type. */
interface Plan {
  readonly typeName: string;
  /** field number → allowed wire types as a bit mask, and the nested plan of message/map fields */
  readonly fields: Map<number, { readonly wireMask: number; nested?: Plan }>;
}

const plans = new WeakMap<protobuf.Type, Plan>();

// Wire type of a scalar or enum type name (protobuf encoding guide); 2 for strings, bytes, messages.
function wireOf(typeName: string, resolved: protobuf.ReflectionObject | null): number {
  if (resolved instanceof protobuf.Enum) return 0;
  if (resolved instanceof protobuf.Type) return 2;
  return (protobuf.types.basic as Record<string, number | undefined>)[typeName] ?? 2;
}

// Wire types a field may arrive with: repeated scalars may also be packed (2).
function wireMask(field: protobuf.Field): number {
  if (field instanceof protobuf.MapField) return 1 << 2;
  const wire = wireOf(field.type, field.resolvedType);
  return field.repeated ? (1 << wire) | (1 << 2) : 1 << wire;
}

function planOf(type: protobuf.Type): Plan {
  let plan = plans.get(type);
  if (plan !== undefined) return plan;
  const fields: Plan['fields'] = new Map();
  plan = { typeName: type.fullName.replace(/^\./, ''), fields };
  plans.set(type, plan); // before recursing: message types may refer to each other
  for (const field of type.fieldsArray) {
    const entry: { wireMask: number; nested?: Plan } = { wireMask: wireMask(field) };
    if (field instanceof protobuf.MapField) {
      // A map entry is a message { key = 1; value = 2 }.
      const entryFields: Plan['fields'] = new Map([[1, { wireMask: 1 << wireOf(field.keyType, null) }]]);
      const value: { wireMask: number; nested?: Plan } = {
        wireMask: 1 << wireOf(field.type, field.resolvedType),
      };
      if (field.resolvedType instanceof protobuf.Type) value.nested = planOf(field.resolvedType);
      entryFields.set(2, value);
      entry.nested = { typeName: plan.typeName, fields: entryFields };
    } else if (field.resolvedType instanceof protobuf.Type) {
      entry.nested = planOf(field.resolvedType);
    }
    fields.set(field.id, entry);
  }
  return plan;
}

class Walker {
  pos = 0;
  readonly buf: Uint8Array;
  readonly rootName: string;

  constructor(buf: Uint8Array, rootName: string) {
    this.buf = buf;
    this.rootName = rootName;
  }

  fail(offset: number, message: string): never {
    throw new ProtoCodecError(
      'PROTO_DECODE',
      this.rootName,
      offset,
      `${this.rootName}: ${message} at byte ${offset}`,
    );
  }

  varint(end: number): number {
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) this.fail(start, 'truncated varint');
      const b = this.buf[this.pos++]!;
      if (i < 7) value += (b & 0x7f) * scale; // exact up to 2^49: enough for tags and lengths
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
    return this.fail(start, 'varint longer than 10 bytes');
  }

  length(end: number): number {
    const at = this.pos;
    const len = this.varint(end);
    if (len > end - this.pos) this.fail(at, `length ${len} exceeds the ${end - this.pos} bytes left`);
    return len;
  }

  message(plan: Plan, end: number, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(this.pos, `nesting deeper than ${MAX_DEPTH}`);
    while (this.pos < end) {
      const tagAt = this.pos;
      const tag = this.varint(end);
      const id = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (id === 0) this.fail(tagAt, 'field number 0');
      const field = plan.fields.get(id);
      if (field !== undefined && (field.wireMask & (1 << wireType)) === 0) {
        this.fail(tagAt, `${plan.typeName} field ${id} has wire type ${wireType}`);
      }
      switch (wireType) {
        case 0:
          this.varint(end);
          break;
        case 1:
          if (end - this.pos < 8) this.fail(this.pos, 'truncated fixed64');
          this.pos += 8;
          break;
        case 2: {
          const len = this.length(end);
          if (field?.nested === undefined) {
            this.pos += len;
          } else {
            const subEnd = this.pos + len;
            this.message(field.nested, subEnd, depth + 1);
          }
          break;
        }
        case 5:
          if (end - this.pos < 4) this.fail(this.pos, 'truncated fixed32');
          this.pos += 4;
          break;
        default:
          this.fail(tagAt, `unsupported wire type ${wireType}`);
      }
    }
    // Only a nested length can be overrun; this.length() already refused that, so pos === end.
  }
}

/** Throws ProtoCodecError (PROTO_DECODE, with the offset) unless `buf` is well-formed wire data for `type`. */
export function checkWire(type: protobuf.Type, buf: Uint8Array): void {
  const plan = planOf(type);
  new Walker(buf, plan.typeName).message(plan, buf.byteLength, 0);
}
