// health-cert-issuer configuration: the common keys plus its own, under HOSTGATE_HEALTH_CERT_ISSUER_.
import {
  address,
  type ConfigOf,
  commonConfig,
  integer,
  optionalString,
  string,
} from '@hostgate/service-runtime';

export const SERVICE_NAME = 'health-cert-issuer';

/** Default gRPC listen address (loopback: put a proxy or mesh in front to expose it). */
export const DEFAULT_ADDRESS = '127.0.0.1:50054';

export const configSchema = {
  ...commonConfig,
  address: address(DEFAULT_ADDRESS, 'gRPC listen address (host:port; port 0 picks a free one)'),
  validitySeconds: integer(3600, 'lifetime of a health certificate, seconds', { min: 60, max: 7 * 86_400 }),
  backdateSeconds: integer(60, 'notBefore is set this far in the past, for schedulers whose clocks lag', {
    min: 0,
    max: 600,
  }),
  caCertFile: optionalString(
    'CA certificate PEM; with caKeyFile it replaces the development CA generated into the store',
  ),
  caKeyFile: optionalString('CA private key PEM (PKCS#8, ECDSA P-256); set together with caCertFile'),
  caCommonName: string('HostGate Dev CA', 'common name of the development CA generated on first start', {
    nonEmpty: true,
  }),
  crlValiditySeconds: integer(600, 'CRL nextUpdate - thisUpdate, seconds: how stale a verifier lets it get', {
    min: 60,
    max: 7 * 86_400,
  }),
  adminToken: optionalString(
    'bearer token RevokeHost requires (metadata authorization: Bearer <token>); unset: loopback callers only',
  ),
  fleetPollMs: integer(
    250,
    "how often, while someone watches, the store is read for other replicas' fleet changes",
    {
      min: 50,
      max: 5000,
    },
  ),
  deliveryAttempts: integer(
    60,
    'deliveries of a verdict whose handling keeps failing (store or bus down) before it is dead-lettered; about 5 minutes at the bus backoff. Poison verdicts are dead-lettered at once',
    { min: 1, max: 1_000_000 },
  ),
  outboxRetentionHours: integer(
    168,
    'how long the messages of an attestation are kept to re-publish on redelivery (longer than the verdict topic keeps records)',
    { min: 1, max: 24 * 365 },
  ),
  expirySweepMs: integer(1000, 'how often expired certificates are looked for (WatchFleet EXPIRED)', {
    min: 50,
    max: 60_000,
  }),
};

export type HealthCertIssuerConfig = ConfigOf<typeof configSchema>;
