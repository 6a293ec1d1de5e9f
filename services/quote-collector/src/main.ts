// Standalone quote-collector process: config from the environment, SIGTERM for a graceful stop.
import { runService } from '@hostgate/service-runtime';
import { configSchema, SERVICE_NAME } from './config.ts';
import { start } from './service.ts';

await runService({
  name: SERVICE_NAME,
  config: configSchema,
  stateful: true,
  start: (config, deps) => start(config, { ...deps, db: deps.db! }),
});
