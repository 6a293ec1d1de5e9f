// The SOC feed's JSON form: CloudEvents 1.0 JSON format (structured mode) of a SocEvent, with
// `data` in the proto3 JSON mapping of SocEventData (defaults omitted, Timestamps RFC 3339).
import type { Timestamp__Output } from './gen/google/protobuf/Timestamp.ts';
import type { Refusal__Output } from './gen/hostgate/v1/Refusal.ts';
import type { RevokedCertificate__Output } from './gen/hostgate/v1/RevokedCertificate.ts';
import type { SocEvent__Output } from './gen/hostgate/v1/SocEvent.ts';

export interface CloudEventJson {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  traceparent?: string;
  data?: Record<string, unknown>;
}

/** RFC 3339 text of a Timestamp as proto3 JSON writes it: 0, 3, 6 or 9 fractional digits. */
export function rfc3339(ts: Timestamp__Output): string {
  const seconds = Number(ts.seconds);
  if (
    !Number.isSafeInteger(seconds) ||
    !Number.isInteger(ts.nanos) ||
    ts.nanos < 0 ||
    ts.nanos > 999_999_999
  ) {
    throw new RangeError('rfc3339: invalid Timestamp');
  }
  const base = new Date(seconds * 1000).toISOString().replace(/\.000Z$/, '');
  if (ts.nanos === 0) return `${base}Z`;
  const digits = String(ts.nanos).padStart(9, '0');
  const frac =
    ts.nanos % 1_000_000 === 0 ? digits.slice(0, 3) : ts.nanos % 1000 === 0 ? digits.slice(0, 6) : digits;
  return `${base}.${frac}Z`;
}

function refusalJson(r: Refusal__Output): Record<string, unknown> {
  const out: Record<string, unknown> = { code: r.code };
  if (r.message !== '') out['message'] = r.message;
  if (Object.keys(r.details).length > 0) out['details'] = { ...r.details };
  return out;
}

function revokedJson(r: RevokedCertificate__Output): Record<string, unknown> {
  const out: Record<string, unknown> = { serial: r.serial };
  if (r.revokedAt !== null) out['revokedAt'] = rfc3339(r.revokedAt);
  if (r.reason !== '') out['reason'] = r.reason;
  return out;
}

/** The CloudEvents JSON object of a SocEvent (unset optional attributes left out). */
export function cloudEventFromSocEvent(event: SocEvent__Output): CloudEventJson {
  const out: CloudEventJson = {
    specversion: event.specVersion || '1.0',
    id: event.id,
    source: event.source,
    type: event.type,
  };
  if (event.subject !== '') out.subject = event.subject;
  if (event.time !== null) out.time = rfc3339(event.time);
  if (event.dataContentType !== '') out.datacontenttype = event.dataContentType;
  if (event.dataSchema !== '') out.dataschema = event.dataSchema;
  if (event.traceParent !== '') out.traceparent = event.traceParent;
  const d = event.data;
  if (d !== null) {
    const data: Record<string, unknown> = {};
    for (const key of [
      'hostId',
      'attestationId',
      'verdictId',
      'policyClass',
      'certificateSerial',
      'actor',
    ] as const) {
      if (d[key] !== '') data[key] = d[key];
    }
    if (d.policyVersion !== 0) data['policyVersion'] = d.policyVersion;
    if (d.refusals.length > 0) data['refusals'] = d.refusals.map(refusalJson);
    if (d.certificateNotAfter !== null) data['certificateNotAfter'] = rfc3339(d.certificateNotAfter);
    if (d.revoked.length > 0) data['revoked'] = d.revoked.map(revokedJson);
    out.data = data;
  }
  return out;
}
