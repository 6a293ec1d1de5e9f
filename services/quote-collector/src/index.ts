export {
  configSchema,
  DEFAULT_ADDRESS,
  DEFAULT_PCR_SELECTION,
  type QuoteCollectorConfig,
  requiredPcrSelection,
  SERVICE_NAME,
} from './config.ts';
export {
  type CollectorOptions,
  countersProblem,
  hostIdForEk,
  MAX_EVENT_LOG_BYTES,
  MAX_LIVE_NONCES,
  QuoteCollector,
} from './collector.ts';
export {
  attestRoundTrip,
  type CollectorRuntime,
  handlers,
  loadEkRoots,
  type QuoteCollectorDeps,
  start,
} from './service.ts';
export { CERTIFICATES_GROUP, CertificateWaiter } from './certificate-waiter.ts';
export type { CollectorRefusal } from './refusals.ts';
export { SOC_SOURCE, SOC_TYPES } from './soc-events.ts';
export { type HostRecord, type HostStateName, QuoteCollectorStore } from './store.ts';
export { migrations } from './migrations.ts';
