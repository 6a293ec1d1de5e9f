import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { type BusMessage, DLQ_HEADERS, InProcessBus } from '@hostgate/bus';
import {
  decodeMeasurements,
  encodeEvidence,
  type Evidence,
  KAFKA_TOPICS,
  loadHostgateProtos,
  type Measurements__Output,
  type ReplayResponse__Output,
} from '@hostgate/protos';
import { createLogger, loadServiceConfig } from '@hostgate/service-runtime';
import { CONSUMER_GROUP, configSchema, SERVICE_NAME, start } from '../src/index.ts';
import { buildAgileLog, quoteOf, syntheticBoot } from './synthetic.ts';

const logger = createLogger({
  service: SERVICE_NAME,
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

function evidence(attestationId: string, hostId: string, tamper = false): Evidence {
  const boot = syntheticBoot();
  const pcrBanks = quoteOf(['sha1', 'sha256'], boot.events);
  if (tamper) {
    const d = Buffer.from(pcrBanks[1]!.pcrs![7]!.digest as Uint8Array);
    d[31]! ^= 0x80;
    pcrBanks[1]!.pcrs![7]!.digest = d;
  }
  return {
    attestationId,
    hostId,
    nonce: Buffer.alloc(32, 1),
    quote: { attest: Buffer.from('attest'), signature: Buffer.from('sig'), pcrBanks },
    quoteInfo: { resetCount: 3, clock: '12345' },
    eventLog: buildAgileLog(['sha1', 'sha256'], boot.events),
    certifiedKey: { keyPublic: Buffer.from('key') },
    akPublic: Buffer.from('ak'),
  };
}

/** Collects a topic's messages under a group of its own. */
async function collect(bus: InProcessBus, topic: string) {
  const seen: BusMessage[] = [];
  const waiters: (() => void)[] = [];
  await bus.subscribe({
    topic,
    group: `test-${topic}`,
    handler: async (m) => {
      seen.push(m);
      for (const w of waiters.splice(0)) w();
    },
  });
  return {
    seen,
    async waitFor(n: number, ms = 10_000): Promise<BusMessage[]> {
      const deadline = Date.now() + ms;
      while (seen.length < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} messages on ${topic}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return seen;
    },
  };
}

async function startReplayer(t: { after: (fn: () => unknown) => void }) {
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: '127.0.0.1:0' },
  );
  const svc = await start(config, { logger, bus });
  t.after(() => svc.stop());
  return { bus, svc };
}

test('evidence in, measurements out: same attestation id and key, verified facts, quote facts passed through', async (t) => {
  const { bus } = await startReplayer(t);
  const out = await collect(bus, KAFKA_TOPICS.measurements);
  await bus.publish(KAFKA_TOPICS.evidence, 'host-a', encodeEvidence(evidence('att-1', 'host-a')));
  await bus.publish(KAFKA_TOPICS.evidence, 'host-a', encodeEvidence(evidence('att-2', 'host-a', true)));
  const [first, second] = await out.waitFor(2);
  assert.equal(first?.key, 'host-a');
  const ok: Measurements__Output = decodeMeasurements(first!.value);
  assert.equal(ok.attestationId, 'att-1');
  assert.equal(ok.hostId, 'host-a');
  assert.deepEqual(ok.refusals, []);
  assert.equal(ok.replay?.match, true);
  assert.equal(ok.secureBoot?.enabled, true);
  assert.equal(ok.bootApplications.length, 2);
  assert.equal(ok.dbx.length, 2);
  assert.equal(ok.quoteInfo?.resetCount, 3);
  assert.equal(ok.quoteInfo?.clock, '12345');
  assert.equal(ok.certifiedKey?.keyPublic.toString(), 'key');
  assert.equal(ok.akPublic.toString(), 'ak');
  assert.equal(ok.pcrBanks.length, 2);
  // The tampered quote (PCR 7, sha256) flows on as refused Measurements, not as silence.
  const bad = decodeMeasurements(second!.value);
  assert.equal(bad.attestationId, 'att-2');
  assert.deepEqual(
    bad.refusals.map((r) => [r.code, r.details['pcr'], r.details['bank']]),
    [['EVENTLOG_MISMATCH', '7', 'sha256']],
  );
  assert.equal(bad.secureBoot?.verified, false);
});

