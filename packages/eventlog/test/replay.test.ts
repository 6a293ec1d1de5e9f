import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nobleHash } from '../src/hash-noble.ts';
import { nodeHash } from '../src/hash-node.ts';
import { EventLogError, parseEventLog, pcrsToJson, replay } from '../src/index.ts';
import {
  ascii,
  type Bank,
  buildAgileLog,
  buildLegacyLog,
  concat,
  EV,
  referenceReplay,
  type SynthEvent,
  startupLocality,
  typicalBoot,
} from './log-builder.ts';

const ALL_BANKS: Bank[] = ['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256'];

function replayJson(bytes: Uint8Array) {
  return pcrsToJson(replay(parseEventLog(bytes)).pcrs);
}

test('legacy SHA-1 log replays like the reference', () => {
  const events = typicalBoot();
  const bytes = buildLegacyLog(events);
  const log = parseEventLog(bytes);
  assert.equal(log.format, 'sha1-legacy');
  assert.equal(log.events.length, events.length);
  assert.deepEqual(replayJson(bytes), referenceReplay(['sha1'], events));
});

test('crypto-agile log with every bank replays each bank like the reference', () => {
  const events = typicalBoot();
  const bytes = buildAgileLog(ALL_BANKS, events);
  const log = parseEventLog(bytes);
  assert.equal(log.format, 'crypto-agile');
  assert.deepEqual(
    log.banks.map((b) => b.name),
    ALL_BANKS,
  );
  assert.equal(log.events.length, events.length + 1);
  const got = replayJson(bytes);
  assert.deepEqual(got, referenceReplay(ALL_BANKS, events));
  assert.deepEqual(Object.keys(got), ALL_BANKS);
});

test('PCRs 17-22 start all-ones, 16 and 23 start at zero', () => {
  const events: SynthEvent[] = [16, 17, 20, 22, 23].map((pcr) => ({
    pcr,
    type: EV.IPL,
    data: ascii(`pcr ${pcr}`),
  }));
  const got = replayJson(buildAgileLog(['sha256'], events));
  assert.deepEqual(got, referenceReplay(['sha256'], events));
  // And the all-ones start really matters: a zero start gives something else.
  const zeroStart = referenceReplay(['sha256'], [{ pcr: 16, type: EV.IPL, data: ascii('pcr 17') }]);
  assert.notEqual(got.sha256?.['17'], zeroStart.sha256?.['16']);
});

test('StartupLocality 3 starts PCR0 at 0...03 and is itself not extended', () => {
  const events = [startupLocality(3), ...typicalBoot()];
  const bytes = buildAgileLog(['sha1', 'sha256'], events);
  const r = replay(parseEventLog(bytes));
  assert.equal(r.pcr0Locality, 3);
  assert.deepEqual(pcrsToJson(r.pcrs), referenceReplay(['sha1', 'sha256'], events));
  // Same log without the locality record: PCR0 differs, the rest does not.
  const plain = replayJson(buildAgileLog(['sha1', 'sha256'], typicalBoot()));
  assert.notEqual(plain.sha256?.['0'], pcrsToJson(r.pcrs).sha256?.['0']);
  assert.equal(plain.sha256?.['7'], pcrsToJson(r.pcrs).sha256?.['7']);
});

test('StartupLocality after a PCR0 measurement is ignored with a warning', () => {
  const [first, ...rest] = typicalBoot();
  const events = [first!, startupLocality(3), ...rest];
  const r = replay(parseEventLog(buildAgileLog(['sha256'], events)));
  assert.equal(r.pcr0Locality, 0);
  assert.deepEqual(
    r.warnings.map((w) => w.code),
    ['startup-locality-late'],
  );
  assert.deepEqual(pcrsToJson(r.pcrs), referenceReplay(['sha256'], events));
});

test('StartupLocality on another PCR than 0, or with a locality above 4, is ignored with a warning', () => {
  for (const [record, message] of [
    [{ ...startupLocality(3), pcr: 1 }, /on PCR 1/],
    [startupLocality(7), /locality 7/],
  ] as const) {
    const events = [record, ...typicalBoot()];
    const r = replay(parseEventLog(buildAgileLog(['sha256'], events)));
    assert.equal(r.pcr0Locality, 0);
    assert.equal(r.warnings.length, 1);
    assert.equal(r.warnings[0]?.code, 'startup-locality-bad');
    assert.match(r.warnings[0]?.message ?? '', message);
    assert.deepEqual(pcrsToJson(r.pcrs), replayJson(buildAgileLog(['sha256'], typicalBoot())));
  }
});

