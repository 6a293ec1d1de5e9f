// A grpc.health.v1 Check client: what `hostgate health`, tests and readiness probes call.
import * as grpc from '@grpc/grpc-js';
import { healthServiceDefinition, type ServingStatus } from './health.ts';

export interface HealthCheckResult {
  /** SERVING / NOT_SERVING / UNKNOWN from the server, or UNREACHABLE / NOT_FOUND / ERROR from the call. */
  status: ServingStatus | 'UNREACHABLE' | 'NOT_FOUND' | 'ERROR';
  /** Why the call failed, when it did. */
  detail?: string;
}

type CheckClient = grpc.Client & {
  Check(
    req: { service: string },
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: ServingStatus }) => void,
  ): grpc.ClientUnaryCall;
};

let HealthClient: grpc.ServiceClientConstructor | undefined;

/** Calls Check(service) on `address` (host:port, plaintext); never throws. */
export function checkHealth(
  address: string,
  opts: { service?: string; timeoutMs?: number } = {},
): Promise<HealthCheckResult> {
  HealthClient ??= grpc.makeClientConstructor(healthServiceDefinition(), 'grpc.health.v1.Health');
  const client = new HealthClient(address, grpc.credentials.createInsecure()) as unknown as CheckClient;
  const deadline = Date.now() + (opts.timeoutMs ?? 2000);
  return new Promise<HealthCheckResult>((resolve) => {
    client.Check({ service: opts.service ?? '' }, { deadline }, (err, res) => {
      client.close();
      if (err !== null) {
        if (err.code === grpc.status.NOT_FOUND) resolve({ status: 'NOT_FOUND', detail: err.details });
        else if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED)
          resolve({ status: 'UNREACHABLE', detail: err.details });
        else resolve({ status: 'ERROR', detail: `${grpc.status[err.code]}: ${err.details}` });
        return;
      }
      resolve({ status: res?.status ?? 'UNKNOWN' });
    });
  });
}
