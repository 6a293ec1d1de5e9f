export { configSchema, DEFAULT_ADDRESS, type EventlogReplayerConfig, SERVICE_NAME } from './config.ts';
export { type EventlogReplayerDeps, handlers, start } from './service.ts';
