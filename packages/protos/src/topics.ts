// Kafka topics of the pipeline (DESIGN.md "Kafka"); every record is keyed by host id (UTF-8).

export const KAFKA_TOPICS = Object.freeze({
  /** Evidence: quote-collector → eventlog-replayer. */
  evidence: 'hostgate.evidence.v1',
  /** Measurements: eventlog-replayer → policy-evaluator. */
  measurements: 'hostgate.measurements.v1',
  /** Verdict: policy-evaluator → health-cert-issuer. */
  verdicts: 'hostgate.verdicts.v1',
  /** CertificateEvent: health-cert-issuer → quote-collector (answers Attest). */
  certificates: 'hostgate.certificates.v1',
  /** SocEvent (CloudEvents): the SOC feed. */
  events: 'hostgate.events.v1',
} as const);

export type KafkaTopicKey = keyof typeof KAFKA_TOPICS;
export type KafkaTopic = (typeof KAFKA_TOPICS)[KafkaTopicKey];

/** Payload message of each topic (its dead-letter topic carries DeadLetter). */
export const KAFKA_TOPIC_PAYLOADS = Object.freeze({
  'hostgate.evidence.v1': 'Evidence',
  'hostgate.measurements.v1': 'Measurements',
  'hostgate.verdicts.v1': 'Verdict',
  'hostgate.certificates.v1': 'CertificateEvent',
  'hostgate.events.v1': 'SocEvent',
} as const satisfies Record<KafkaTopic, string>);

/** The dead-letter topic beside a topic: `<topic>.dlq`. */
export function deadLetterTopic<T extends KafkaTopic>(topic: T): `${T}.dlq` {
  return `${topic}.dlq`;
}
