// "Nothing is lost": with the four services as separate processes on Kafka, a service killed
// (SIGKILL, no drain) or the broker restarted in the middle of a stream of attestations only
// delays them — every call still ends in a certificate, and no attestation yields two.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { AttestResponse__Output, ListCertificatesResponse__Output } from '@hostgate/protos';
import { callOptions, kafkaSkipReason, type ServiceName, startKafka, unary } from '../src/harness.ts';
import { startServiceProcesses } from '../src/processes.ts';
import { createSoftwareEkRoot, SoftwareHost } from '../src/software-host.ts';
import { buildLog, expectedPcrs, uefiBoot } from '../src/synthetic-log.ts';

const skip = kafkaSkipReason();
const HOSTS = 4;
const ROUNDS = 6;

const VICTIMS = ['policy-evaluator', 'health-cert-issuer', 'kafka'] as const satisfies readonly (
  | ServiceName
  | 'kafka'
)[];

for (const victim of VICTIMS) {
  const what = victim === 'kafka' ? 'the Kafka broker restarted' : `${victim} killed (SIGKILL) and restarted`;
  test(`${what} mid-stream: every attestation still gets exactly one certificate`, {
    skip,
    timeout: 180_000,
  }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostgate-e2e-resilience-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const kafka = await startKafka();
    t.after(() => kafka.stop());
    const root = await createSoftwareEkRoot(dir);
    const procs = await startServiceProcesses({
      kafka,
      ekRoots: [root.pemFile],
      dataDir: path.join(dir, 'data'),
      // Long enough to span a restart and the consumer group taking the partitions back.
      env: { 'quote-collector': { HOSTGATE_QUOTE_COLLECTOR_ATTEST_TIMEOUT_MS: '90000' } },
    });
    t.after(() => procs.stop());
    const collector = procs.clients.collector;
    const events = uefiBoot();
    const log = buildLog(events);
    const pcrs = expectedPcrs(events).get('sha256')!;

    const hosts = Array.from({ length: HOSTS }, () => new SoftwareHost(root));
    for (const h of hosts) await h.enroll(collector);
    const first = await hosts[0]!.attest(collector, pcrs, log);
    assert.equal(first.result, 'refused');
    await unary((cb) =>
      procs.clients.policy.Capture({ hostId: hosts[0]!.hostId, activate: true }, callOptions(), cb),
    );

    let issued = 0;
    let killedAt = 0;
    const outcomes: AttestResponse__Output[] = [];
    const spans: { start: number; end: number }[] = [];
    const killer = (async () => {
      while (issued < HOSTS) await new Promise((r) => setTimeout(r, 10));
      killedAt = Date.now();
      if (victim === 'kafka') {
        await kafka.restart();
        return;
      }
      await procs.kill(victim, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      await procs.restart(victim);
    })();
    await Promise.all(
      hosts.map(async (h) => {
        for (let i = 0; i < ROUNDS; i++) {
          const start = Date.now();
          const r = await h.attest(collector, pcrs, log);
          spans.push({ start, end: Date.now() });
          outcomes.push(r);
          if (r.result === 'certificate') issued++;
        }
      }),
    );
    await killer;
    assert.ok(killedAt > 0, 'the service was killed');
    const spanning = spans.filter((s) => s.start < killedAt && s.end > killedAt).length;
    assert.ok(spanning > 0, 'at least one attestation was in flight when the service died');
    const codes = outcomes.flatMap((o) => o.refused?.refusals.map((r) => r.code) ?? []);
    assert.deepEqual(codes, [], 'no attestation refused or timed out');
    assert.equal(issued, HOSTS * ROUNDS);

    // Exactly one certificate per attestation: as many as calls answered, no attestation id twice.
    for (const h of hosts) {
      const listed = await unary<ListCertificatesResponse__Output>((cb) =>
        procs.clients.issuer.ListCertificates({ hostId: h.hostId, pageSize: 1000 }, callOptions(), cb),
      );
      const ids = listed.certificates.map((c) => c.attestationId);
      assert.equal(ids.length, ROUNDS, `${h.hostId}: ${ids.length} certificates for ${ROUNDS} attestations`);
      assert.equal(new Set(ids).size, ids.length, 'an attestation id was certified twice');
      const answered = outcomes.filter((o) => o.hostId === h.hostId).map((o) => o.certificate?.attestationId);
      assert.deepEqual([...ids].sort(), [...answered].sort());
    }
  });
}
