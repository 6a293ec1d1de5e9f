// The bus a service process talks through: Apache Kafka when KAFKA_BROKERS is set, else an
// in-process bus (only useful when every service runs in this process — the all-in-one).
import type { Bus } from '@hostgate/bus';
import type { Logger } from './logger.ts';

export function parseBrokers(raw: string): string[] {
  return raw
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
}

/**
 * Kafka when `kafkaBrokers` names any broker, else a new in-process bus. `inProcessExpected`
 * (the all-in-one) silences the warning that a lone process's in-process bus reaches nobody.
 */
export async function openServiceBus(
  service: string,
  kafkaBrokers: string | undefined,
  logger: Logger,
  opts: { inProcessExpected?: boolean } = {},
): Promise<Bus> {
  // Loaded when the first bus is opened, not when the runtime is imported.
  const { InProcessBus, KafkaBus, SERVICE_COMMIT_INTERVAL_MS, SERVICE_HANDLER_CONCURRENCY } = await import(
    '@hostgate/bus'
  );
  const brokers = parseBrokers(kafkaBrokers ?? '');
  if (brokers.length > 0) {
    logger.info({ brokers }, 'bus: Apache Kafka');
    // Handlers of different hosts overlap within a partition (a host's own stay in order), and
    // the group's position is committed a few times a second rather than once per message.
    return new KafkaBus({
      brokers,
      clientId: `hostgate-${service}`,
      handlerConcurrency: SERVICE_HANDLER_CONCURRENCY,
      commitIntervalMs: SERVICE_COMMIT_INTERVAL_MS,
    });
  }
  if (opts.inProcessExpected) logger.info('bus: in-process');
  else
    logger.warn(
      'bus: in-process (KAFKA_BROKERS unset) — this process exchanges no messages with other processes',
    );
  return new InProcessBus();
}
