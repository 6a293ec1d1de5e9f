// A crypto-agile record with no digest extends nothing, so it is accepted, but no TPM-aware
// producer writes one: zeros followed by another byte (a buffer that is not all padding)
// parse as a run of them. The parser says so instead of adding phantom events silently.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEventLog } from '../src/index.ts';
import { buildAgileLog, typicalBoot } from './log-builder.ts';

test('zeros then a stray byte after the last record: phantom records are named in a warning', () => {
  const log = buildAgileLog(['sha256'], typicalBoot());
  const clean = parseEventLog(log);
  assert.deepEqual(
    clean.warnings.map((w) => w.code),
    [],
  );
  const dirty = new Uint8Array(log.length + 101);
  dirty.set(log);
  dirty[dirty.length - 1] = 0x78; // 'x': the zeros before it are not trailing padding
  const parsed = parseEventLog(dirty);
  // 100 zero bytes = 6 records of 16 bytes (pcr, type, count 0, size 0) + 4 left over.
  assert.equal(parsed.events.length, clean.events.length + 6);
  const w = parsed.warnings.find((x) => x.code === 'no-digests');
  assert.ok(w, JSON.stringify(parsed.warnings));
  assert.equal(w.offset, log.length);
  assert.match(w.message, /^6 record\(s\) carry no digest, the first is event \d+$/);
  assert.ok(parsed.warnings.some((x) => x.code === 'trailing-bytes'));
});
