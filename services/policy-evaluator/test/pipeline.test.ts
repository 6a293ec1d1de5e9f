// The middle of the pipeline on one bus: Evidence → eventlog-replayer → Measurements → policy-evaluator
// → Verdict, both services started as all-in-one starts them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeVerdict, encodeEvidence, type Evidence, KAFKA_TOPICS } from '@hostgate/protos';
import { loadServiceConfig } from '@hostgate/service-runtime';
import * as replayer from '../../eventlog-replayer/src/index.ts';
import { buildAgileLog, quoteOf, syntheticBoot } from '../../eventlog-replayer/test/synthetic.ts';
import { logger, startEvaluator } from './harness.ts';

function evidence(attestationId: string, opts: { secureBoot?: boolean; tamper?: boolean } = {}): Evidence {
  const boot = syntheticBoot(opts);
  const pcrBanks = quoteOf(['sha256'], boot.events);
  if (opts.tamper) {
    const p = pcrBanks[0]!.pcrs!.find((x) => x.index === 0)!;
    p.digest = Buffer.alloc(32, 0x5a);
  }
  return {
    attestationId,
    hostId: 'host-p',
    nonce: Buffer.alloc(32, 7),
    quote: { attest: Buffer.from('attest'), signature: Buffer.from('sig'), pcrBanks },
    quoteInfo: { pcrDigest: Buffer.alloc(32, 9), resetCount: 1 },
    eventLog: buildAgileLog(['sha256'], boot.events),
    certifiedKey: { keyPublic: Buffer.from('key') },
    akPublic: Buffer.from('ak'),
  };
}

test('evidence through replayer and evaluator: NO_POLICY, capture, pass, tampered log and Secure Boot off fail', async (t) => {
  const ev = await startEvaluator(t);
  const config = loadServiceConfig(
    { name: replayer.SERVICE_NAME, config: replayer.configSchema },
    { HOSTGATE_EVENTLOG_REPLAYER_ADDRESS: '127.0.0.1:0' },
  );
  const svc = await replayer.start(config, { logger, bus: ev.bus });
  t.after(() => svc.stop());
  const attest = async (e: Evidence) => {
    const n = ev.verdicts.seen.length;
    await ev.bus.publish(KAFKA_TOPICS.evidence, 'host-p', encodeEvidence(e));
    const all = await ev.verdicts.waitFor(n + 1);
    return decodeVerdict(all[n]!.value);
  };
  const first = await attest(evidence('att-1'));
  assert.deepEqual(
    first.refusals.map((r) => r.code),
    ['NO_POLICY'],
  );
  await ev.call('Capture', { hostId: 'host-p', activate: true }, 'ops');
  const ok = await attest(evidence('att-2'));
  assert.equal(ok.pass, true, JSON.stringify(ok.refusals));
  assert.equal(ok.quoteInfo?.pcrDigest.toString('hex'), '09'.repeat(32));
  const tampered = await attest(evidence('att-3', { tamper: true }));
  assert.equal(tampered.pass, false);
  assert.equal(tampered.refusals[0]?.code, 'EVENTLOG_MISMATCH');
  const off = await attest(evidence('att-4', { secureBoot: false }));
  assert.equal(off.pass, false);
  assert.ok(off.refusals.some((r) => r.code === 'SECURE_BOOT_OFF'));
});
