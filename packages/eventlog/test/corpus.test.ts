// Conformance on real logs: replay equals what the source machine recorded (.expected.json),
// else the PC Client replay where tpm2_eventlog is known wrong (.pcrs-independent.json),
// else tpm2_eventlog's (.pcrs.json). Broken inputs must be refused with a typed error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLogError, parseEventLog, pcrStartValue, pcrsToJson, replay, toHex } from '../src/index.ts';
import { corpusLogs, corpusPresent } from './corpus.ts';

const skip = corpusPresent ? false : 'corpus absent: ../shared/corpus/eventlogs not found beside the repo';
const logs = corpusLogs();

// Inputs the corpus README documents as not being logs at all.
const REFUSED: Record<string, string> = {
  'keylime-create-mb-policy-bogus.bin': 'not-an-event-log',
};

test('corpus is present and every log is covered by a reference or a documented exception', { skip }, () => {
  assert.ok(logs.length >= 30, `only ${logs.length} logs`);
  for (const l of logs) {
    const documented = l.name in REFUSED || l.name === 'goattest-short-no-action.bin';
    assert.ok(
      documented || l.expected || l.independent || l.tpm2Eventlog,
      `${l.name} has no reference and no documented handling`,
    );
  }
});

for (const l of logs) {
  test(`corpus ${l.name}`, () => {
    const refusal = REFUSED[l.name];
    if (refusal !== undefined || l.manifest?.format === 'invalid') {
      assert.throws(
        () => parseEventLog(l.bytes),
        (e: unknown) => e instanceof EventLogError && e.code === (refusal ?? e.code),
      );
      return;
    }
    const log = parseEventLog(l.bytes);
    if (l.manifest) {
      assert.equal(log.events.length, l.manifest.eventCount, 'event count as in MANIFEST.tsv');
      assert.ok(l.manifest.format.startsWith(log.format), `format ${log.format} vs ${l.manifest.format}`);
      assert.equal(log.banks.map((b) => b.name).join('+'), l.manifest.banks);
    }
    const r = replay(log);
    const got = pcrsToJson(r.pcrs);

    for (const source of l.expected ?? []) {
      const absent = new Set(source.agreement.independent_replay.absent);
      let checked = 0;
      for (const [bank, pcrs] of Object.entries(source.pcrs)) {
        for (const [pcr, value] of Object.entries(pcrs)) {
          if (absent.has(`${bank}:${pcr}`)) continue; // measured outside this log (e.g. IMA in PCR10)
          // A quoted PCR the log never extended must still hold its start value.
          const mine =
            got[bank]?.[pcr] ?? toHex(pcrStartValue(Number(pcr), value.length / 2, r.pcr0Locality));
          assert.equal(mine, value, `${bank}:${pcr} vs ${source.repo}:${source.path}`);
          checked++;
        }
      }
      assert.ok(checked > 0 || Object.keys(source.pcrs).length === 0);
    }
    const reference = l.independent ?? l.tpm2Eventlog;
    if (reference !== undefined) assert.deepEqual(got, reference);

    if (l.name === 'goattest-short-no-action.bin') {
      // A lone StartupLocality record (README: deliberately small): parses, extends nothing.
      assert.equal(r.pcr0Locality, 3);
      assert.deepEqual(got, {});
    }
    if (l.name === 'tpm2tools-specid-vendordata.bin') {
      // README: EventSize leaves out the 4 vendorInfo bytes; a strict parser sees them trailing.
      assert.deepEqual(
        log.warnings.map((w) => w.code),
        ['specid-vendorinfo-truncated', 'trailing-bytes'],
      );
      assert.throws(() => parseEventLog(l.bytes, { strict: true }), EventLogError);
    }
  });
}

test('corpus logs whose PCR0 tpm2_eventlog gets wrong are replayed with the start locality', { skip }, () => {
  const wrong = logs.filter((l) => l.independent !== undefined && l.tpm2Eventlog !== undefined);
  assert.ok(wrong.length >= 4, wrong.map((l) => l.name).join(','));
  for (const l of wrong) {
    const got = pcrsToJson(replay(parseEventLog(l.bytes)).pcrs);
    assert.notDeepEqual(got, l.tpm2Eventlog, l.name);
  }
});