test('poison evidence goes to the dead-letter topic and the consumer keeps going', async (t) => {
  const { bus } = await startReplayer(t);
  const dlq = await collect(bus, `${KAFKA_TOPICS.evidence}.dlq`);
  const out = await collect(bus, KAFKA_TOPICS.measurements);
  await bus.publish(KAFKA_TOPICS.evidence, 'host-p', new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]));
  // Key and host id disagree: also poison (one host's messages must stay in one partition).
  await bus.publish(KAFKA_TOPICS.evidence, 'host-x', encodeEvidence(evidence('att-x', 'host-y')));
  await bus.publish(KAFKA_TOPICS.evidence, 'host-q', encodeEvidence(evidence('att-q', 'host-q')));
  const dead = await dlq.waitFor(2, 30_000);
  const codes = dead.map((m) => m.headers[DLQ_HEADERS.errorCode]).sort();
  assert.deepEqual(codes, ['EVIDENCE_INVALID', 'PROTO_DECODE']);
  for (const m of dead) assert.equal(m.headers[DLQ_HEADERS.group], CONSUMER_GROUP);
  const [good] = await out.waitFor(1);
  assert.equal(decodeMeasurements(good!.value).attestationId, 'att-q');
  assert.equal(out.seen.length, 1);
});

test('Replay RPC: same logic on demand; events at fault only unless include_events', async (t) => {
  const { svc } = await startReplayer(t);
  const protos = loadHostgateProtos();
  const client = new protos.EventlogReplayerService(svc.address, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const replay = (req: object) =>
    new Promise<ReplayResponse__Output>((resolve, reject) =>
      client.Replay(req, (err, res) => (err || !res ? reject(err) : resolve(res))),
    );
  const ev = evidence('a', 'h');
  const all = await replay({ eventLog: ev.eventLog, quotedPcrs: ev.quote?.pcrBanks, includeEvents: true });
  assert.deepEqual(all.refusals, []);
  assert.equal(all.events.length, 15);
  assert.equal(all.secureBoot?.enabled, true);
  const bad = evidence('b', 'h', true);
  const summary = await replay({ eventLog: bad.eventLog, quotedPcrs: bad.quote?.pcrBanks });
  assert.equal(summary.refusals[0]?.code, 'EVENTLOG_MISMATCH');
  assert.deepEqual(
    summary.events.map((e) => e.index),
    summary.replay?.eventsAtFault,
  );
  assert.ok(summary.events.length > 0 && summary.events.every((e) => e.pcr === 7));
});

test('Measurements too large for a record: descriptions dropped first, then a refusal naming the limit', async () => {
  const { decodeMeasurements: decode } = await import('@hostgate/protos');
  const { encodeBounded, measurementsFromEvidence } = await import('../src/index.ts');
  const ev = evidence('att-big', 'host-big') as unknown as Parameters<typeof measurementsFromEvidence>[0];
  const m = measurementsFromEvidence(ev);
  const full = encodeBounded(m, 1 << 30);
  const withText = decode(full).events.filter((e) => e.decoded?.description).length;
  assert.ok(withText > 0);
  // Just below the full size: the same events, without descriptions, still replayed.
  const trimmed = decode(encodeBounded(m, full.length - 1));
  assert.deepEqual(trimmed.refusals, []);
  assert.equal(trimmed.events.length, decode(full).events.length);
  assert.ok(trimmed.events.every((e) => (e.decoded?.description ?? '') === ''));
  // Far below: refused, carrying the limit, with no events a consumer could mistake for evidence.
  const refused = decode(encodeBounded(m, 256));
  assert.deepEqual(
    refused.refusals.map((r) => [r.code, r.details['limit']]),
    [['EVENTLOG_MALFORMED', '256']],
  );
  assert.equal(refused.events.length, 0);
  assert.equal(refused.replay?.match, false);
  assert.equal(refused.attestationId, 'att-big');
});
