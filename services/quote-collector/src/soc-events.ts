// The SOC feed (hostgate.events.v1) for what only quote-collector sees: refusals that never reach
// the pipeline (unknown AK, spent nonce, counters backwards…) and hosts whose AK became trusted.
// Best effort: a SOC event that cannot be published is logged, never fails the agent's call.
import { randomUUID } from 'node:crypto';
import type { Bus } from '@hostgate/bus';
import {
  encodeSocEvent,
  KAFKA_TOPICS,
  rfc3339,
  type SocEventData,
  timestampFromDate,
} from '@hostgate/protos';
import { injectToHeaders, type Logger } from '@hostgate/service-runtime';

export const SOC_SOURCE = '/hostgate/quote-collector';
export const SOC_TYPES = {
  hostEnrolled: 'io.hostgate.host.enrolled.v1',
  attestationRefused: 'io.hostgate.attestation.refused.v1',
} as const;

/** Key of events about an AK no host owns: one partition, in order, for the SOC to watch. */
export const UNKNOWN_HOST_KEY = 'unknown-host';

export async function publishSocEvent(
  bus: Bus,
  logger: Logger,
  type: (typeof SOC_TYPES)[keyof typeof SOC_TYPES],
  hostId: string,
  data: SocEventData,
  time: Date,
): Promise<void> {
  const id = randomUUID();
  const timestamp = timestampFromDate(time);
  const traceParent = injectToHeaders({})['traceparent'] ?? '';
  const key = hostId === '' ? UNKNOWN_HOST_KEY : hostId;
  try {
    await bus.publish(
      KAFKA_TOPICS.events,
      key,
      encodeSocEvent({
        id,
        source: SOC_SOURCE,
        specVersion: '1.0',
        type,
        subject: hostId,
        time: timestamp,
        dataContentType: 'application/json',
        dataSchema: 'urn:hostgate:v1:SocEventData',
        traceParent,
        data: { ...data, hostId },
      }),
      {
        'content-type': 'application/protobuf; proto=hostgate.v1.SocEvent',
        ce_specversion: '1.0',
        ce_id: id,
        ce_source: SOC_SOURCE,
        ce_type: type,
        ce_subject: hostId,
        ce_time: rfc3339(timestamp),
      },
    );
  } catch (err) {
    logger.warn({ err, type, hostId }, 'SOC event could not be published');
  }
}
