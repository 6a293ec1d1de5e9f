// gRPC server bootstrap: binds (127.0.0.1 by default), serves grpc.health.v1 and server
// reflection next to the service's own API, and shuts down by draining first.
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { parseAddress } from './config.ts';
import { traceImplementation } from './grpc-tracing.ts';
import { HealthService, healthPackageDefinition, healthServiceDefinition } from './health.ts';
import type { Logger } from './logger.ts';

export interface GrpcServiceRegistration {
  /** Fully qualified service name, also its health-check name: `hostgate.v1.QuoteCollector`. */
  name: string;
  definition: grpc.ServiceDefinition;
  /** Methods left out answer UNIMPLEMENTED (grpc-js default). */
  implementation: Partial<grpc.UntypedServiceImplementation>;
}

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free port (see `address` on the result). */
  address: string;
  logger: Logger;
  services?: GrpcServiceRegistration[];
  /** proto-loader package definitions to describe through server reflection. */
  reflection?: PackageDefinition[];
  /** Largest request accepted, bytes (evidence carries event logs; default 4 MiB). */
  maxReceiveMessageLength?: number;
}

export interface GrpcServer {
  /** host:port actually bound. */
  readonly address: string;
  readonly port: number;
  readonly health: HealthService;
  /** Marks the server ('') and every registered service SERVING or NOT_SERVING. */
  setServing(serving: boolean): void;
  /**
   * Health to NOT_SERVING, ends Watch streams, lets in-flight calls finish for up to
   * `graceMs`, then cancels what is left. Idempotent.
   */
  shutdown(graceMs?: number): Promise<void>;
}

export class GrpcBindError extends Error {
  override readonly name = 'GrpcBindError';
  readonly code = 'GRPC_BIND_FAILED';
  readonly address: string;
  constructor(address: string, cause: unknown) {
    // grpc-js only says "No address added": name the likely cause.
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`cannot listen on ${address} (port in use, or not a local address): ${detail}`, { cause });
    this.address = address;
  }
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const { host } = parseAddress(opts.address);
  // grpc-js writes its own diagnostics to stderr; keep them in the structured log (process-wide).
  grpc.setLogger({
    error: (...args: unknown[]) => opts.logger.warn({ source: 'grpc-js' }, format(...args)),
  } as unknown as Partial<Console>);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxReceiveMessageLength ?? 4 * 1024 * 1024,
  });
  const health = new HealthService();
  const names = ['', ...(opts.services ?? []).map((s) => s.name)];
  for (const name of names) health.setStatus(name, 'NOT_SERVING');
  server.addService(healthServiceDefinition(), health.implementation());
  for (const s of opts.services ?? []) {
    const implemented = Object.entries(s.implementation).filter(([, h]) => h !== undefined);
    // Each call runs in its caller's trace context (W3C traceparent in metadata).
    const impl = Object.fromEntries(implemented) as grpc.UntypedServiceImplementation;
    server.addService(s.definition, traceImplementation(s.definition, impl, opts.logger));
  }
  const described = [healthPackageDefinition(), ...(opts.reflection ?? [])];
  new ReflectionService(Object.assign({}, ...described) as PackageDefinition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.address, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new GrpcBindError(opts.address, err)) : resolve(p),
    );
  });
  const bound = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  opts.logger.debug({ address: bound, services: names.slice(1) }, 'grpc server bound');

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      health.drain();
      const timer = setTimeout(() => {
        opts.logger.warn(
          { address: bound, graceMs },
          'grpc calls still running after grace period; cancelling',
        );
        server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return stopping;
  };

  return {
    address: bound,
    port,
    health,
    setServing: (serving) => {
      for (const name of names) health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
    },
    shutdown,
  };
}
