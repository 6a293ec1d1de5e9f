import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as setTimeoutP } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isPortFree } from '@hostgate/testkit/ports';
import {
  checkHealth,
  createLogger,
  extractFromMetadata,
  healthPackageDefinition,
  injectToHeaders,
  injectToMetadata,
  startGrpcServer,
} from '../src/index.ts';
import { context, isSpanContextValid, type SpanContext, trace } from '@opentelemetry/api';

const logger = createLogger({
  service: 'test',
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

// A tiny echo service defined in the test, so the server is exercised with a real API next to health.
const echoProto = path.join(import.meta.dirname, 'fixtures', 'echo.proto');
const echoPkg = protoLoader.loadSync(echoProto, { keepCase: true });
const echoDef = echoPkg['test.v1.Echo'] as unknown as grpc.ServiceDefinition;

type Unary = (
  req: object,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r?: { text: string }) => void,
) => void;

function echoClient(address: string) {
  const Ctor = grpc.makeClientConstructor(echoDef, 'test.v1.Echo');
  return new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Say: Unary;
    Slow: Unary;
  };
}

function call(fn: Unary, client: grpc.Client, req: object, md = new grpc.Metadata()) {
  return new Promise<{ text: string }>((resolve, reject) =>
    fn.call(client, req, md, {}, (e, r) => (e ? reject(e) : resolve(r ?? { text: '' }))),
  );
}

async function startEcho(onSlow?: () => void) {
  return startGrpcServer({
    address: '127.0.0.1:0',
    logger,
    services: [
      {
        name: 'test.v1.Echo',
        definition: echoDef,
        implementation: {
          Say: (c: grpc.ServerUnaryCall<{ text: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
            // The caller's trace id three ways: read from metadata by hand, as the active span
            // after an await (set by the server wrapper), and in headers a publish would carry.
            const idOf = (sc: SpanContext | undefined) =>
              sc !== undefined && isSpanContextValid(sc) ? sc.traceId : '';
            const fromMetadata = idOf(trace.getSpanContext(extractFromMetadata(c.metadata)));
            void setTimeoutP(1).then(() => {
              const active = idOf(trace.getSpanContext(context.active()));
              const header = injectToHeaders()['traceparent']?.split('-')[1] ?? '';
              cb(null, { text: `${c.request.text}|${fromMetadata}|${active}|${header}` });
            });
          },
          Slow: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
            onSlow?.();
            setTimeout(() => cb(null, { text: 'slow done' }), 300);
          },
        },
      },
    ],
    reflection: [echoPkg],
  });
}

test('binds 127.0.0.1 on a free port; health is NOT_SERVING until setServing(true)', async (t) => {
  const server = await startEcho();
  t.after(() => server.shutdown(1000));
  assert.match(server.address, /^127\.0\.0\.1:\d+$/);
  assert.equal((await checkHealth(server.address)).status, 'NOT_SERVING');
  server.setServing(true);
  assert.equal((await checkHealth(server.address)).status, 'SERVING');
  assert.equal((await checkHealth(server.address, { service: 'test.v1.Echo' })).status, 'SERVING');
  assert.equal((await checkHealth(server.address, { service: 'no.such.Service' })).status, 'NOT_FOUND');
  server.setServing(false);
  assert.equal((await checkHealth(server.address)).status, 'NOT_SERVING');
});

test('checkHealth reports an address nobody listens on as UNREACHABLE', async () => {
  const server = await startEcho();
  const address = server.address;
  await server.shutdown(1000);
  const r = await checkHealth(address, { timeoutMs: 1000 });
  assert.equal(r.status, 'UNREACHABLE');
});

test('Watch streams status changes and ends when the server drains', async () => {
  const server = await startEcho();
  const Health = grpc.makeClientConstructor(
    healthPackageDefinition()['grpc.health.v1.Health'] as unknown as grpc.ServiceDefinition,
    'Health',
  );
  const client = new Health(server.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Watch(req: object): grpc.ClientReadableStream<{ status: string }>;
  };
  const seen: string[] = [];
  const stream = client.Watch({ service: '' });
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('error', () => resolve());
  });
  stream.on('data', (m: { status: string }) => {
    seen.push(m.status);
    if (seen.length === 1) server.setServing(true);
    if (seen.length === 2) void server.shutdown(5000);
  });
  const t0 = Date.now();
  await ended;
  client.close();
  assert.deepEqual(seen, ['NOT_SERVING', 'SERVING', 'NOT_SERVING']);
  // The open Watch must not hold shutdown until its grace period.
  assert.ok(Date.now() - t0 < 3000, `drain took ${Date.now() - t0} ms`);
});

