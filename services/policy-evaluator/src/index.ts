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
export {
  CONSUMER_GROUP,
  deadLetter,
  handleMeasurements,
  handlers,
  MUTATING_METHODS,
  OPERATOR_METADATA,
  type PolicyEvaluatorDeps,
  PoisonMessageError,
  start,
} from './service.ts';
export { DEFAULT_HOST_CLASS, PolicyStore, type StoredGoldenSet, type StoredVerdict } from './store.ts';
