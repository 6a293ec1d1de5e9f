import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  type AttestResponse__Output,
  type CheckHostResponse__Output,
  type EvaluateResponse__Output,
  type HealthCertIssuerServiceHandlers,
  loadHostgateProtos,
  type PolicyEvaluatorServiceHandlers,
  type QuoteCollectorServiceHandlers,
  type ReplayResponse__Output,
  type EventlogReplayerServiceHandlers,
  SERVICE_NAMES,
  timestampFromDate,
  type WatchFleetResponse__Output,
} from '../src/index.ts';

// What the brief asks each service to offer (issue 2 item 4 and issue 5); server streams marked.
const REQUIRED_METHODS: Record<keyof typeof SERVICE_NAMES, string[]> = {
  quoteCollector: ['Enroll', 'ActivateEnrollment', 'GetChallenge', 'Attest'],
  eventlogReplayer: ['Replay'],
  policyEvaluator: ['PublishGoldenSet', 'ActivateGoldenSet', 'ListGoldenSets', 'Capture', 'Evaluate'],
  healthCertIssuer: ['CheckHost', 'WatchFleet*', 'GetCaBundle', 'ListCertificates'],
};

test('the package definition has every required method of the four services', () => {
  const { packageDefinition } = loadHostgateProtos();
  for (const [key, methods] of Object.entries(REQUIRED_METHODS)) {
    const service = packageDefinition[SERVICE_NAMES[key as keyof typeof SERVICE_NAMES]] as
      | grpc.ServiceDefinition
      | undefined;
    assert.ok(service, key);
    for (const m of methods) {
      const name = m.replace('*', '');
      const defs: grpc.MethodDefinition<unknown, unknown>[] = Object.values(service);
      const def = defs.find((d) => d.path.endsWith(`/${name}`));
      assert.ok(def, `${key}.${name}`);
      assert.equal(def.responseStream, m.endsWith('*'), `${key}.${name} responseStream`);
      assert.equal(def.requestStream, false);
    }
  }
  assert.equal(loadHostgateProtos(), loadHostgateProtos(), 'loaded once');
});

