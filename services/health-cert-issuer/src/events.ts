// What the issuer publishes: CertificateEvent (hostgate.certificates.v1) and SocEvent (hostgate.events.v1),
// encoded once so a redelivered verdict re-publishes the very same bytes.
import { randomUUID } from 'node:crypto';
import {
  type CertificateEvent,
  type HealthCertificate,
  encodeCertificateEvent,
  encodeSocEvent,
  KAFKA_TOPICS,
  type SocEventData,
  type Timestamp,
} from '@hostgate/protos';
import type { Refusal } from './refusal.ts';

export const SOC_SOURCE = '/hostgate/health-cert-issuer';
export const SOC_DATA_SCHEMA = 'urn:hostgate:v1:SocEventData';
export const SOC_TYPES = {
  attestationPassed: 'io.hostgate.attestation.passed.v1',
  attestationRefused: 'io.hostgate.attestation.refused.v1',
  certificateIssued: 'io.hostgate.certificate.issued.v1',
  certificateRevoked: 'io.hostgate.certificate.revoked.v1',
} as const;
/** Kafka header naming the protobuf message in a record's value. */
export const CONTENT_TYPE_HEADER = 'content-type';

/** A record to publish: topic, key (host id), value, headers. */
export interface OutgoingMessage {
  topic: string;
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
}

export interface RevokedInfo {
  serial: string;
  revokedAt: Date;
  reason: string;
}

/**
 * A Timestamp with numeric seconds. Encoded to the same bytes as timestampFromDate's decimal
 * string, which protobufjs would parse into a Long on every encode (~1 % of the issuer's CPU).
 */
export function timestamp(date: Date): Timestamp {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('timestamp: invalid Date');
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

/**
 * The ce_time of an event at `time`: what rfc3339(timestampFromDate(time)) writes (whole seconds
 * without a fraction, else milliseconds), from toISOString without the Timestamp and its regex.
 */
function ceTime(time: Date): string {
  // The events of one verdict share their time: the last one formatted is kept.
  const ms = time.getTime();
  if (ms === lastCeTime.ms) return lastCeTime.text;
  const iso = time.toISOString();
  const text = iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
  lastCeTime = { ms, text };
  return text;
}

let lastCeTime = { ms: Number.NaN, text: '' };

function revokedProto(r: RevokedInfo) {
  return { serial: r.serial, revokedAt: timestamp(r.revokedAt), reason: r.reason };
}

export function certificateEventMessage(
  hostId: string,
  event: Omit<CertificateEvent, 'eventId' | 'hostId' | 'time'>,
  time: Date,
): OutgoingMessage {
  const value = encodeCertificateEvent({
    ...event,
    eventId: randomUUID(),
    hostId,
    time: timestamp(time),
  });
  return {
    topic: KAFKA_TOPICS.certificates,
    key: hostId,
    value,
    headers: { [CONTENT_TYPE_HEADER]: 'application/protobuf; proto=hostgate.v1.CertificateEvent' },
  };
}

/**
 * A SOC event: a SocEvent protobuf (the topic's payload) with the CloudEvents Kafka binding's
 * `ce_*` headers, so a CloudEvents-aware consumer routes it without decoding the value.
 */
export function socEventMessage(
  hostId: string,
  type: string,
  data: SocEventData,
  time: Date,
  traceParent: string,
): OutgoingMessage {
  const id = randomUUID();
  const value = encodeSocEvent({
    id,
    source: SOC_SOURCE,
    specVersion: '1.0',
    type,
    subject: hostId,
    time: timestamp(time),
    dataContentType: 'application/json',
    dataSchema: SOC_DATA_SCHEMA,
    traceParent,
    data: { hostId, ...data },
  });
  return {
    topic: KAFKA_TOPICS.events,
    key: hostId,
    value,
    headers: {
      [CONTENT_TYPE_HEADER]: 'application/protobuf; proto=hostgate.v1.SocEvent',
      ce_specversion: '1.0',
      ce_id: id,
      ce_source: SOC_SOURCE,
      ce_type: type,
      ce_subject: hostId,
      ce_time: ceTime(time),
    },
  };
}

export interface IssuedOutcome {
  hostId: string;
  attestationId: string;
  verdictId: string;
  certificate: HealthCertificate;
  notAfter: Date;
  policyClass: string;
  policyVersion: number;
}

/** ISSUED, then the SOC feed's attestation.passed and certificate.issued. */
export function issuedMessages(o: IssuedOutcome, time: Date, traceParent: string): OutgoingMessage[] {
  const common = {
    attestationId: o.attestationId,
    verdictId: o.verdictId,
    policyClass: o.policyClass,
    policyVersion: o.policyVersion,
  };
  return [
    certificateEventMessage(
      o.hostId,
      {
        type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
        attestationId: o.attestationId,
        verdictId: o.verdictId,
        certificate: o.certificate,
      },
      time,
    ),
    socEventMessage(o.hostId, SOC_TYPES.attestationPassed, common, time, traceParent),
    socEventMessage(
      o.hostId,
      SOC_TYPES.certificateIssued,
      {
        ...common,
        certificateSerial: o.certificate.serial ?? '',
        certificateNotAfter: timestamp(o.notAfter),
      },
      time,
      traceParent,
    ),
  ];
}

export interface RefusedOutcome {
  hostId: string;
  attestationId: string;
  verdictId: string;
  policyClass: string;
  policyVersion: number;
  refusals: Refusal[];
  revoked: RevokedInfo[];
}

/** REFUSED (with the certificates it revoked), then attestation.refused and, when any, certificate.revoked. */
export function refusedMessages(o: RefusedOutcome, time: Date, traceParent: string): OutgoingMessage[] {
  const revoked = o.revoked.map(revokedProto);
  const common = {
    attestationId: o.attestationId,
    verdictId: o.verdictId,
    policyClass: o.policyClass,
    policyVersion: o.policyVersion,
  };
  const out = [
    certificateEventMessage(
      o.hostId,
      {
        type: 'CERTIFICATE_EVENT_TYPE_REFUSED',
        attestationId: o.attestationId,
        verdictId: o.verdictId,
        refusals: o.refusals,
        revoked,
      },
      time,
    ),
    socEventMessage(
      o.hostId,
      SOC_TYPES.attestationRefused,
      { ...common, refusals: o.refusals, revoked },
      time,
      traceParent,
    ),
  ];
  if (revoked.length > 0) {
    out.push(
      socEventMessage(o.hostId, SOC_TYPES.certificateRevoked, { ...common, revoked }, time, traceParent),
    );
  }
  return out;
}

/** An operator revocation: REVOKED with the actor, and certificate.revoked. */
export function operatorRevokedMessages(
  hostId: string,
  actor: string,
  revoked: RevokedInfo[],
  time: Date,
  traceParent: string,
): OutgoingMessage[] {
  const list = revoked.map(revokedProto);
  return [
    certificateEventMessage(hostId, { type: 'CERTIFICATE_EVENT_TYPE_REVOKED', revoked: list, actor }, time),
    socEventMessage(hostId, SOC_TYPES.certificateRevoked, { revoked: list, actor }, time, traceParent),
  ];
}
