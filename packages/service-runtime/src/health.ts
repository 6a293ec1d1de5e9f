// grpc.health.v1 (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): Check,
// Watch and List. Our own implementation rather than grpc-health-check's so a draining
// server can tell watchers NOT_SERVING and then end their streams — an open Watch would
// otherwise hold a graceful shutdown until its deadline.
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const require = createRequire(import.meta.url);
/** health.proto as published by the grpc-node project (grpc-health-check package). */
export const healthProtoPath: string = (require('grpc-health-check') as { protoPath: string }).protoPath;

export const healthLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** The proto-loader package definition of grpc.health.v1 (for clients and reflection). */
export function healthPackageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync(healthProtoPath, healthLoaderOptions);
  return cachedDefinition;
}

export function healthServiceDefinition(): grpc.ServiceDefinition {
  const def = healthPackageDefinition()['grpc.health.v1.Health'];
  if (def === undefined || !('Check' in def))
    throw new Error('grpc.health.v1.Health missing from health.proto');
  return def as unknown as grpc.ServiceDefinition;
}

interface CheckRequest {
  service?: string;
}
interface CheckResponse {
  status: ServingStatus;
}

/** Holds the status of the server ('') and of each named service. */
export class HealthService {
  readonly #status = new Map<string, ServingStatus>();
  readonly #watchers = new Map<string, Set<grpc.ServerWritableStream<CheckRequest, CheckResponse>>>();
  static readonly maxWatchersPerService = 100;

  setStatus(service: string, status: Exclude<ServingStatus, 'SERVICE_UNKNOWN'>): void {
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    for (const call of this.#watchers.get(service) ?? []) call.write({ status });
  }

  getStatus(service: string): ServingStatus | undefined {
    return this.#status.get(service);
  }

  /** Every status to NOT_SERVING, then ends all Watch streams so shutdown can proceed. */
  drain(): void {
    for (const service of this.#status.keys()) this.setStatus(service, 'NOT_SERVING');
    for (const calls of this.#watchers.values()) for (const call of calls) call.end();
    this.#watchers.clear();
  }

  implementation(): grpc.UntypedServiceImplementation {
    const check: grpc.handleUnaryCall<CheckRequest, CheckResponse> = (call, callback) => {
      const service = call.request.service ?? '';
      const status = this.#status.get(service);
      if (status === undefined) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${service.slice(0, 200)}'` });
        return;
      }
      callback(null, { status });
    };
    const watch: grpc.handleServerStreamingCall<CheckRequest, CheckResponse> = (call) => {
      const service = call.request.service ?? '';
      let set = this.#watchers.get(service);
      if (set === undefined) {
        set = new Set();
        this.#watchers.set(service, set);
      }
      if (set.size >= HealthService.maxWatchersPerService) {
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many watchers' });
        return;
      }
      const watchers = set;
      watchers.add(call);
      const remove = () => watchers.delete(call);
      call.on('cancelled', remove);
      call.on('close', remove);
      call.write({ status: this.#status.get(service) ?? 'SERVICE_UNKNOWN' });
    };
    const list: grpc.handleUnaryCall<object, { statuses: Record<string, CheckResponse> }> = (
      _call,
      callback,
    ) => {
      const statuses: Record<string, CheckResponse> = {};
      for (const [name, status] of this.#status) statuses[name] = { status };
      callback(null, { statuses });
    };
    return { Check: check, Watch: watch, List: list } as grpc.UntypedServiceImplementation;
  }
}
