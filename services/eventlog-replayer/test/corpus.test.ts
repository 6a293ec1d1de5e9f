// Real boot logs from ../shared/corpus (read in place, never copied): each replays to the PCR values
// recorded on its source machine, and the same log against a PCR the log does not reproduce is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PcrBank } from '@hostgate/protos';
import { corpusLogs, corpusPresent, type PcrJson } from '../../../packages/eventlog/test/corpus.ts';
import { replayEventLog } from '../src/index.ts';

const skip = corpusPresent ? false : 'shared corpus (../shared/corpus/eventlogs) is absent';
const ALGORITHM: Record<string, PcrBank['hashAlgorithm']> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
};

/** PCRs 0–7 of the banks given, as a quote. */
function quoteFrom(pcrs: PcrJson): PcrBank[] {
  const banks: PcrBank[] = [];
  for (const [bank, values] of Object.entries(pcrs)) {
    const alg = ALGORITHM[bank];
    if (alg === undefined) continue;
    const list = Object.entries(values)
      .filter(([k, v]) => Number(k) <= 7 && /^[0-9a-f]+$/i.test(v))
      .map(([k, v]) => ({ index: Number(k), digest: Buffer.from(v, 'hex') }));
    if (list.length > 0) banks.push({ hashAlgorithm: alg, pcrs: list });
  }
  return banks;
}

test('corpus logs replay to the PCRs recorded on their machines; a forged PCR is refused', { skip }, () => {
  let checked = 0;
  for (const log of corpusLogs()) {
    const recorded = log.expected?.[0]?.pcrs;
    if (recorded === undefined) continue;
    const quote = quoteFrom(recorded);
    if (quote.length === 0) continue;
    const out = replayEventLog({ eventLog: log.bytes, pcrBanks: quote });
    assert.deepEqual(out.refusals, [], log.name);
    assert.equal(out.replay.match, true, log.name);
    // Every event that extended a quoted PCR replayed, so it is verified.
    const everyBank = (pcr: number) => quote.every((b) => b.pcrs?.some((p) => p.index === pcr));
    for (const e of out.events)
      if (everyBank(Number(e.pcr)) && Number(e.eventType) !== 3)
        assert.ok(e.verified, `${log.name} event ${e.index}`);
    // Forge the PCR with the most events: the refusal names it and those events.
    const target = [...(out.replay.pcrs ?? [])].sort(
      (a, b) => (b.eventIndices?.length ?? 0) - (a.eventIndices?.length ?? 0),
    )[0]!;
    const forged = quote.map((b) => ({
      ...b,
      pcrs: b.pcrs?.map((p) =>
        b.hashAlgorithm === target.hashAlgorithm && p.index === target.pcr
          ? { index: p.index, digest: Buffer.alloc((p.digest as Buffer).length, 0xab) }
          : p,
      ),
    }));
    const bad = replayEventLog({ eventLog: log.bytes, pcrBanks: forged });
    assert.equal(bad.refusals.length, 1, log.name);
    assert.equal(bad.refusals[0]?.code, 'EVENTLOG_MISMATCH');
    assert.equal(bad.refusals[0]?.details?.['pcr'], String(target.pcr));
    assert.deepEqual(bad.replay.eventsAtFault, target.eventIndices, log.name);
    checked++;
  }
  assert.ok(checked >= 5, `only ${checked} corpus logs had recorded PCRs`);
});

test('Secure Boot state of corpus logs whose MANIFEST says it', { skip }, () => {
  const cases: Record<string, boolean> = {
    'goattest-coreos36-gce-nosb.bin': false,
    'keylime-create-mb-policy-secureboot.bin': true,
  };
  let checked = 0;
  for (const log of corpusLogs()) {
    const want = cases[log.name];
    if (want === undefined) continue;
    const pcrs = log.expected?.[0]?.pcrs ?? log.independent ?? log.tpm2Eventlog;
    assert.ok(pcrs, log.name);
    const out = replayEventLog({ eventLog: log.bytes, pcrBanks: quoteFrom(pcrs) });
    assert.deepEqual(out.refusals, [], log.name);
    assert.equal(out.secureBoot.enabled, want, log.name);
    assert.equal(out.secureBoot.verified, true, log.name);
    checked++;
  }
  assert.equal(checked, Object.keys(cases).length);
});
