// What other systems read from Kafka: the SOC feed (hostgate.events.v1, CloudEvents) sees every
// attestation, and a poison record goes to its dead-letter topic without stopping the pipeline.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BusMessage, DLQ_HEADERS, KafkaBus } from '@hostgate/bus';
import {
  type AttestResponse__Output,
  type CertificateEvent__Output,
  cloudEventFromSocEvent,
  decodeCertificateEvent,
  decodeEvidence,
  decodeSocEvent,
  KAFKA_TOPICS,
  type ListCertificatesResponse__Output,
  type SocEvent__Output,
} from '@hostgate/protos';
import {
  callOptions,
  type KafkaBroker,
  kafkaSkipReason,
  type Pipeline,
  startKafka,
  startPipeline,
  unary,
} from '../src/harness.ts';
import { createSoftwareEkRoot, type SoftwareEkRoot, SoftwareHost } from '../src/software-host.ts';
import { buildLog, expectedPcrs, uefiBoot } from '../src/synthetic-log.ts';

const skip = kafkaSkipReason();

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Kafka feeds of the pipeline', { skip, timeout: 180_000 }, () => {
  let dir = '';
  let kafka: KafkaBroker;
  let root: SoftwareEkRoot;
  let p: Pipeline;
  let observer: KafkaBus;
  const events = uefiBoot();
  const log = buildLog(events);
  const pcrs = expectedPcrs(events).get('sha256')!;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-feeds-'));
    kafka = await startKafka();
    root = await createSoftwareEkRoot(dir);
    p = await startPipeline({ kafka, ekRoots: [root.pemFile] });
    observer = new KafkaBus({ brokers: [kafka.bootstrap], clientId: 'e2e-observer' });
  });
  after(async () => {
    await observer?.close();
    await p?.stop();
    await kafka?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('every attestation reaches the SOC feed as a CloudEvent: the refusal with its code, then the pass and the certificate', async () => {
    const seen: SocEvent__Output[] = [];
    const sub = await observer.subscribe({
      topic: KAFKA_TOPICS.events,
      group: `e2e-soc-${randomBytes(4).toString('hex')}`,
      handler: async (m: BusMessage) => {
        seen.push(decodeSocEvent(m.value));
      },
    });
    try {
      const host = new SoftwareHost(root);
      const hostId = await host.enroll(p.clients.collector);
      const refused: AttestResponse__Output = await host.attest(p.clients.collector, pcrs, log);
      assert.equal(refused.result, 'refused');
      await unary((cb) => p.clients.policy.Capture({ hostId, activate: true }, callOptions(), cb));
      const issued = await host.attest(p.clients.collector, pcrs, log);
      assert.equal(issued.result, 'certificate', JSON.stringify(issued.refused));
      const serial = issued.certificate?.serial ?? '';

      const ofHost = () => seen.filter((e) => e.data?.hostId === hostId);
      const refusal = await until('refusal on the SOC feed', 15_000, () =>
        ofHost().find((e) => e.data?.attestationId === refused.attestationId && e.type.includes('refused')),
      );
      assert.deepEqual(
        refusal.data?.refusals.map((r) => r.code),
        ['NO_POLICY'],
      );
      const certified = await until('certificate on the SOC feed', 15_000, () =>
        ofHost().find((e) => e.data?.certificateSerial === serial && e.type.includes('certificate.issued')),
      );
      assert.equal(certified.data?.attestationId, issued.attestationId);
      await until('pass on the SOC feed', 15_000, () =>
        ofHost().find((e) => e.data?.attestationId === issued.attestationId && e.type.includes('passed')),
      );
      // As a dashboard reads it: CloudEvents 1.0 JSON (structured mode).
      const ce = JSON.parse(JSON.stringify(cloudEventFromSocEvent(certified))) as Record<string, unknown>;
      assert.equal(ce['specversion'], '1.0');
      assert.equal(typeof ce['id'], 'string');
      assert.equal(typeof ce['source'], 'string');
      assert.equal(ce['type'], certified.type);
      assert.match(JSON.stringify(ce['data']), new RegExp(serial));
    } finally {
      await sub.close();
    }
  });

  test('an evidence record delivered twice yields no second certificate: the outcome is re-published, not re-issued', async () => {
    const evidence: BusMessage[] = [];
    const outcomes: CertificateEvent__Output[] = [];
    const tag = randomBytes(4).toString('hex');
    const subs = [
      await observer.subscribe({
        topic: KAFKA_TOPICS.evidence,
        group: `e2e-evidence-${tag}`,
        handler: async (m: BusMessage) => {
          evidence.push(m);
        },
      }),
      await observer.subscribe({
        topic: KAFKA_TOPICS.certificates,
        group: `e2e-certificates-${tag}`,
        handler: async (m: BusMessage) => {
          outcomes.push(decodeCertificateEvent(m.value));
        },
      }),
    ];
    try {
      const host = new SoftwareHost(root);
      const hostId = await host.enroll(p.clients.collector);
      let r = await host.attest(p.clients.collector, pcrs, log);
      if (r.result === 'refused') {
        await unary((cb) => p.clients.policy.Capture({ hostId, activate: true }, callOptions(), cb));
        r = await host.attest(p.clients.collector, pcrs, log);
      }
      assert.equal(r.result, 'certificate', JSON.stringify(r.refused));
      const attestationId = r.attestationId;
      const serial = r.certificate?.serial;
      const original = await until('the evidence record', 15_000, () =>
        evidence.find((m) => m.key === hostId && decodeEvidence(m.value).attestationId === attestationId),
      );
      // The same record again, as a producer retry or a replayed partition would deliver it.
      await observer.publish(KAFKA_TOPICS.evidence, original.key, original.value, original.headers);
      const forIt = () =>
        outcomes.filter(
          (o) => o.attestationId === attestationId && o.type === 'CERTIFICATE_EVENT_TYPE_ISSUED',
        );
      await until('the outcome re-published for the redelivered evidence', 30_000, () =>
        forIt().length >= 2 ? true : undefined,
      );
      assert.deepEqual(new Set(forIt().map((o) => o.certificate?.serial)), new Set([serial]));
      const listed = await unary<ListCertificatesResponse__Output>((cb) =>
        p.clients.issuer.ListCertificates({ hostId, pageSize: 100 }, callOptions(), cb),
      );
      assert.deepEqual(
        listed.certificates.map((c) => c.serial),
        [serial],
        'one certificate for the host, the one Attest returned',
      );
    } finally {
      for (const sub of subs) await sub.close();
    }
  });

  test('a poison record on hostgate.evidence.v1 goes to its .dlq with the reason, and attestations go on', async () => {
    const key = `poison-${randomBytes(4).toString('hex')}`;
    const dead: BusMessage[] = [];
    const sub = await observer.subscribe({
      topic: `${KAFKA_TOPICS.evidence}.dlq`,
      group: `e2e-dlq-${randomBytes(4).toString('hex')}`,
      handler: async (m: BusMessage) => {
        dead.push(m);
      },
    });
    try {
      const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0x96, 0x01]);
      await observer.publish(KAFKA_TOPICS.evidence, key, garbage);
      const letter = await until('dead letter', 60_000, () => dead.find((m) => m.key === key));
      assert.match(letter.headers[DLQ_HEADERS.reason] ?? '', /\S/);
      assert.equal(letter.headers[DLQ_HEADERS.topic], KAFKA_TOPICS.evidence);
      // The replayer did not stop: a host still gets its certificate.
      const host = new SoftwareHost(root);
      const hostId = await host.enroll(p.clients.collector);
      const first = await host.attest(p.clients.collector, pcrs, log);
      if (first.result === 'refused') {
        await unary((cb) => p.clients.policy.Capture({ hostId, activate: true }, callOptions(), cb));
      }
      const ok = await host.attest(p.clients.collector, pcrs, log);
      assert.equal(ok.result, 'certificate', JSON.stringify(ok.refused));
    } finally {
      await sub.close();
    }
  });
});
