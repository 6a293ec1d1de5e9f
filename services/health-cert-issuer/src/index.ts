export { configSchema, DEFAULT_ADDRESS, type HealthCertIssuerConfig, SERVICE_NAME } from './config.ts';
export { type HealthCertIssuerDeps, handlers, start } from './service.ts';
export { migrations } from './migrations.ts';
