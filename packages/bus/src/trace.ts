import { context, propagation, type Context } from '@opentelemetry/api';
import type { BusHeaders } from './types.ts';

/** Adds the active trace context (W3C traceparent, tracestate, baggage) unless the caller set it. */
export function withTraceHeaders(headers: BusHeaders | undefined): BusHeaders {
  const out: BusHeaders = { ...headers };
  if (out['traceparent'] === undefined) propagation.inject(context.active(), out);
  return out;
}

/** The trace context a message carries, to run its handler in. */
export function traceContextOf(headers: BusHeaders): Context {
  return propagation.extract(context.active(), headers);
}
