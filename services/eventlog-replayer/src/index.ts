export { configSchema, DEFAULT_ADDRESS, type EventlogReplayerConfig, SERVICE_NAME } from './config.ts';
export { decodeForPolicy, type PolicyMeaning } from './decode.ts';
export {
  algorithmOfBank,
  bankOfAlgorithm,
  MAX_EVENT_LOG_BYTES,
  quotedPcrs,
  type ReplayInput,
  type ReplayOutcome,
  replayEventLog,
} from './replay.ts';
export { PoisonMessageError } from '@hostgate/bus';
export {
  CONSUMER_GROUP,
  encodeBounded,
  MAX_MEASUREMENTS_BYTES,
  type EventlogReplayerDeps,
  handleEvidence,
  handlers,
  measurementsFromEvidence,
  start,
} from './service.ts';
