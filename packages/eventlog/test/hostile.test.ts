// Hostile input: arbitrary bytes and mutated logs reach the parser and replay; the only
// exception allowed is EventLogError, and anything accepted must replay without throwing.
// (The million-case fuzz run lives in bench/; this is the quick property check for CI.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EventLogError, parseEventLog, replay } from '../src/index.ts';
import { corpusLogs } from './corpus.ts';
import { buildAgileLog, buildLegacyLog, startupLocality, typicalBoot } from './log-builder.ts';

function parseAndReplay(bytes: Uint8Array): void {
  let log: ReturnType<typeof parseEventLog>;
  try {
    log = parseEventLog(bytes, { maxEventSize: 1 << 20 });
  } catch (e) {
    if (e instanceof EventLogError) {
      assert.ok(e.offset >= 0 && e.offset <= bytes.length, `offset ${e.offset} of ${bytes.length}`);
      return;
    }
    throw e;
  }
  assert.ok(log.parsedLength <= bytes.length);
  for (const ev of log.events) {
    assert.ok(ev.offset >= 0 && ev.offset + ev.data.length <= bytes.length);
    // The first record is always TCG_PCR_EVENT with a 20-byte SHA-1 field, whatever the banks.
    const size = (bank: string) => (ev.index === 0 ? 20 : log.banks.find((b) => b.name === bank)?.digestSize);
    for (const d of ev.digests) assert.equal(d.digest.length, size(d.bank));
  }
  replay(log);
}

const seeds: Uint8Array[] = [
  buildAgileLog(['sha1', 'sha256', 'sha384'], [startupLocality(3), ...typicalBoot()]),
  buildLegacyLog(typicalBoot()),
  ...corpusLogs()
    .filter((l) => l.bytes.length < 20_000)
    .map((l) => l.bytes),
];

// Byte edits biased towards the fields that matter: sizes, counts, algorithm ids.
const mutation = fc.record({
  seed: fc.nat(),
  edits: fc.array(
    fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('byte', 'u32-max', 'u32-small', 'cut', 'zero'),
      value: fc.nat(255),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

test('arbitrary bytes never throw anything but EventLogError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (b) => parseAndReplay(b)),
    { numRuns: 3000, seed: 42 },
  );
});

test('mutated synthetic and corpus logs never throw anything but EventLogError', () => {
  fc.assert(
    fc.property(mutation, ({ seed, edits }) => {
      let b = new Uint8Array(seeds[seed % seeds.length]!);
      for (const e of edits) {
        const at = e.at % Math.max(1, b.length);
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (e.kind === 'byte') b[at] = e.value;
        else if (e.kind === 'u32-max' && at + 4 <= b.length) view.setUint32(at, 0xffffffff - e.value, true);
        else if (e.kind === 'u32-small' && at + 4 <= b.length) view.setUint32(at, e.value, true);
        else if (e.kind === 'cut') b = b.subarray(0, at);
        else if (e.kind === 'zero') b.fill(0, at, at + e.value);
      }
      parseAndReplay(b);
    }),
    { numRuns: 20_000, seed: 7 },
  );
});
