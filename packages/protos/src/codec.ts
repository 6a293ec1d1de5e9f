// protobufjs encode/decode of the Kafka payloads. Input from a topic is hostile: it is size-capped
// and every failure is a ProtoCodecError with a stable code and the byte offset reached.
import protobuf from 'protobufjs';
import { ProtoCodecError } from './errors.ts';
import type { CertificateEvent, CertificateEvent__Output } from './gen/hostgate/v1/CertificateEvent.ts';
import type { DeadLetter, DeadLetter__Output } from './gen/hostgate/v1/DeadLetter.ts';
import type { Evidence, Evidence__Output } from './gen/hostgate/v1/Evidence.ts';
import type { Measurements, Measurements__Output } from './gen/hostgate/v1/Measurements.ts';
import type { SocEvent, SocEvent__Output } from './gen/hostgate/v1/SocEvent.ts';
import type { Verdict, Verdict__Output } from './gen/hostgate/v1/Verdict.ts';
import { BAIL, fastDecode, fastEncode, fastSupported, fastTypeOf } from './fast.ts';
import { hostgateRoot } from './load.ts';
import { checkWire } from './wire.ts';

/** Input (permissive) and output (decoded, defaults filled) type of each Kafka payload. */
export interface KafkaPayloads {
  Evidence: { input: Evidence; output: Evidence__Output };
  Measurements: { input: Measurements; output: Measurements__Output };
  Verdict: { input: Verdict; output: Verdict__Output };
  CertificateEvent: { input: CertificateEvent; output: CertificateEvent__Output };
  SocEvent: { input: SocEvent; output: SocEvent__Output };
  DeadLetter: { input: DeadLetter; output: DeadLetter__Output };
}
export type KafkaPayloadName = keyof KafkaPayloads;

export const KAFKA_PAYLOAD_NAMES: readonly KafkaPayloadName[] = Object.freeze([
  'Evidence',
  'Measurements',
  'Verdict',
  'CertificateEvent',
  'SocEvent',
  'DeadLetter',
]);

/**
 * Default decode cap: an Evidence carries an event log of at most 8 MiB plus a few KiB; twice
 * that leaves room without letting a record make the consumer allocate without bound.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

export interface Codec<I, O> {
  /** Fully qualified message name, e.g. hostgate.v1.Evidence. */
  readonly typeName: string;
  encode(message: I): Buffer;
  /**
   * Decodes `bytes`; throws ProtoCodecError (PROTO_TOO_LARGE, PROTO_DECODE). Bytes fields of the
   * result are views of `bytes` (no copy): copy them before reusing the input buffer.
   */
  decode(bytes: Uint8Array, options?: { maxBytes?: number }): O;
}

// Same conversion as PROTO_LOADER_OPTIONS (load.ts), so a decoded payload matches the __Output types.
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

const codecs = new Map<string, Codec<unknown, unknown>>();

/** The codec of one Kafka payload message, built once. */
export function codec<N extends KafkaPayloadName>(
  name: N,
): Codec<KafkaPayloads[N]['input'], KafkaPayloads[N]['output']> {
  const typeName = `hostgate.v1.${name}`;
  let c = codecs.get(typeName);
  if (c === undefined) {
    c = makeCodec(hostgateRoot().lookupType(typeName));
    codecs.set(typeName, c);
  }
  return c as Codec<KafkaPayloads[N]['input'], KafkaPayloads[N]['output']>;
}

function makeCodec(type: protobuf.Type): Codec<unknown, unknown> {
  const typeName = type.fullName.replace(/^\./, '');
  // The fast path (fast.ts) gives protobufjs's bytes and objects for the inputs it accepts; for any
  // other input (or a type it does not cover) the protobufjs path below runs and gives its result or error.
  const fast = fastTypeOf(type);
  const useFast = fastSupported(fast);
  return {
    typeName,
    encode(message: unknown): Buffer {
      if (typeof message !== 'object' || message === null) {
        throw new ProtoCodecError('PROTO_ENCODE', typeName, 0, `${typeName}: expected an object`);
      }
      if (useFast) {
        const out = fastEncode(fast, message);
        if (out !== BAIL) return out;
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
      // A Buffer view (no copy) so bytes fields decode as Buffer, as the __Output types say.
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (useFast) {
        const out = fastDecode(fast, view);
        if (out !== BAIL) return out;
      }
      checkWire(type, bytes);
      const reader = protobuf.Reader.create(view);
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

export const encodeEvidence = (m: Evidence): Buffer => codec('Evidence').encode(m);
export const decodeEvidence = (b: Uint8Array): Evidence__Output => codec('Evidence').decode(b);
export const encodeMeasurements = (m: Measurements): Buffer => codec('Measurements').encode(m);
export const decodeMeasurements = (b: Uint8Array): Measurements__Output => codec('Measurements').decode(b);
export const encodeVerdict = (m: Verdict): Buffer => codec('Verdict').encode(m);
export const decodeVerdict = (b: Uint8Array): Verdict__Output => codec('Verdict').decode(b);
export const encodeCertificateEvent = (m: CertificateEvent): Buffer => codec('CertificateEvent').encode(m);
export const decodeCertificateEvent = (b: Uint8Array): CertificateEvent__Output =>
  codec('CertificateEvent').decode(b);
export const encodeSocEvent = (m: SocEvent): Buffer => codec('SocEvent').encode(m);
export const decodeSocEvent = (b: Uint8Array): SocEvent__Output => codec('SocEvent').decode(b);
export const encodeDeadLetter = (m: DeadLetter): Buffer => codec('DeadLetter').encode(m);
export const decodeDeadLetter = (b: Uint8Array): DeadLetter__Output => codec('DeadLetter').decode(b);
