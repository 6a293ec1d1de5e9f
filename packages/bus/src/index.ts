export { InProcessBus } from './in-process-bus.ts';
export { KafkaBus, SERVICE_COMMIT_INTERVAL_MS, SERVICE_HANDLER_CONCURRENCY } from './kafka-bus.ts';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  DLQ_VALUE_DROPPED_HEADER,
  RECORD_OVERHEAD_BYTES,
} from './kafka-bus.ts';
export type { KafkaBusOptions } from './kafka-bus.ts';
export type { InProcessBusOptions } from './in-process-bus.ts';
export { murmur2, partitionForKey } from './partition.ts';
export { BusError, DLQ_HEADERS, PoisonMessageError } from './types.ts';
export type {
  Bus,
  BusCommit,
  BusHandler,
  BusHeaders,
  BusMessage,
  CloseOptions,
  SubscribeOptions,
  Subscription,
} from './types.ts';