function call<T>(fn: (cb: (err: grpc.ServiceError | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

test('a grpc-js server and client carry one call of each service', async (t) => {
  const protos = loadHostgateProtos();
  const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<never>) =>
    cb({ code: grpc.status.UNIMPLEMENTED, details: 'stub' }, null);
  const quoteCollector: Partial<QuoteCollectorServiceHandlers> = {
    Attest(c, cb) {
      assert.deepEqual(c.request.nonce, Buffer.alloc(32, 7));
      assert.equal(c.request.quote?.pcrBanks[0]?.hashAlgorithm, 'HASH_ALGORITHM_SHA256');
      if (c.request.akName.length === 0) {
        cb(null, { refused: { refusals: [{ code: 'UNKNOWN_AK', message: 'never enrolled' }] } });
        return;
      }
      cb(null, {
        attestationId: 'a-1',
        hostId: 'h-1',
        certificate: {
          serial: '1f',
          der: Buffer.from([0x30, 0x00]),
          notAfter: timestampFromDate(new Date(3600_000)),
        },
      });
    },
  };
  const replayer: Partial<EventlogReplayerServiceHandlers> = {
    Replay(c, cb) {
      cb(null, {
        replay: {
          match: false,
          eventsAtFault: [4],
          pcrs: [{ pcr: 7, match: false, quoted: c.request.eventLog }],
        },
        refusals: [{ code: 'EVENTLOG_MISMATCH', details: { pcr: '7' } }],
      });
    },
  };
  const evaluator: Partial<PolicyEvaluatorServiceHandlers> = {
    Evaluate(c, cb) {
      assert.equal(c.request.subject, 'hostId');
      cb(null, { verdict: { hostId: c.request.hostId, pass: false, refusals: [{ code: 'NO_POLICY' }] } });
    },
  };
  const issuer: Partial<HealthCertIssuerServiceHandlers> = {
    CheckHost(c, cb) {
      cb(null, { status: { hostId: c.request.hostId, health: 'HOST_HEALTH_HEALTHY', policyVersion: 2 } });
    },
    WatchFleet(c) {
      c.write({
        status: { hostId: 'h-1', health: 'HOST_HEALTH_HEALTHY' },
        cause: 'FLEET_CHANGE_CAUSE_SNAPSHOT',
      });
      c.write({ snapshotComplete: true });
      c.end();
    },
  };
  // Methods a stub leaves out answer UNIMPLEMENTED.
  const withDefaults = (def: grpc.ServiceDefinition, impl: object) => {
    const out: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(def)) {
      out[name] = ((impl as Record<string, grpc.UntypedHandleCall>)[name] ??
        unimplemented) as grpc.UntypedHandleCall;
    }
    return out;
  };

  const server = new grpc.Server();
  server.addService(
    protos.QuoteCollectorService.service,
    withDefaults(protos.QuoteCollectorService.service, quoteCollector),
  );
  server.addService(
    protos.EventlogReplayerService.service,
    withDefaults(protos.EventlogReplayerService.service, replayer),
  );
  server.addService(
    protos.PolicyEvaluatorService.service,
    withDefaults(protos.PolicyEvaluatorService.service, evaluator),
  );
  server.addService(
    protos.HealthCertIssuerService.service,
    withDefaults(protos.HealthCertIssuerService.service, issuer),
  );
  // Port 0: the kernel picks a free loopback port, no race with other tests.
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.after(() => server.forceShutdown());
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  const qc = new protos.QuoteCollectorService(address, creds);
  const er = new protos.EventlogReplayerService(address, creds);
  const pe = new protos.PolicyEvaluatorService(address, creds);
  const hci = new protos.HealthCertIssuerService(address, creds);
  t.after(() => {
    for (const c of [qc, er, pe, hci]) c.close();
  });

  const quote = {
    attest: Buffer.from([1]),
    signature: Buffer.from([2]),
    pcrBanks: [{ hashAlgorithm: 'HASH_ALGORITHM_SHA256' as const }],
  };
  const issued = await call<AttestResponse__Output>((cb) =>
    qc.Attest({ akName: Buffer.from([0, 11, 1]), nonce: Buffer.alloc(32, 7), quote }, cb),
  );
  assert.equal(issued.result, 'certificate');
  assert.deepEqual(issued.certificate?.der, Buffer.from([0x30, 0x00]));
  assert.deepEqual(issued.certificate?.notAfter, { seconds: '3600', nanos: 0 });
  assert.equal(issued.refused, undefined);

  const refused = await call<AttestResponse__Output>((cb) =>
    qc.attest({ nonce: Buffer.alloc(32, 7), quote }, cb),
  );
  assert.equal(refused.result, 'refused');
  assert.deepEqual(
    refused.refused?.refusals.map((r) => r.code),
    ['UNKNOWN_AK'],
  );
  assert.equal(refused.attestationId, '');

  await assert.rejects(
    call((cb) => qc.GetChallenge({ akName: Buffer.from([1]) }, cb)),
    (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED,
  );

  const replay = await call<ReplayResponse__Output>((cb) => er.Replay({ eventLog: Buffer.from('log') }, cb));
  assert.equal(replay.replay?.match, false);
  assert.deepEqual(replay.replay?.eventsAtFault, [4]);
  assert.deepEqual(replay.replay?.pcrs[0]?.quoted, Buffer.from('log'));
  assert.equal(replay.refusals[0]?.code, 'EVENTLOG_MISMATCH');
  assert.deepEqual(replay.refusals[0]?.details, { pcr: '7' });

  const evaluated = await call<EvaluateResponse__Output>((cb) => pe.Evaluate({ hostId: 'h-9' }, cb));
  assert.equal(evaluated.verdict?.hostId, 'h-9');
  assert.equal(evaluated.verdict?.refusals[0]?.code, 'NO_POLICY');

  const health = await call<CheckHostResponse__Output>((cb) => hci.CheckHost({ hostId: 'h-2' }, cb));
  assert.equal(health.status?.health, 'HOST_HEALTH_HEALTHY');
  assert.equal(health.status?.hostId, 'h-2');
  assert.equal(health.status?.policyVersion, 2);

  const changes: WatchFleetResponse__Output[] = [];
  await new Promise<void>((resolve, reject) => {
    const stream = hci.WatchFleet({ includeSnapshot: true });
    stream.on('data', (m: WatchFleetResponse__Output) => changes.push(m));
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  assert.deepEqual(
    changes.map((c) => [c.status?.hostId ?? null, c.cause, c.snapshotComplete]),
    [
      ['h-1', 'FLEET_CHANGE_CAUSE_SNAPSHOT', false],
      [null, 'FLEET_CHANGE_CAUSE_UNSPECIFIED', true],
    ],
  );
});
