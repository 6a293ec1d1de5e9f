import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { context, trace } from '@opentelemetry/api';
import { extractFromHeaders, injectToHeaders, startTelemetry } from '../src/index.ts';

const traceId = '0af7651916cd43dd8448eb211c80319c';
const spanId = 'b7ad6b7169203331';

test('without OTEL_EXPORTER_OTLP_ENDPOINT telemetry is off but trace context still crosses Kafka headers', async () => {
  const tel = await startTelemetry({ serviceName: 'test', env: {} });
  assert.equal(tel.enabled, false);
  const ctx = trace.setSpanContext(context.active(), { traceId, spanId, traceFlags: 1 });
  const headers = injectToHeaders({ 'content-type': 'application/x-protobuf' }, ctx);
  assert.equal(headers['traceparent'], `00-${traceId}-${spanId}-01`);
  assert.equal(headers['content-type'], 'application/x-protobuf');
  // A consumer continues the producer's trace, whatever case the header name arrived in.
  const back = trace.getSpanContext(extractFromHeaders({ TraceParent: headers['traceparent'] ?? '' }));
  assert.equal(back?.traceId, traceId);
  assert.equal(back?.spanId, spanId);
  assert.equal(back?.isRemote, true);
  // Garbage in the header yields no parent rather than an exception.
  assert.equal(trace.getSpanContext(extractFromHeaders({ traceparent: 'zz-not-a-trace' })), undefined);
  await tel.shutdown();
});

test('with OTEL_EXPORTER_OTLP_ENDPOINT the SDK exports spans over OTLP/HTTP to it', async (t) => {
  const paths: string[] = [];
  const collector = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.after(() => collector.close());
  const addr = collector.address();
  assert.ok(addr !== null && typeof addr === 'object');
  const endpoint = `http://127.0.0.1:${addr.port}`;
  // The SDK reads its exporter settings from process.env.
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = endpoint;
  process.env['OTEL_METRICS_EXPORTER'] = 'none';
  process.env['OTEL_LOGS_EXPORTER'] = 'none';
  const tel = await startTelemetry({ serviceName: 'hostgate-test' });
  assert.equal(tel.enabled, true);
  tel.tracer('test').startActiveSpan('unit-of-work', (span) => {
    assert.equal(injectToHeaders()['traceparent']?.split('-')[1], span.spanContext().traceId);
    span.end();
  });
  await tel.shutdown();
  assert.ok(paths.includes('/v1/traces'), `collector saw ${JSON.stringify(paths)}`);
});
