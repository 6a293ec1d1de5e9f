// The payload codec as it was before the fast path (protobufjs fromObject + encode; checkWire +
// decode + toObject), kept verbatim as the reference the fast codec is compared with (tests, bench).
import protobuf from 'protobufjs';
import { ProtoCodecError } from '../src/errors.ts';
import type { Codec, KafkaPayloadName } from '../src/codec.ts';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../src/codec.ts';
import { hostgateRoot } from '../src/load.ts';
import { checkWire } from '../src/wire.ts';

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

const codecs = new Map<string, Codec<unknown, unknown>>();

/** The reference (old) codec of one Kafka payload. */
export function referenceCodec(name: KafkaPayloadName): Codec<unknown, unknown> {
  let c = codecs.get(name);
  if (c === undefined) {
    c = makeReferenceCodec(hostgateRoot().lookupType(`hostgate.v1.${name}`));
    codecs.set(name, c);
  }
  return c;
}

export function makeReferenceCodec(type: protobuf.Type): Codec<unknown, unknown> {
  const typeName = type.fullName.replace(/^\./, '');
  return {
    typeName,
    encode(message: unknown): Buffer {
      if (typeof message !== 'object' || message === null) {
        throw new ProtoCodecError('PROTO_ENCODE', typeName, 0, `${typeName}: expected an object`);
      }
      try {
        const bytes = type.encode(type.fromObject(message as Record<string, unknown>)).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (cause) {
        throw new ProtoCodecError('PROTO_ENCODE', typeName, 0, `${typeName}: ${(cause as Error).message}`, {
          cause,
        });
      }
    },
    decode(bytes: Uint8Array, options?: { maxBytes?: number }): unknown {
      const max = options?.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
      if (bytes.byteLength > max) {
        throw new ProtoCodecError(
          'PROTO_TOO_LARGE',
          typeName,
          max,
          `${typeName}: ${bytes.byteLength} bytes exceed the ${max}-byte limit`,
        );
      }
      checkWire(type, bytes);
      const reader = protobuf.Reader.create(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      try {
        return type.toObject(type.decode(reader), TO_OBJECT);
      } catch (cause) {
        throw new ProtoCodecError(
          'PROTO_DECODE',
          typeName,
          reader.pos,
          `${typeName}: malformed at byte ${reader.pos}: ${(cause as Error).message}`,
          { cause },
        );
      }
    },
  };
}
