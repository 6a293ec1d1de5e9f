export {
  callOptions,
  healthOf,
  isUnimplemented,
  type KafkaBroker,
  kafkaSkipReason,
  type Pipeline,
  type PipelineOptions,
  SERVICES,
  type ServiceClients,
  type ServiceName,
  serviceClients,
  startKafka,
  startPipeline,
  toolMissing,
  unary,
  writePem,
} from './harness.ts';
export { createSoftwareEkRoot, type SoftwareEkRoot, SoftwareHost } from './software-host.ts';
export {
  appDigests,
  type BootOptions,
  buildLog,
  DEFAULT_BOOT_APPS,
  expectedPcrs,
  type LogEvent,
  uefiBoot,
} from './synthetic-log.ts';
export { type AkSlot, type AttestOverrides, refusalCodes, SwtpmHost } from './tpm-agent.ts';
export { type ServiceProcesses, type ServiceProcessesOptions, startServiceProcesses } from './processes.ts';
