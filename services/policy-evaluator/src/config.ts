// policy-evaluator configuration: the common keys plus its own, under HOSTGATE_POLICY_EVALUATOR_.
import { address, type ConfigOf, commonConfig, integer, optionalString } from '@hostgate/service-runtime';

export const SERVICE_NAME = 'policy-evaluator';

/** Default gRPC listen address (loopback: put a proxy or mesh in front to expose it). */
export const DEFAULT_ADDRESS = '127.0.0.1:50053';

export const configSchema = {
  ...commonConfig,
  address: address(DEFAULT_ADDRESS, 'gRPC listen address (host:port; port 0 picks a free one)'),
  adminToken: optionalString(
    'when set, calls that change policy (publish, activate, deactivate, capture, assign) need the metadata "authorization: Bearer <token>"; unset: loopback callers only',
  ),
  deliveryAttempts: integer(
    60,
    'deliveries of a message whose handling keeps failing (store or bus down) before it is dead-lettered; about 5 minutes at the bus backoff. Poison messages are dead-lettered at once',
    { min: 1, max: 1_000_000 },
  ),
};

export type PolicyEvaluatorConfig = ConfigOf<typeof configSchema>;
