// A refusal as this service builds and stores it (the proto Refusal with its code narrowed).
import type { RefusalCodeName } from '@hostgate/protos';

export interface Refusal {
  code: RefusalCodeName;
  message: string;
  details: Record<string, string>;
}
