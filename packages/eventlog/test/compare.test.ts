import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareWithQuote, fromHex, parseEventLog, type QuotedPcrs } from '../src/index.ts';
import { corpusLogs, corpusPresent } from './corpus.ts';
import {
  ascii,
  type Bank,
  buildAgileLog,
  EV,
  referenceReplay,
  type SynthEvent,
  typicalBoot,
} from './log-builder.ts';

// A quote as a TPM would produce it for these events: independent reference replay.
function quoteOf(
  banks: Bank[],
  events: SynthEvent[],
  pcrs: number[],
): Record<string, Record<number, Uint8Array>> {
  const ref = referenceReplay(banks, events);
  const out: Record<string, Record<number, Uint8Array>> = {};
  for (const bank of banks) {
    out[bank] = {};
    for (const pcr of pcrs) {
      const v = ref[bank]?.[String(pcr)];
      if (v !== undefined) out[bank][pcr] = fromHex(v);
    }
  }
  return out;
}

const BANKS: Bank[] = ['sha1', 'sha256'];

test('a log that matches its quote: every measured event verified, EV_NO_ACTION untrusted', () => {
  const events = typicalBoot();
  const log = parseEventLog(buildAgileLog(BANKS, events));
  const c = compareWithQuote(log, quoteOf(BANKS, events, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 22, 23]));
  assert.equal(c.allMatch, true);
  assert.equal(c.mismatched.length, 0);
  assert.equal(c.matched.length, 28);
  assert.equal(c.replayed.pcr0Locality, 0);
  assert.equal(c.verifiedEvents.length, events.length);
  assert.deepEqual(
    c.untrustedEvents.map((e) => e.index),
    [0],
  ); // the Spec ID header
  for (const e of c.verifiedEvents) {
    assert.equal(e.verified, true);
    assert.deepEqual(e.verifiedBanks, BANKS);
  }
});

test('a tampered event: its PCR mismatches, names the events, and none of them is verified', () => {
  const events = typicalBoot();
  const quote = quoteOf(BANKS, events, [0, 4, 7]);
  // The log now claims a different boot application in PCR4.
  const tampered = events.map((e) =>
    e.type === EV.EFI_BOOT_SERVICES_APPLICATION ? { ...e, data: ascii('\\EFI\\evil.efi') } : e,
  );
  const log = parseEventLog(buildAgileLog(BANKS, tampered));
  const c = compareWithQuote(log, quote);
  assert.equal(c.allMatch, false);
  assert.deepEqual(
    c.mismatched.map((m) => `${m.bank}:${m.pcr}`),
    ['sha1:4', 'sha256:4'],
  );
  const pcr4 = log.events.filter((e) => e.pcr === 4).map((e) => e.index);
  assert.deepEqual(
    c.mismatched[1]?.events.map((e) => e.index),
    pcr4,
  );
  assert.equal(c.verifiedEvents.filter((e) => e.pcr === 4).length, 0);
  for (const i of pcr4) assert.ok(c.untrustedEvents.some((e) => e.index === i));
  // PCRs 0 and 7 still match and their events are verified; unquoted PCRs' events are not.
  assert.deepEqual(
    c.matched.map((m) => `${m.bank}:${m.pcr}`),
    ['sha1:0', 'sha1:7', 'sha256:0', 'sha256:7'],
  );
  assert.deepEqual(
    [...new Set(c.verifiedEvents.map((e) => e.pcr))].sort((a, b) => a - b),
    [0, 7],
  );
  assert.ok(c.untrustedEvents.some((e) => e.pcr === 8));
});

test('an event is not verified when one quoted bank of its PCR mismatches', () => {
  const events = typicalBoot();
  const quote = quoteOf(BANKS, events, [4]);
  quote.sha1![4] = new Uint8Array(20); // the sha1 PCR4 disagrees, sha256 agrees
  const c = compareWithQuote(parseEventLog(buildAgileLog(BANKS, events)), quote);
  assert.deepEqual(
    c.matched.map((m) => `${m.bank}:${m.pcr}`),
    ['sha256:4'],
  );
  assert.equal(c.verifiedEvents.length, 0);
});

test('an event without a digest in a quoted bank is not verified', () => {
  const events: SynthEvent[] = [
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('both') },
    { pcr: 5, type: EV.EFI_ACTION, data: ascii('sha256 only'), omit: ['sha1'] },
  ];
  const quote: QuotedPcrs = {
    ...quoteOf(BANKS, events, [4, 5]),
    sha1: { ...quoteOf(BANKS, events, [4]).sha1, 5: new Uint8Array(20) },
  };
  const c = compareWithQuote(parseEventLog(buildAgileLog(BANKS, events)), quote);
  assert.equal(c.allMatch, true);
  assert.deepEqual(
    c.verifiedEvents.map((e) => e.pcr),
    [4],
  );
  assert.ok(c.untrustedEvents.some((e) => e.pcr === 5));
});

test('quoted PCRs the log never touched compare with their start values', () => {
  const events = typicalBoot();
  const log = parseEventLog(buildAgileLog(['sha256'], events));
  const ok = compareWithQuote(log, {
    sha256: { 10: new Uint8Array(32), 18: new Uint8Array(32).fill(0xff) },
  });
  assert.equal(ok.allMatch, true);
  assert.equal(ok.verifiedEvents.length, 0);
  const bad = compareWithQuote(log, { sha256: { 10: new Uint8Array(32).fill(1) } });
  assert.equal(bad.allMatch, false);
  assert.deepEqual(bad.mismatched[0]?.events, []);
});

test('quoted banks the log lacks are reported and block allMatch', () => {
  const events = typicalBoot();
  const log = parseEventLog(buildAgileLog(['sha256'], events));
  const c = compareWithQuote(log, { ...quoteOf(['sha256'], events, [0]), sha384: { 0: new Uint8Array(48) } });
  assert.deepEqual(c.unknownBanks, ['sha384']);
  assert.equal(c.allMatch, false);
  assert.equal(compareWithQuote(log, {}).allMatch, false);
});

test('a quoted PCR key that is not an index is a caller error', () => {
  const log = parseEventLog(buildAgileLog(['sha256'], typicalBoot()));
  const bad = { sha256: { x: new Uint8Array(32) } } as unknown as QuotedPcrs;
  assert.throws(() => compareWithQuote(log, bad), TypeError);
});

test('corpus: the AK-signed GCE quote verifies every log PCR; PCR10 (IMA) is not in the log', {
  skip: corpusPresent ? false : 'corpus absent',
}, () => {
  const l = corpusLogs().find((x) => x.name === 'gotpmtools-gce-cos-85-attest.bin');
  assert.ok(l?.expected?.[0], 'gce-cos-85 attest log and its quote values');
  const quoted: Record<string, Record<number, Uint8Array>> = {};
  for (const [bank, pcrs] of Object.entries(l.expected[0].pcrs)) {
    quoted[bank] = {};
    for (const [pcr, hex] of Object.entries(pcrs)) quoted[bank][Number(pcr)] = fromHex(hex);
  }
  const log = parseEventLog(l.bytes);
  const c = compareWithQuote(log, quoted);
  assert.deepEqual(
    c.mismatched.map((m) => `${m.bank}:${m.pcr}`),
    ['sha1:10', 'sha256:10', 'sha384:10'],
  );
  assert.equal(c.matched.length, 69);
  assert.equal(c.allMatch, false);
  const measured = log.events.filter((e) => e.type !== EV.NO_ACTION);
  assert.equal(c.verifiedEvents.length, measured.length);
});
