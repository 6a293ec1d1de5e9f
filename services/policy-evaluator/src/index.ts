export { configSchema, DEFAULT_ADDRESS, type PolicyEvaluatorConfig, SERVICE_NAME } from './config.ts';
export {
  draftFromProto,
  goldenSetToProto,
  InvalidGoldenSetError,
  measurementsForPolicy,
  refusalCodeOf,
  verdictToProto,
} from './convert.ts';
export {
  MeasurementsCache,
  type MeasurementsCacheOptions,
  measuredContentKey,
} from './measurements-cache.ts';
export { migrations } from './migrations.ts';
export { PoisonMessageError } from '@hostgate/bus';
export {
  CONSUMER_GROUP,
  handleMeasurements,
  handlers,
  MUTATING_METHODS,
  OPERATOR_METADATA,
  type PolicyEvaluatorDeps,
  start,
} from './service.ts';
export {
  DEFAULT_HOST_CLASS,
  PolicyStore,
  type PolicyStoreOptions,
  type RecordOutcome,
  type StoredGoldenSet,
  type StoredVerdict,
  type VerdictToRecord,
} from './store.ts';
export { type Recorded, VerdictRecorder, type VerdictRecorderOptions } from './verdicts.ts';
