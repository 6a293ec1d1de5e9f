// Refusals as quote-collector answers them: a stable code, one human sentence, optional details.
import type { RefusalCodeName } from '@hostgate/protos';

export interface CollectorRefusal {
  code: RefusalCodeName;
  message: string;
  details?: Record<string, string>;
}

export function refusal(
  code: RefusalCodeName,
  message: string,
  details?: Record<string, string>,
): CollectorRefusal {
  return details === undefined ? { code, message } : { code, message, details };
}

/** The wire form (details always present, as the proto map). */
export function toProtoRefusal(r: CollectorRefusal): {
  code: RefusalCodeName;
  message: string;
  details: Record<string, string>;
} {
  return { code: r.code, message: r.message, details: r.details ?? {} };
}
