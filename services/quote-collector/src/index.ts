export { configSchema, DEFAULT_ADDRESS, type QuoteCollectorConfig, SERVICE_NAME } from './config.ts';
export { type QuoteCollectorDeps, handlers, start } from './service.ts';
export { migrations } from './migrations.ts';
