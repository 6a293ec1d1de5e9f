import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLogError, type EventLogErrorCode, parseEventLog, toHex } from '../src/index.ts';
import {
  ALG,
  agileRecord,
  ascii,
  type Bank,
  buildAgileLog,
  buildLegacyLog,
  concat,
  EV,
  legacyRecord,
  SIZE,
  type SynthEvent,
  specIdData,
  typicalBoot,
  u16,
  u32,
} from './log-builder.ts';

function refused(
  bytes: Uint8Array,
  code: EventLogErrorCode,
  offset?: number,
  eventIndex?: number,
  opts = {},
) {
  assert.throws(
    () => parseEventLog(bytes, opts),
    (e: unknown) => {
      assert.ok(e instanceof EventLogError, `not an EventLogError: ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (offset !== undefined) assert.equal(e.offset, offset, `offset: ${e.message}`);
      if (eventIndex !== undefined) assert.equal(e.eventIndex, eventIndex, `event index: ${e.message}`);
      return true;
    },
  );
}

const BANKS: Bank[] = ['sha1', 'sha256'];
// Spec ID header for sha1+sha256: 32-byte legacy header + 37-byte TCG_EfiSpecIdEvent.
const HEADER = 32 + 16 + 12 + 2 * 4 + 1;
// TCG_PCR_EVENT2 prefix with sha1+sha256 digests, before the event data.
const AGILE_PREFIX = 12 + 2 + 20 + 2 + 32 + 4;

test('header layout the offsets below rely on', () => {
  const log = buildAgileLog(BANKS, [{ pcr: 4, type: EV.EFI_ACTION, data: ascii('x') }]);
  assert.equal(log.length, HEADER + AGILE_PREFIX + 1);
  const parsed = parseEventLog(log);
  assert.equal(parsed.events[1]?.offset, HEADER);
  assert.equal(toHex(parsed.events[1]!.data), '78');
});

test('empty input is refused', () => {
  refused(new Uint8Array(0), 'empty', 0, -1);
});

test('ASCII text is not an event log', () => {
  refused(ascii('This is not a TPM event log at all\n'), 'not-an-event-log', 0, 0);
  refused(ascii('garbage!'), 'not-an-event-log', 0, 0);
});

test('input shorter than one record is truncated', () => {
  refused(new Uint8Array(10), 'truncated', 0, 0);
  refused(new Uint8Array(31), 'truncated', 0, 0);
});

test('log larger than the limit is refused before parsing', () => {
  const log = buildAgileLog(BANKS, typicalBoot());
  refused(log, 'too-large', 0, -1, { maxLogSize: log.length - 1 });
  assert.doesNotThrow(() => parseEventLog(log, { maxLogSize: log.length }));
});

test('more events than the limit are refused', () => {
  const events = typicalBoot();
  const log = buildAgileLog(BANKS, events);
  refused(log, 'too-many-events', undefined, events.length, { maxEvents: events.length });
  assert.equal(parseEventLog(log, { maxEvents: events.length + 1 }).events.length, events.length + 1);
  const legacy = buildLegacyLog(events);
  const fourth = 3 * 32 + ascii('1.0\0POST CODESecureBoot=1').length;
  assert.equal(parseEventLog(legacy).events[3]?.offset, fourth);
  refused(legacy, 'too-many-events', fourth, 3, { maxEvents: 3 });
});

test('a huge declared event size is refused at the size field', () => {
  const rec = agileRecord(
    4,
    EV.EFI_ACTION,
    BANKS.map((b) => ({ algId: ALG[b], digest: new Uint8Array(SIZE[b]) })),
    new Uint8Array(0),
  );
  const sizeAt = HEADER + AGILE_PREFIX - 4;
  for (const size of [0xffffffff, 0x7fffffff, 64 << 20]) {
    const bad = concat(buildAgileLog(BANKS, []), rec);
    new DataView(bad.buffer).setUint32(sizeAt, size, true);
    refused(bad, 'event-too-large', sizeAt, 1);
  }
  // Under the cap but past the end of the log: truncated, same offset.
  const bad = concat(buildAgileLog(BANKS, []), rec, new Uint8Array(10).fill(1));
  new DataView(bad.buffer).setUint32(sizeAt, 11, true);
  refused(bad, 'truncated', sizeAt, 1);
  // The cap is configurable.
  const ok = buildAgileLog(BANKS, [{ pcr: 4, type: EV.EFI_ACTION, data: new Uint8Array(100) }]);
  refused(ok, 'event-too-large', sizeAt, 1, { maxEventSize: 99 });
  // Legacy records too.
  const legacy = legacyRecord(0, EV.S_CRTM_VERSION, new Uint8Array(20), new Uint8Array(0));
  new DataView(legacy.buffer).setUint32(28, 0xfffffff0, true);
  refused(legacy, 'event-too-large', 28, 0);
});

test('a digest count above the declared banks is refused', () => {
  for (const count of [3, 0xffffffff]) {
    const log = buildAgileLog(BANKS, typicalBoot());
    new DataView(log.buffer).setUint32(HEADER + 8, count, true);
    refused(log, 'digest-count-mismatch', HEADER + 8, 1);
  }
});

test('digests of undeclared or repeated algorithms are refused', () => {
  const d1 = { algId: ALG.sha1, digest: new Uint8Array(20) };
  const base = buildAgileLog(BANKS, []);
  const sha384 = agileRecord(
    4,
    EV.EFI_ACTION,
    [{ algId: ALG.sha384, digest: new Uint8Array(48) }],
    ascii('x'),
  );
  refused(concat(base, sha384), 'undeclared-algorithm', HEADER + 12, 1);
  const twice = agileRecord(4, EV.EFI_ACTION, [d1, d1], ascii('x'));
  refused(concat(base, twice), 'duplicate-digest', HEADER + 12 + 22, 1);
});

test('Spec ID events with unknown algorithms or bad fields are refused', () => {
  const header = (data: Uint8Array) => legacyRecord(0, EV.NO_ACTION, new Uint8Array(20), data);
  // Unknown algorithm id: offset of that algorithm entry.
  refused(
    header(
      specIdData([
        { algId: ALG.sha256, size: 32 },
        { algId: 0x1234, size: 32 },
      ]),
    ),
    'unknown-algorithm',
    32 + 28 + 4,
    0,
  );
  // Known algorithm with the wrong digest size.
  refused(header(specIdData([{ algId: ALG.sha256, size: 20 }])), 'bad-spec-id', 32 + 28 + 2, 0);
  // No algorithms, too many algorithms, duplicated algorithm.
  refused(header(specIdData([])), 'bad-spec-id', 32 + 24, 0);
  const many = specIdData([{ algId: ALG.sha256, size: 32 }]);
  new DataView(many.buffer).setUint32(24, 0xffffffff, true);
  refused(header(many), 'bad-spec-id', 32 + 24, 0);
  const listPastEnd = specIdData([{ algId: ALG.sha256, size: 32 }]);
  new DataView(listPastEnd.buffer).setUint32(24, 5, true);
  refused(header(listPastEnd), 'bad-spec-id', 32 + 28, 0);
  refused(
    header(
      specIdData([
        { algId: ALG.sha1, size: 20 },
        { algId: ALG.sha1, size: 20 },
      ]),
    ),
    'bad-spec-id',
    32 + 28 + 4,
    0,
  );
  // Signature present but the structure cut short.
  refused(header(ascii('Spec ID Event03\0\0\0\0\0')), 'bad-spec-id', 32, 0);
});

test('Spec ID vendor info longer than the event: warning, or refused when strict', () => {
  const data = specIdData([{ algId: ALG.sha256, size: 32 }], new Uint8Array(4));
  const cut = data.subarray(0, data.length - 4); // vendorInfoSize says 4, none follow
  const log = legacyRecord(0, EV.NO_ACTION, new Uint8Array(20), cut);
  const parsed = parseEventLog(log);
  assert.deepEqual(
    parsed.warnings.map((w) => w.code),
    ['specid-vendorinfo-truncated'],
  );
  refused(log, 'bad-spec-id', 32 + cut.length - 1, 0, { strict: true });
});

test('a measured event naming a PCR above 23 is refused; EV_NO_ACTION may name any', () => {
  const bad = buildAgileLog(BANKS, [{ pcr: 24, type: EV.EFI_ACTION, data: ascii('x') }]);
  refused(bad, 'pcr-index-out-of-range', HEADER, 1);
  const legacy = buildLegacyLog([...typicalBoot(), { pcr: 0xffffffff, type: EV.IPL, data: ascii('x') }]);
  refused(legacy, 'pcr-index-out-of-range', undefined, typicalBoot().length);
  const windows = buildLegacyLog([
    ...typicalBoot(),
    { pcr: 0xffffffff, type: EV.NO_ACTION, data: ascii('AIK') },
  ]);
  assert.equal(parseEventLog(windows).events.length, typicalBoot().length + 1);
});

// Cut a log at every byte: each cut must end as a shorter log (record boundary), padding, a
// trailing-bytes warning (tail shorter than any record header), or a typed 'truncated'
// error inside the record that was cut; never anything else.
function cutEverywhere(bytes: Uint8Array, boundaries: number[], minRecord: number) {
  const counts = { ok: 0, truncated: 0, trailing: 0, padding: 0 };
  for (let n = 1; n < bytes.length; n++) {
    const cut = bytes.subarray(0, n);
    const start = Math.max(...boundaries.filter((b) => b <= n));
    const index = boundaries.indexOf(start);
    const tail = cut.subarray(start);
    let log: ReturnType<typeof parseEventLog>;
    try {
      log = parseEventLog(cut);
    } catch (e) {
      assert.ok(e instanceof EventLogError, `cut at ${n}: ${String(e)}`);
      assert.ok(
        e.code === 'truncated' || (index === 0 && e.code === 'bad-spec-id'),
        `cut at ${n}: ${e.code} ${e.message}`,
      );
      assert.equal(e.eventIndex, index, `cut at ${n}: ${e.message}`);
      assert.ok(
        e.offset >= start && e.offset <= n,
        `cut at ${n}: offset ${e.offset} outside record ${start}..${n}`,
      );
      counts.truncated++;
      continue;
    }
    assert.notEqual(index, 0, `cut at ${n} inside the first record was accepted`);
    assert.equal(log.parsedLength, start, `cut at ${n}`);
    assert.equal(log.events.length, index, `cut at ${n}`);
    if (n === start) {
      assert.deepEqual(log.warnings, [], `cut at ${n}`);
      counts.ok++;
    } else if (tail.every((b) => b === 0) || tail.every((b) => b === 0xff)) {
      assert.deepEqual(
        log.warnings.map((w) => [w.code, w.offset]),
        [['padding', start]],
      );
      counts.padding++;
    } else {
      assert.ok(tail.length < minRecord, `cut at ${n}: ${tail.length}-byte tail accepted`);
      assert.deepEqual(
        log.warnings.map((w) => [w.code, w.offset]),
        [['trailing-bytes', start]],
      );
      counts.trailing++;
    }
  }
  return counts;
}

function boundariesOf(bytes: Uint8Array): number[] {
  const log = parseEventLog(bytes);
  return [...log.events.map((e) => e.offset), bytes.length];
}

test('a crypto-agile log cut at every byte is refused or reported, never misread', () => {
  const events: SynthEvent[] = typicalBoot().slice(0, 6);
  const bytes = buildAgileLog(BANKS, events);
  const counts = cutEverywhere(bytes, boundariesOf(bytes), 16);
  assert.equal(counts.ok, events.length);
  assert.ok(counts.truncated > bytes.length / 2, JSON.stringify(counts));
  assert.ok(counts.trailing > 0, JSON.stringify(counts));
});

test('a legacy log cut at every byte is refused or reported, never misread', () => {
  const events: SynthEvent[] = typicalBoot().slice(0, 6);
  const bytes = buildLegacyLog(events);
  const counts = cutEverywhere(bytes, boundariesOf(bytes), 32);
  assert.equal(counts.ok, events.length - 1);
  assert.ok(counts.truncated > 0 && counts.trailing > 0, JSON.stringify(counts));
});

test('each truncation point inside a record header names its field offset', () => {
  const bytes = buildAgileLog(BANKS, [{ pcr: 4, type: EV.EFI_ACTION, data: ascii('hello world') }]);
  const r = HEADER;
  // Cuts in the record after the 16-byte minimum: inside digests, size and data.
  const cases: [number, number][] = [
    [r + 20, r + 14], // inside the sha1 digest: the digest starts at r+14
    [r + 35, r + 34], // inside the sha256 algorithm id
    [r + 40, r + 36], // inside the sha256 digest
    [r + 70, r + 68], // inside the event size
    [r + 75, r + 68], // inside the data: reported at the size field that overstates it
  ];
  for (const [n, offset] of cases) refused(bytes.subarray(0, n), 'truncated', offset, 1);
});

test('parser reads only from the bytes it was given (views, no copies)', () => {
  const bytes = buildAgileLog(BANKS, [{ pcr: 4, type: EV.EFI_ACTION, data: ascii('view') }]);
  const log = parseEventLog(bytes);
  const data = log.events[1]!.data;
  assert.equal(data.buffer, bytes.buffer);
  assert.equal(data.byteOffset, HEADER + AGILE_PREFIX);
  assert.deepEqual(u16(ALG.sha256), bytes.subarray(HEADER + 34, HEADER + 36));
  assert.deepEqual(u32(4), bytes.subarray(HEADER, HEADER + 4));
});

test('padding detection stays linear on zeros ending in one other byte', { timeout: 20_000 }, () => {
  // 8 MiB of 16-byte all-zero records then a 1: a per-record rescan of the tail would never finish.
  const bytes = concat(buildAgileLog(['sha256'], []), new Uint8Array(8 << 20), new Uint8Array([1]));
  const t0 = performance.now();
  refused(bytes, 'too-many-events');
  assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
  // Padding after records still ends the log where the records end.
  const padded = concat(buildLegacyLog(typicalBoot()), new Uint8Array(8 << 20).fill(0xff));
  assert.equal(parseEventLog(padded).parsedLength, buildLegacyLog(typicalBoot()).length);
});
