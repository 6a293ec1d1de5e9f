// @hostgate/protos: the HostGate API (protos/hostgate/v1) for grpc-js and Kafka, and its types,
// generated into src/gen by scripts/generate.ts (types only; the .proto files load at run time).
export type * from './gen/index.ts';
export type { CloudEventJson } from './cloudevents.ts';
export { cloudEventFromSocEvent, rfc3339 } from './cloudevents.ts';
export type { Codec, KafkaPayloadName, KafkaPayloads } from './codec.ts';
export {
  codec,
  DEFAULT_MAX_PAYLOAD_BYTES,
  decodeCertificateEvent,
  decodeDeadLetter,
  decodeEvidence,
  decodeMeasurements,
  decodeSocEvent,
  decodeVerdict,
  encodeCertificateEvent,
  encodeDeadLetter,
  encodeEvidence,
  encodeMeasurements,
  encodeSocEvent,
  encodeVerdict,
  KAFKA_PAYLOAD_NAMES,
} from './codec.ts';
export type { ProtoErrorCode } from './errors.ts';
export { ProtoCodecError } from './errors.ts';
export type { HostgateProtos } from './load.ts';
export {
  hostgateRoot,
  loadHostgateProtos,
  PROTO_FILES,
  PROTO_LOADER_OPTIONS,
  PROTOS_DIR,
  SERVICE_NAMES,
} from './load.ts';
export type { RefusalCodeName } from './refusal-codes.ts';
export { isRefusalCode, refusalCodes } from './refusal-codes.ts';
export { dateFromTimestamp, timestampFromDate } from './timestamp.ts';
export type { KafkaTopic, KafkaTopicKey } from './topics.ts';
export { deadLetterTopic, KAFKA_TOPIC_PAYLOADS, KAFKA_TOPICS } from './topics.ts';
