// Server side of trace propagation: every incoming call runs in the context its caller sent
// in gRPC metadata, inside a SERVER span named after the method (a no-op span without the SDK,
// which still carries the caller's trace id on to whatever the handler publishes). Each call
// also lands in the rpc.server.duration histogram and, at debug level, in the log.
import * as grpc from '@grpc/grpc-js';
import { context, metrics, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from './logger.ts';
import { ensureContextManager, extractFromMetadata } from './telemetry.ts';

const SCOPE = '@hostgate/service-runtime';
const tracer = () => trace.getTracer(SCOPE);
type Histogram = ReturnType<ReturnType<typeof metrics.getMeter>['createHistogram']>;
let duration: Histogram | undefined;

function endSpan(span: Span, code: grpc.status, message?: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (code !== grpc.status.OK)
    span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? grpc.status[code] });
  span.end();
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> & NodeJS.EventEmitter;
type AnyHandler = (call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => void;

function traced(
  path: string,
  method: grpc.MethodDefinition<unknown, unknown>,
  handler: AnyHandler,
  logger: Logger | undefined,
): AnyHandler {
  const [, service = '', name = ''] = /^\/([^/]+)\/([^/]+)$/.exec(path) ?? [];
  // Created on first use: by then the meter provider is the SDK's when telemetry is on.
  duration ??= metrics
    .getMeter(SCOPE)
    .createHistogram('rpc.server.duration', { unit: 'ms', description: 'gRPC server call duration' });
  const histogram = duration;
  return (call, callback) => {
    const started = performance.now();
    const parent = extractFromMetadata(call.metadata);
    const span = tracer().startSpan(
      path.slice(1),
      {
        kind: SpanKind.SERVER,
        attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': name },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    let ended = false;
    const finish = (code: grpc.status, message?: string) => {
      if (ended) return;
      ended = true;
      endSpan(span, code, message);
      const ms = performance.now() - started;
      histogram.record(ms, { 'rpc.service': service, 'rpc.method': name, 'rpc.grpc.status_code': code });
      logger?.debug({ rpc: path, code: grpc.status[code], ms: Math.round(ms * 10) / 10 }, 'rpc');
    };
    if (method.responseStream) {
      call.once('finish', () => finish(grpc.status.OK));
      call.once('error', (e: Partial<grpc.ServiceError>) => finish(e.code ?? grpc.status.UNKNOWN, e.details));
      call.once('cancelled', () => finish(grpc.status.CANCELLED));
      context.with(ctx, () => handler(call));
      return;
    }
    const cb: grpc.sendUnaryData<unknown> = (err, value, trailer, flags) => {
      const e = err as Partial<grpc.ServiceError> | null;
      finish(e === null ? grpc.status.OK : (e.code ?? grpc.status.UNKNOWN), e?.details ?? e?.message);
      callback?.(err, value, trailer, flags);
    };
    call.once('cancelled', () => finish(grpc.status.CANCELLED));
    context.with(ctx, () => handler(call, cb));
  };
}

/** The implementation with every handler wrapped to run in its caller's trace context. */
export function traceImplementation(
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  logger?: Logger,
): grpc.UntypedServiceImplementation {
  ensureContextManager();
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = definition[name];
    out[name] =
      method === undefined
        ? handler
        : (traced(
            method.path,
            method as grpc.MethodDefinition<unknown, unknown>,
            handler as AnyHandler,
            logger,
          ) as grpc.UntypedHandleCall);
  }
  return out;
}
