import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { isPortFree } from './ports.ts';

/** What every service's `start` returns, as far as its start test cares. */
export interface StartedService {
  readonly address: string;
  stop(): Promise<void>;
}

/** A health check as `checkHealth` of @hostgate/service-runtime does it (passed in: testkit must not depend on it). */
export type HealthCheck = (address: string, opts?: { service?: string }) => Promise<{ status: string }>;

/**
 * The address contract of a service: `defaultAddress` is `expected`, it is what an empty
 * environment yields, and `envVar` overrides it.
 */
function assertAddressConfig(opts: {
  defaultAddress: string;
  expected: string;
  envVar: string;
  load: (env: Record<string, string>) => { address: string };
}): void {
  assert.equal(opts.defaultAddress, opts.expected);
  assert.equal(opts.load({}).address, opts.defaultAddress);
  assert.equal(opts.load({ [opts.envVar]: '127.0.0.1:0' }).address, '127.0.0.1:0');
}

/**
 * Starts a service, checks that overall health and `serviceName` report SERVING, runs the
 * service's own API `probe`, then stops it and checks its port is free again. The service is
 * stopped by a `t.after` hook too when an assertion fails first.
 */
async function assertStartServesAndStops(
  t: TestContext,
  opts: {
    start: () => Promise<StartedService>;
    checkHealth: HealthCheck;
    serviceName: string;
    probe: (address: string) => Promise<void>;
  },
): Promise<void> {
  const svc = await opts.start();
  let stopped = false;
  t.after(() => (stopped ? undefined : svc.stop()));
  assert.equal((await opts.checkHealth(svc.address)).status, 'SERVING');
  assert.equal((await opts.checkHealth(svc.address, { service: opts.serviceName })).status, 'SERVING');
  await opts.probe(svc.address);
  const port = Number(svc.address.split(':')[1]);
  await svc.stop();
  stopped = true;
  assert.equal(await isPortFree(port), true);
}

/**
 * The two start tests every service has: its address contract (`assertAddressConfig`) and
 * `assertStartServesAndStops` on a config loaded with `envVar` = 127.0.0.1:0. `start` receives the
 * test context to open (and `t.after`-close) what the service needs, in that order.
 */
export function serviceStartTests<C extends { address: string }>(opts: {
  defaultAddress: string;
  expected: string;
  envVar: string;
  load: (env: Record<string, string>) => C;
  start: (t: TestContext, config: C) => Promise<StartedService>;
  checkHealth: HealthCheck;
  serviceName: string;
  probe: (t: TestContext, address: string) => Promise<void>;
}): void {
  test(`default address is ${opts.expected}, overridden by ${opts.envVar}`, () => {
    assertAddressConfig(opts);
  });
  test('start serves health SERVING and its API; stop frees the port', async (t) => {
    await assertStartServesAndStops(t, {
      start: () => opts.start(t, opts.load({ [opts.envVar]: '127.0.0.1:0' })),
      checkHealth: opts.checkHealth,
      serviceName: opts.serviceName,
      probe: (address) => opts.probe(t, address),
    });
  });
}

/**
 * Calls the first method of `service` with an empty request and resolves the gRPC status code it
 * ends with (UNIMPLEMENTED when the service is not registered).
 */
export async function firstMethodStatus(address: string, service: grpc.ServiceDefinition): Promise<number> {
  const [method, spec] = Object.entries(service)[0] ?? [];
  assert.ok(method !== undefined && spec !== undefined);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<number>((resolve) => {
      const onDone = (err: grpc.ServiceError | null) => resolve(err?.code ?? grpc.status.OK);
      if (spec.responseStream) {
        const call = client.makeServerStreamRequest(
          spec.path,
          spec.requestSerialize,
          spec.responseDeserialize,
          {},
        );
        call.on('error', (e: grpc.ServiceError) => onDone(e));
        call.on('end', () => onDone(null));
        call.on('data', () => {});
      } else client.makeUnaryRequest(spec.path, spec.requestSerialize, spec.responseDeserialize, {}, onDone);
    });
  } finally {
    client.close();
  }
}
