// OpenTelemetry: the SDK runs only when OTEL_EXPORTER_OTLP_ENDPOINT is set (an exporter with
// nowhere to send would only burn CPU), but W3C trace context is always propagated so a
// trace that enters through one service continues through gRPC metadata and Kafka headers.
import {
  type Context,
  context,
  propagation,
  type TextMapGetter,
  type TextMapSetter,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { Metadata } from '@grpc/grpc-js';

export interface Telemetry {
  /** True when the SDK was started and spans are exported. */
  readonly enabled: boolean;
  tracer(name: string): Tracer;
  /** Flushes pending spans; safe to call more than once. */
  shutdown(): Promise<void>;
}

let fallbackPropagatorInstalled = false;
let contextManagerInstalled = false;

/**
 * Keeps the active context across awaits (AsyncLocalStorage) even without the SDK, so a
 * trace that arrives in gRPC metadata reaches the Kafka headers of what the handler publishes.
 */
export function ensureContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/**
 * Installs W3C trace-context + baggage propagation unless a propagator is already registered
 * (the OTel API refuses a second registration), so context passes through even without the SDK.
 */
export function ensurePropagator(): void {
  if (fallbackPropagatorInstalled) return;
  fallbackPropagatorInstalled = true;
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
}

export interface TelemetryOptions {
  serviceName: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts the NodeSDK (traces via OTLP, configured by the standard OTEL_* variables) when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise returns a no-op handle. Loads the SDK lazily
 * so a process without telemetry never pays for it.
 */
export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  const env = opts.env ?? process.env;
  const endpoint = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (endpoint === undefined || endpoint === '') {
    ensurePropagator();
    ensureContextManager();
    return { enabled: false, tracer: (name) => trace.getTracer(name), shutdown: async () => {} };
  }
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env['OTEL_SERVICE_NAME'] ?? opts.serviceName });
  sdk.start();
  fallbackPropagatorInstalled = true;
  contextManagerInstalled = true;
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    tracer: (name) => trace.getTracer(name),
    shutdown: () => {
      done ??= sdk.shutdown();
      return done;
    },
  };
}

const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key).filter((v): v is string => typeof v === 'string');
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  },
};

/** Writes the trace context of `ctx` (default: the active one) into gRPC metadata; returns it. */
export function injectToMetadata(
  metadata: Metadata = new Metadata(),
  ctx: Context = context.active(),
): Metadata {
  ensurePropagator();
  propagation.inject(ctx, metadata, metadataSetter);
  return metadata;
}

/** The context a caller sent in gRPC metadata, on top of `base` (default: the active one). */
export function extractFromMetadata(metadata: Metadata, base: Context = context.active()): Context {
  ensurePropagator();
  return propagation.extract(base, metadata, metadataGetter);
}

/** Kafka record headers as the bus hands them over: plain strings. */
export type Headers = Record<string, string>;

const headersSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

const headersGetter: TextMapGetter<Headers> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    // Header names are case-insensitive on the wire in practice; producers may capitalise.
    if (Object.hasOwn(carrier, key)) return carrier[key];
    const lower = key.toLowerCase();
    for (const [k, v] of Object.entries(carrier)) if (k.toLowerCase() === lower) return v;
    return undefined;
  },
};

/** Adds the trace context of `ctx` (default: the active one) to message headers; returns them. */
export function injectToHeaders(headers: Headers = {}, ctx: Context = context.active()): Headers {
  ensurePropagator();
  propagation.inject(ctx, headers, headersSetter);
  return headers;
}

/** The context a producer put in message headers, on top of `base` (default: the active one). */
export function extractFromHeaders(headers: Headers, base: Context = context.active()): Context {
  ensurePropagator();
  return propagation.extract(base, headers, headersGetter);
}
