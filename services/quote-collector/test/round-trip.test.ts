// Attest as the agent sees it: one gRPC call that publishes Evidence and returns what the pipeline
// decided. A fake downstream on the in-process bus answers each Evidence with a CertificateEvent.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type Bus, InProcessBus } from '@hostgate/bus';
import {
  type AttestRequest__Output,
  type AttestResponse__Output,
  type CertificateEvent,
  decodeEvidence,
  decodeSocEvent,
  encodeCertificateEvent,
  type Evidence__Output,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type QuoteCollectorServiceClient,
  type SocEvent__Output,
  timestampFromDate,
} from '@hostgate/protos';
import { loadServiceConfig, openEmbeddedPostgres } from '@hostgate/service-runtime';
import { softwareAk } from '@hostgate/tpm2-js-lite/testing';
import { QuoteCollector } from '../src/collector.ts';
import { configSchema, requiredPcrSelection, SERVICE_NAME } from '../src/config.ts';
import { start } from '../src/service.ts';
import { QuoteCollectorStore } from '../src/store.ts';
import { attestRequest, enrollSoftwareAk, silentLogger } from './helpers.ts';

type Answer = (e: Evidence__Output) => Partial<CertificateEvent> | undefined;

async function setup(
  t: { after(fn: () => Promise<void> | void): void },
  answer: Answer,
  env: Record<string, string> = {},
) {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const db = embedded.db('quote_collector');
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '127.0.0.1:0', ...env },
  );
  const svc = await start(config, { logger: silentLogger, bus, db });
  t.after(() => svc.stop());
  const seen: Evidence__Output[] = [];
  await fakeDownstream(bus, (e) => {
    seen.push(e);
    return answer(e);
  });
  const protos = loadHostgateProtos();
  const client = new protos.QuoteCollectorService(svc.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  // Hosts are enrolled straight into the same store (enrollment itself is tested with swtpm).
  const collector = new QuoteCollector({
    store: new QuoteCollectorStore(db),
    ekRoots: [],
    nonceTtlMs: 60_000,
    enrollmentTtlMs: 60_000,
    pcrSelection: requiredPcrSelection(config),
  });
  return { client, collector, seen, bus };
}

/** Stands in for replayer + evaluator + issuer: one CertificateEvent per Evidence. */
async function fakeDownstream(bus: Bus, answer: Answer): Promise<void> {
  await bus.subscribe({
    topic: KAFKA_TOPICS.evidence,
    group: 'fake-downstream',
    handler: async (m) => {
      const e = decodeEvidence(m.value);
      const event = answer(e);
      if (event === undefined) return;
      await bus.publish(
        KAFKA_TOPICS.certificates,
        e.hostId,
        encodeCertificateEvent({
          eventId: randomUUID(),
          hostId: e.hostId,
          attestationId: e.attestationId,
          time: timestampFromDate(new Date()),
          ...event,
        }),
      );
    },
  });
}

function call<Req, Res>(
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, (err, res) => (err || res === undefined ? reject(err) : resolve(res))),
  );
}

