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

type KafkaBusConstructor = new (options: { brokers: string[]; clientId?: string }) => Bus;

export async function openServiceBus(
  service: string,
  kafkaBrokers: string | undefined,
  logger: Logger,
): Promise<Bus> {
  const bus: Record<string, unknown> = await import('@hostgate/bus');
  const brokers = parseBrokers(kafkaBrokers ?? '');
  if (brokers.length > 0) {
    // Looked up by name: the Kafka client loads only in processes configured for Kafka.
    const KafkaBus = bus['KafkaBus'] as KafkaBusConstructor | undefined;
    if (KafkaBus === undefined) throw new Error('KAFKA_BROKERS is set but @hostgate/bus has no KafkaBus');
    logger.info({ brokers }, 'bus: Apache Kafka');
    return new KafkaBus({ brokers, clientId: `hostgate-${service}` });
  }
  logger.warn(
    'bus: in-process (KAFKA_BROKERS unset) — this process will not exchange messages with other processes',
  );
  const InProcessBus = bus['InProcessBus'] as new () => Bus;
  return new InProcessBus();
}
