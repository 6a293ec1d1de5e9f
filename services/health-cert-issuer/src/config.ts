// health-cert-issuer configuration: the common keys plus its own, under HOSTGATE_HEALTH_CERT_ISSUER_.
import { address, type ConfigOf, commonConfig } from '@hostgate/service-runtime';

export const SERVICE_NAME = 'health-cert-issuer';

/** Default gRPC listen address (loopback: put a proxy or mesh in front to expose it). */
export const DEFAULT_ADDRESS = '127.0.0.1:50054';

export const configSchema = {
  ...commonConfig,
  address: address(DEFAULT_ADDRESS, 'gRPC listen address (host:port; port 0 picks a free one)'),
};

export type HealthCertIssuerConfig = ConfigOf<typeof configSchema>;