async function attestOnce(
  client: QuoteCollectorServiceClient,
  build: (nonce: Uint8Array) => AttestRequest__Output,
  akName: Uint8Array,
): Promise<AttestResponse__Output> {
  const ch = await call(client.GetChallenge.bind(client), { akName });
  assert.deepEqual(ch.pcrSelection, [
    { hashAlgorithm: 'HASH_ALGORITHM_SHA256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] },
  ]);
  return call(client.Attest.bind(client), build(ch.nonce));
}

test('ISSUED: Attest returns the certificate of its own attestation id; the Evidence carries every field', async (t) => {
  const { client, collector, seen } = await setup(t, (e) => ({
    type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
    certificate: {
      serial: 'abc',
      hostId: e.hostId,
      der: Buffer.from([0x30, 0x03, 1, 2, 3]),
      attestationId: e.attestationId,
      policyClass: 'default',
      policyVersion: 3,
    },
  }));
  const ak = softwareAk('p256');
  const hostId = await enrollSoftwareAk(collector, ak);
  const eventLog = new Uint8Array([9, 8, 7, 6]);
  const res = await attestOnce(client, (nonce) => attestRequest({ ak, nonce, eventLog }), ak.name);
  assert.equal(res.result, 'certificate', JSON.stringify(res.refused));
  assert.equal(res.hostId, hostId);
  assert.equal(res.certificate?.attestationId, res.attestationId);
  assert.equal(res.certificate?.policyVersion, 3);
  assert.equal(seen.length, 1);
  const e = seen[0]!;
  assert.equal(e.attestationId, res.attestationId);
  assert.equal(e.hostId, hostId);
  assert.ok(e.receivedAt !== null);
  assert.equal(e.nonce.length, 32);
  assert.ok(e.quote !== null && e.quote.attest.length > 0 && e.quote.signature.length > 0);
  assert.equal(e.quote.pcrBanks[0]?.pcrs.length, 8);
  assert.equal(e.quoteInfo?.pcrDigest.length, 32);
  assert.deepEqual(Buffer.from(e.quoteInfo?.akName ?? []), Buffer.from(ak.name));
  assert.deepEqual([...e.eventLog], [...eventLog]);
  assert.ok(e.certifiedKey !== null && e.certifiedKey.keyPublic.length > 0);
  assert.deepEqual(Buffer.from(e.akPublic), Buffer.from(ak.publicBytes));
  // The registry shows the host and its counters.
  const host = await call(client.GetHost.bind(client), { hostId });
  assert.equal(host.host?.state, 'HOST_STATE_ACTIVE');
  assert.equal(host.host?.lastQuoteInfo?.clock, '123456789');
  const list = await call(client.ListHosts.bind(client), { pageSize: 10 });
  assert.deepEqual(
    list.hosts.map((h) => h.hostId),
    [hostId],
  );
});

test('REFUSED: every reason the pipeline gave comes back; a collector refusal publishes no Evidence, only a SOC event', async (t) => {
  const { client, collector, seen, bus } = await setup(t, () => ({
    type: 'CERTIFICATE_EVENT_TYPE_REFUSED',
    refusals: [
      { code: 'SECURE_BOOT_OFF', message: 'Secure Boot is disabled' },
      { code: 'FORBIDDEN_DIGEST', message: 'grub 2.02 is forbidden', details: { event_index: '17' } },
    ],
  }));
  const ak = softwareAk('p256');
  await enrollSoftwareAk(collector, ak);
  const res = await attestOnce(client, (nonce) => attestRequest({ ak, nonce }), ak.name);
  assert.equal(res.result, 'refused');
  assert.deepEqual(
    res.refused?.refusals.map((r) => [r.code, r.message]),
    [
      ['SECURE_BOOT_OFF', 'Secure Boot is disabled'],
      ['FORBIDDEN_DIGEST', 'grub 2.02 is forbidden'],
    ],
  );
  assert.equal(res.refused?.refusals[1]?.details['event_index'], '17');
  assert.notEqual(res.attestationId, '');

  const soc: { key: string; event: SocEvent__Output }[] = [];
  await bus.subscribe({
    topic: KAFKA_TOPICS.events,
    group: 'soc',
    handler: async (m) => {
      soc.push({ key: m.key, event: decodeSocEvent(m.value) });
    },
  });
  const stranger = softwareAk('p256');
  const unknown = await attestOnce(client, (nonce) => attestRequest({ ak: stranger, nonce }), stranger.name);
  assert.deepEqual(
    unknown.refused?.refusals.map((r) => r.code),
    ['UNKNOWN_AK'],
  );
  // Refusals only the collector sees still reach the SOC feed.
  for (let i = 0; i < 50 && soc.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(soc.length, 1);
  assert.equal(soc[0]?.key, 'unknown-host');
  assert.equal(soc[0]?.event.type, 'io.hostgate.attestation.refused.v1');
  assert.equal(soc[0]?.event.source, '/hostgate/quote-collector');
  assert.deepEqual(
    soc[0]?.event.data?.refusals.map((r) => r.code),
    ['UNKNOWN_AK'],
  );
  assert.equal(unknown.attestationId, '');
  assert.equal(seen.length, 1);
});

test('TIMEOUT when nothing answers within attestTimeoutMs; HOST_DISABLED after SetHostState', async (t) => {
  const { client, collector } = await setup(t, () => undefined, {
    HOSTGATE_QUOTE_COLLECTOR_ATTEST_TIMEOUT_MS: '300',
  });
  const ak = softwareAk('p256');
  const hostId = await enrollSoftwareAk(collector, ak);
  const started = Date.now();
  const res = await attestOnce(
    client,
    (nonce) => attestRequest({ ak, nonce, clock: { clock: 1n } }),
    ak.name,
  );
  assert.deepEqual(
    res.refused?.refusals.map((r) => r.code),
    ['TIMEOUT'],
  );
  assert.ok(Date.now() - started < 5000);
  assert.match(res.refused?.refusals[0]?.message ?? '', new RegExp(res.attestationId));
  // Accepted by the collector, still waiting for the pipeline.
  assert.equal((await collector.store.getAttestation(res.attestationId))?.outcome, 'PENDING');

  const disabled = await call(client.SetHostState.bind(client), {
    hostId,
    state: 'HOST_STATE_DISABLED',
    reason: 'decommissioned',
  });
  assert.equal(disabled.host?.state, 'HOST_STATE_DISABLED');
  const res2 = await attestOnce(
    client,
    (nonce) => attestRequest({ ak, nonce, clock: { clock: 2n } }),
    ak.name,
  );
  assert.deepEqual(
    res2.refused?.refusals.map((r) => r.code),
    ['HOST_DISABLED'],
  );
  await assert.rejects(
    call(client.GetHost.bind(client), { hostId: 'nope' }),
    (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND,
  );
  await assert.rejects(
    call(client.GetChallenge.bind(client), { akName: Buffer.alloc(1) }),
    (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT,
  );
});

test('a redelivered or foreign CertificateEvent changes nothing: the first outcome per attestation wins', async (t) => {
  let answered = 0;
  const { client, collector, bus } = await setup(t, (e) => {
    answered++;
    return {
      type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
      certificate: { serial: '1', hostId: e.hostId, attestationId: e.attestationId },
    };
  });
  const ak = softwareAk('p256');
  await enrollSoftwareAk(collector, ak);
  const res = await attestOnce(client, (nonce) => attestRequest({ ak, nonce }), ak.name);
  assert.equal(res.result, 'certificate');
  // A late REFUSED for the same attestation, and an event for an attestation nobody made.
  await bus.publish(
    KAFKA_TOPICS.certificates,
    res.hostId,
    encodeCertificateEvent({
      type: 'CERTIFICATE_EVENT_TYPE_REFUSED',
      attestationId: res.attestationId,
      refusals: [{ code: 'INTERNAL', message: 'x' }],
    }),
  );
  await bus.publish(
    KAFKA_TOPICS.certificates,
    res.hostId,
    encodeCertificateEvent({ type: 'CERTIFICATE_EVENT_TYPE_ISSUED', attestationId: randomUUID() }),
  );
  await bus.publish(KAFKA_TOPICS.certificates, res.hostId, new Uint8Array([0xff, 0xff, 0xff]));
  await new Promise((r) => setTimeout(r, 300));
  const row = await collector.store.getAttestation(res.attestationId);
  assert.equal(row?.outcome, 'ISSUED');
  assert.equal(answered, 1);
});

test('two replicas share the certificates group: a call answered on the other replica still returns its certificate', async (t) => {
  const embedded = await openEmbeddedPostgres(undefined);
  t.after(() => embedded.close());
  const bus = new InProcessBus({ partitions: 4 });
  t.after(() => bus.close());
  const db = embedded.db('quote_collector');
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_QUOTE_COLLECTOR_ADDRESS: '127.0.0.1:0', HOSTGATE_QUOTE_COLLECTOR_ATTEST_TIMEOUT_MS: '10000' },
  );
  const a = await start(config, { logger: silentLogger, bus, db });
  t.after(() => a.stop());
  const b = await start(config, { logger: silentLogger, bus, db });
  t.after(() => b.stop());
  await fakeDownstream(bus, (e) => ({
    type: 'CERTIFICATE_EVENT_TYPE_ISSUED',
    certificate: { serial: e.attestationId.slice(0, 8), hostId: e.hostId, attestationId: e.attestationId },
  }));
  const protos = loadHostgateProtos();
  const client = new protos.QuoteCollectorService(a.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const collector = new QuoteCollector({
    store: new QuoteCollectorStore(db),
    ekRoots: [],
    nonceTtlMs: 60_000,
    enrollmentTtlMs: 60_000,
    pcrSelection: requiredPcrSelection(config),
  });
  const results = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const ak = softwareAk('p256');
      const hostId = await enrollSoftwareAk(collector, ak);
      const res = await attestOnce(client, (nonce) => attestRequest({ ak, nonce }), ak.name);
      return { hostId, res };
    }),
  );
  for (const { hostId, res } of results) {
    assert.equal(res.result, 'certificate', JSON.stringify(res.refused));
    assert.equal(res.hostId, hostId);
    assert.equal(res.certificate?.attestationId, res.attestationId);
  }
});

