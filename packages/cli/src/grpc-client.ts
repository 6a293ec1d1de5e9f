// gRPC clients for the CLI against the four services. Without --server, a command talks to the
// address the service itself listens on by default (what `npm start` opens), overridable with the
// same environment variable the service reads (HOSTGATE_<SERVICE>_ADDRESS).
import * as grpc from '@grpc/grpc-js';
import {
  type EventlogReplayerServiceClient,
  type HealthCertIssuerServiceClient,
  loadHostgateProtos,
  type PolicyEvaluatorServiceClient,
  type QuoteCollectorServiceClient,
} from '@hostgate/protos';

/** Services the CLI talks to, by the kebab-case name their process and env prefix use. */
export const SERVICE_ENDPOINTS = Object.freeze({
  'quote-collector': { env: 'HOSTGATE_QUOTE_COLLECTOR_ADDRESS', address: '127.0.0.1:50051' },
  'eventlog-replayer': { env: 'HOSTGATE_EVENTLOG_REPLAYER_ADDRESS', address: '127.0.0.1:50052' },
  'policy-evaluator': { env: 'HOSTGATE_POLICY_EVALUATOR_ADDRESS', address: '127.0.0.1:50053' },
  'health-cert-issuer': { env: 'HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS', address: '127.0.0.1:50054' },
} as const);

export type ServiceName = keyof typeof SERVICE_ENDPOINTS;

/**
 * The address to dial: `--server` when given, else the service's env variable, else its default.
 * A listen address of 0.0.0.0 / [::] (a service bound to every interface) is dialled on loopback.
 */
export function serviceAddress(
  service: ServiceName,
  server?: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const endpoint = SERVICE_ENDPOINTS[service];
  const fromEnv = env[endpoint.env];
  const raw = server ?? (fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv.trim() : endpoint.address);
  return raw.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
}

interface ClientTypes {
  'quote-collector': QuoteCollectorServiceClient;
  'eventlog-replayer': EventlogReplayerServiceClient;
  'policy-evaluator': PolicyEvaluatorServiceClient;
  'health-cert-issuer': HealthCertIssuerServiceClient;
}

/** An insecure (plaintext) client; the caller closes it (`client.close()`). */
export function createServiceClient<S extends ServiceName>(
  service: S,
  opts: { server?: string; env?: NodeJS.ProcessEnv } = {},
): ClientTypes[S] {
  const protos = loadHostgateProtos();
  const address = serviceAddress(service, opts.server, opts.env);
  const credentials = grpc.credentials.createInsecure();
  // Evidence carries an event log of up to 8 MiB: allow a little more than that per message.
  const options = { 'grpc.max_send_message_length': 16 << 20, 'grpc.max_receive_message_length': 16 << 20 };
  switch (service) {
    case 'quote-collector':
      return new protos.QuoteCollectorService(address, credentials, options) as ClientTypes[S];
    case 'eventlog-replayer':
      return new protos.EventlogReplayerService(address, credentials, options) as ClientTypes[S];
    case 'policy-evaluator':
      return new protos.PolicyEvaluatorService(address, credentials, options) as ClientTypes[S];
    default:
      return new protos.HealthCertIssuerService(address, credentials, options) as ClientTypes[S];
  }
}

/** Default deadline of one CLI call. */
export const DEFAULT_DEADLINE_MS = 30_000;

/** `Date` deadline for a call starting now. */
export function deadline(ms: number = DEFAULT_DEADLINE_MS): Date {
  return new Date(Date.now() + ms);
}

/** Promise form of a unary call: `unary(cb => client.Enroll(req, {deadline: deadline()}, cb))`. */
export function unary<T>(
  start: (cb: (err: grpc.ServiceError | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, value) => {
      if (err !== null) reject(err);
      else if (value === undefined) reject(new Error('empty gRPC response'));
      else resolve(value);
    });
  });
}

/** One line for an operator when a call failed at the gRPC level (unreachable, bad request…). */
export function describeGrpcError(err: unknown, address: string): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number') {
    const e = err as grpc.ServiceError;
    const name = grpc.status[e.code] ?? String(e.code);
    if (e.code === grpc.status.UNAVAILABLE) return `cannot reach ${address} (UNAVAILABLE: ${e.details})`;
    return `${address}: ${name}: ${e.details}`;
  }
  return err instanceof Error ? err.message : String(err);
}
