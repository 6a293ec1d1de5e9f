// quote-collector configuration: the common keys plus its own, under HOSTGATE_QUOTE_COLLECTOR_.
import { address, type ConfigOf, commonConfig } from '@hostgate/service-runtime';

export const SERVICE_NAME = 'quote-collector';

/** Default gRPC listen address (loopback: put a proxy or mesh in front to expose it). */
export const DEFAULT_ADDRESS = '127.0.0.1:50051';

export const configSchema = {
  ...commonConfig,
  address: address(DEFAULT_ADDRESS, 'gRPC listen address (host:port; port 0 picks a free one)'),
};

export type QuoteCollectorConfig = ConfigOf<typeof configSchema>;
