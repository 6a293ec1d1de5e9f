export { configSchema, DEFAULT_ADDRESS, type HealthCertIssuerConfig, SERVICE_NAME } from './config.ts';
export {
  CONSUMER_GROUP,
  type HealthCertIssuerDeps,
  handlers,
  type RunningIssuer,
  start,
} from './service.ts';
export { migrations } from './migrations.ts';
export { PoisonMessageError } from '@hostgate/bus';
export { Issuer, type IssuerOptions } from './issuer.ts';
export { FleetHub, type FleetCause, type FleetChange, type HostState } from './fleet.ts';
export { SOC_SOURCE, SOC_TYPES } from './events.ts';