test('an H-CRTM sequence starts PCR0 at 0...04 and extends the H-CRTM digest', () => {
  const events: SynthEvent[] = [
    startupLocality(4),
    { pcr: 0, type: EV.EFI_HCRTM_EVENT, data: ascii('HCRTM') },
    ...typicalBoot(),
  ];
  const r = replay(parseEventLog(buildAgileLog(['sha256', 'sha384'], events)));
  assert.equal(r.hcrtm, true);
  assert.equal(r.pcr0Locality, 4);
  assert.deepEqual(pcrsToJson(r.pcrs), referenceReplay(['sha256', 'sha384'], events));
  // Without a StartupLocality record the H-CRTM event alone still means locality 4.
  const alone = events.slice(1);
  assert.deepEqual(replayJson(buildAgileLog(['sha256'], alone)), referenceReplay(['sha256'], alone));
  assert.equal(replay(parseEventLog(buildAgileLog(['sha256'], alone))).pcr0Locality, 4);
});

test('EV_NO_ACTION records are never extended, whatever their digest and PCR', () => {
  const noise: SynthEvent = {
    pcr: 0,
    type: EV.NO_ACTION,
    data: ascii('SP800-155 Event\0'),
    digests: { sha256: new Uint8Array(32).fill(7) },
  };
  const events = [...typicalBoot(), noise, { ...noise, pcr: 0xffffffff }];
  const got = replayJson(buildAgileLog(['sha256'], events));
  assert.deepEqual(got, replayJson(buildAgileLog(['sha256'], typicalBoot())));
});

test('a record without a digest for a declared bank leaves that bank alone', () => {
  const events: SynthEvent[] = [
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('both') },
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('sha1 only'), omit: ['sha256'] },
    { pcr: 5, type: EV.EFI_ACTION, data: ascii('sha256 only'), omit: ['sha1'] },
  ];
  const got = replayJson(buildAgileLog(['sha1', 'sha256'], events));
  assert.deepEqual(got, referenceReplay(['sha1', 'sha256'], events));
  assert.deepEqual(Object.keys(got.sha1 ?? {}), ['4']);
});

test('trailing 0x00 or 0xFF padding is tolerated, other trailing bytes are a warning', () => {
  const events = typicalBoot();
  const base = buildAgileLog(['sha256'], events);
  const expected = referenceReplay(['sha256'], events);
  for (const fill of [0x00, 0xff]) {
    const padded = concat(base, new Uint8Array(4096).fill(fill));
    const log = parseEventLog(padded);
    assert.equal(log.events.length, events.length + 1);
    assert.equal(log.parsedLength, base.length);
    assert.deepEqual(
      log.warnings.map((w) => w.code),
      ['padding'],
    );
    assert.deepEqual(pcrsToJson(replay(log).pcrs), expected);
  }
  const legacy = concat(buildLegacyLog(events), new Uint8Array(100));
  assert.deepEqual(pcrsToJson(replay(parseEventLog(legacy)).pcrs), referenceReplay(['sha1'], events));

  const junk = concat(base, new Uint8Array([1, 2, 3, 4, 5]));
  const log = parseEventLog(junk);
  assert.deepEqual(
    log.warnings.map((w) => [w.code, w.offset]),
    [['trailing-bytes', base.length]],
  );
  assert.throws(
    () => parseEventLog(junk, { strict: true }),
    (e: unknown) => e instanceof EventLogError && e.code === 'trailing-bytes' && e.offset === base.length,
  );
});

test('node:crypto and @noble/hashes providers replay identically', () => {
  const banks: Bank[] = ['sha1', 'sha256', 'sha384', 'sha512'];
  const events = [startupLocality(3), ...typicalBoot()];
  const log = parseEventLog(buildAgileLog(banks, events));
  const a = pcrsToJson(replay(log, { hash: nodeHash }).pcrs);
  const b = pcrsToJson(replay(log, { hash: nobleHash }).pcrs);
  assert.deepEqual(a, b);
  assert.deepEqual(a, referenceReplay(banks, events));
});

test('a bank the hash provider cannot compute is refused with a typed error', () => {
  const log = parseEventLog(buildAgileLog(['sha256', 'sm3_256'], typicalBoot()));
  assert.throws(
    () => replay(log, { hash: nobleHash }),
    (e: unknown) => e instanceof EventLogError && e.code === 'unsupported-algorithm' && e.eventIndex === 1,
  );
});