test('graceful shutdown lets an in-flight call finish, refuses new ones, frees the port', async () => {
  let slowStarted!: () => void;
  const started = new Promise<void>((r) => {
    slowStarted = r;
  });
  const server = await startEcho(() => slowStarted());
  server.setServing(true);
  const client = echoClient(server.address);
  const inflight = call(client.Slow, client, {});
  await started;
  const stopped = server.shutdown(5000);
  const late = await call(client.Say, client, { text: 'late' }).then(
    () => 'answered',
    (e: grpc.ServiceError) => grpc.status[e.code],
  );
  assert.deepEqual(await inflight, { text: 'slow done' });
  await stopped;
  client.close();
  assert.notEqual(late, 'answered');
  assert.equal(await isPortFree(server.port), true);
});

test('shutdown cancels calls still running after the grace period', async () => {
  const server = await startEcho();
  const client = echoClient(server.address);
  const inflight = call(client.Slow, client, {}).then(
    () => 'finished',
    (e: grpc.ServiceError) => grpc.status[e.code],
  );
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await server.shutdown(50);
  assert.ok(Date.now() - t0 < 250, 'did not wait for the 300 ms handler');
  assert.equal(await inflight, 'CANCELLED');
  client.close();
});

test('trace context crosses gRPC metadata into the handler (across awaits) and on to message headers', async (t) => {
  const server = await startEcho();
  t.after(() => server.shutdown(1000));
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = trace.setSpanContext(context.active(), {
    traceId,
    spanId: '00f067aa0ba902b7',
    traceFlags: 1,
    isRemote: false,
  });
  const md = injectToMetadata(new grpc.Metadata(), parent);
  assert.equal(md.get('traceparent')[0], `00-${traceId}-00f067aa0ba902b7-01`);
  const client = echoClient(server.address);
  const r = await call(client.Say, client, { text: 'hi' }, md);
  assert.equal(r.text, `hi|${traceId}|${traceId}|${traceId}`);
  // Without a caller trace the handler runs in none.
  const plain = await call(client.Say, client, { text: 'x' });
  client.close();
  assert.equal(plain.text, 'x|||');
});

type ReflectionReply = { list_services_response?: { service: { name: string }[] } };

test('server reflection lists the health service and the registered API', async (t) => {
  const server = await startEcho();
  t.after(() => server.shutdown(1000));
  const require = createRequire(import.meta.url);
  const reflectionProto = path.join(
    path.dirname(require.resolve('@grpc/reflection/package.json')),
    'build/proto/grpc/reflection/v1/reflection.proto',
  );
  const pkg = protoLoader.loadSync(reflectionProto, { keepCase: true, oneofs: true });
  const Reflection = grpc.makeClientConstructor(
    pkg['grpc.reflection.v1.ServerReflection'] as unknown as grpc.ServiceDefinition,
    'ServerReflection',
  );
  const client = new Reflection(
    server.address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionReply>;
  };
  const stream = client.ServerReflectionInfo();
  const names = await new Promise<string[]>((resolve, reject) => {
    stream.on('data', (m: ReflectionReply) => {
      resolve((m.list_services_response?.service ?? []).map((s) => s.name));
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ list_services: '' });
  });
  client.close();
  assert.ok(names.includes('grpc.health.v1.Health'), names.join());
  assert.ok(names.includes('test.v1.Echo'), names.join());
});

test('each call is logged at debug level with its method, status and duration', async (t) => {
  const lines: string[] = [];
  const capture = createLogger({
    service: 'test',
    level: 'debug',
    destination: new Writable({
      write: (chunk: Buffer, _e, cb) => {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  const server = await startGrpcServer({
    address: '127.0.0.1:0',
    logger: capture,
    services: [{ name: 'test.v1.Echo', definition: echoDef, implementation: {} }],
  });
  t.after(() => server.shutdown(1000));
  const client = echoClient(server.address);
  const code = await call(client.Say, client, { text: 'x' }).then(
    () => 'OK',
    (e: grpc.ServiceError) => grpc.status[e.code],
  );
  client.close();
  // Unimplemented methods are not wrapped (grpc-js answers them); implement one and call it.
  assert.equal(code, 'UNIMPLEMENTED');
  const server2 = await startGrpcServer({
    address: '127.0.0.1:0',
    logger: capture,
    services: [
      {
        name: 'test.v1.Echo',
        definition: echoDef,
        implementation: {
          Say: (_c: unknown, cb: grpc.sendUnaryData<unknown>) =>
            cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no' }),
        },
      },
    ],
  });
  t.after(() => server2.shutdown(1000));
  const client2 = echoClient(server2.address);
  await call(client2.Say, client2, { text: 'x' }).catch(() => {});
  client2.close();
  const rpc = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r['msg'] === 'rpc');
  assert.equal(rpc.length, 1);
  assert.equal(rpc[0]?.['rpc'], '/test.v1.Echo/Say');
  assert.equal(rpc[0]?.['code'], 'FAILED_PRECONDITION');
  assert.equal(typeof rpc[0]?.['ms'], 'number');
});
