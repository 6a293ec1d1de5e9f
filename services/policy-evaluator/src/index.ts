export { configSchema, DEFAULT_ADDRESS, type PolicyEvaluatorConfig, SERVICE_NAME } from './config.ts';
export {
  draftFromProto,
  goldenSetToProto,
  InvalidGoldenSetError,
  measurementsForPolicy,
  refusalCodeOf,
  verdictToProto,
} from './convert.ts';
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
export { DEFAULT_HOST_CLASS, PolicyStore, type StoredGoldenSet, type StoredVerdict } from './store.ts';
