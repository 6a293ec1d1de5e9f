export { configSchema, DEFAULT_ADDRESS, type PolicyEvaluatorConfig, SERVICE_NAME } from './config.ts';
export { type PolicyEvaluatorDeps, handlers, start } from './service.ts';
export { migrations } from './migrations.ts';