test('ListHosts pages in host id order and filters by state; SetHostState is refused for a never-activated host', async (t) => {
  const { client, collector } = await setup(t, () => undefined);
  const active = await Promise.all([0, 1, 2].map(() => enrollSoftwareAk(collector, softwareAk('p256'))));
  const pending = await enrollSoftwareAk(collector, softwareAk('p256'), { activate: false });
  const all = [...active, pending].sort();
  const first = await call(client.ListHosts.bind(client), { pageSize: 3 });
  assert.deepEqual(
    first.hosts.map((h) => h.hostId),
    all.slice(0, 3),
  );
  assert.equal(first.nextPageToken, all[2]);
  const second = await call(client.ListHosts.bind(client), { pageSize: 3, pageToken: first.nextPageToken });
  assert.deepEqual(
    second.hosts.map((h) => h.hostId),
    all.slice(3),
  );
  assert.equal(second.nextPageToken, '');
  const onlyPending = await call(client.ListHosts.bind(client), { state: 'HOST_STATE_PENDING_ACTIVATION' });
  assert.deepEqual(
    onlyPending.hosts.map((h) => h.hostId),
    [pending],
  );
  await assert.rejects(
    call(client.SetHostState.bind(client), { hostId: pending, state: 'HOST_STATE_ACTIVE' }),
    (err: grpc.ServiceError) => err.code === grpc.status.FAILED_PRECONDITION,
  );
  await assert.rejects(
    call(client.SetHostState.bind(client), { hostId: pending, state: 'HOST_STATE_PENDING_ACTIVATION' }),
    (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT,
  );
  // Disable, then re-enable: the host is ACTIVE again with its AK.
  const id = active[0]!;
  await call(client.SetHostState.bind(client), {
    hostId: id,
    state: 'HOST_STATE_DISABLED',
    reason: 'maintenance',
  });
  const back = await call(client.SetHostState.bind(client), {
    hostId: id,
    state: 'HOST_STATE_ACTIVE',
    reason: 'done',
  });
  assert.equal(back.host?.state, 'HOST_STATE_ACTIVE');
  assert.ok((back.host?.akName.length ?? 0) > 0);
});

test('with an admin token, SetHostState needs it; the operator named in metadata is audited', async (t) => {
  const { client, collector } = await setup(t, () => undefined, {
    HOSTGATE_QUOTE_COLLECTOR_ADMIN_TOKEN: 's3cret',
  });
  const hostId = await enrollSoftwareAk(collector, softwareAk('p256'));
  const set = (md: grpc.Metadata) =>
    new Promise((resolve, reject) =>
      client.SetHostState({ hostId, state: 'HOST_STATE_DISABLED', reason: 'rma' }, md, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  const unauthenticated = (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED;
  await assert.rejects(set(new grpc.Metadata()), unauthenticated);
  const wrong = new grpc.Metadata();
  wrong.set('authorization', 'Bearer guess');
  await assert.rejects(set(wrong), unauthenticated);
  assert.equal((await collector.store.getHost(hostId))?.state, 'ACTIVE');
  const ok = new grpc.Metadata();
  ok.set('authorization', 'Bearer s3cret');
  ok.set('x-hostgate-operator', 'bob@ops');
  await set(ok);
  assert.equal((await collector.store.getHost(hostId))?.state, 'DISABLED');
  const audit = await collector.store.auditOf(hostId);
  assert.deepEqual(
    audit.map((a) => [a.actor, a.action, JSON.parse(a.details).reason]),
    [['bob@ops', 'SetHostState', 'rma']],
  );
  // Reads stay open: GetHost needs no token.
  assert.equal((await call(client.GetHost.bind(client), { hostId })).host?.state, 'HOST_STATE_DISABLED');
});
