// Replay's two paths (Latin-1 digests from node:crypto, Uint8Array digests from any other provider)
// against the byte-by-byte reference replay in log-builder.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type EventLog,
  type HashProvider,
  nobleHash,
  pcrsToJson,
  parseEventLog,
  replay,
} from '../src/index.ts';
import { nodeHash } from '../src/hash-node.ts';
import {
  type Bank,
  buildAgileLog,
  EV,
  hash,
  hex,
  referenceReplay,
  type SynthEvent,
  typicalBoot,
} from './log-builder.ts';

// Same hashing as nodeHash but not registered for Latin-1 digests, so replay takes the generic path.
const plainNode: HashProvider = {
  supports: (b) => nodeHash.supports(b),
  digest: (b, ...p) => nodeHash.digest(b, ...p),
};

test('PCRs above 31 (a raised maxPcrIndex) replay like PCRs 0-31, in ascending order', () => {
  const banks: Bank[] = ['sha1', 'sha256', 'sha384'];
  const events: SynthEvent[] = [40, 999, 5, 32, 31, 40, 999, 0, 17].map((pcr, i) => ({
    pcr,
    type: EV.IPL,
    data: new TextEncoder().encode(`event ${i}`),
  }));
  const log = parseEventLog(buildAgileLog(banks, events), { maxPcrIndex: 1000 });
  const expected = referenceReplay(banks, events);
  for (const provider of [nodeHash, plainNode, nobleHash]) {
    const json = pcrsToJson(replay(log, { hash: provider }).pcrs);
    assert.deepEqual(json, expected);
    assert.deepEqual(Object.keys(json.sha256 ?? {}), ['0', '5', '17', '31', '32', '40', '999']);
  }
});

test('both paths return plain Uint8Array values equal to each other', () => {
  const banks: Bank[] = ['sha1', 'sha256', 'sha384', 'sha512'];
  const log = parseEventLog(buildAgileLog(banks, typicalBoot()));
  const fast = replay(log, { hash: nodeHash }).pcrs;
  const slow = replay(log, { hash: plainNode }).pcrs;
  assert.deepEqual(fast, slow);
  for (const bank of Object.values(fast))
    for (const v of Object.values(bank)) assert.equal(Object.getPrototypeOf(v), Uint8Array.prototype);
});

test('a hand-built log with digests of the wrong size hashes exactly pcr || digest', () => {
  // The parser never yields this, but EventLog is a plain interface callers may build themselves.
  const short = new Uint8Array([1, 2, 3, 4, 5]);
  const long = new Uint8Array(40).fill(7);
  const right = new Uint8Array(32).fill(9);
  const ev = (index: number, pcr: number, digest: Uint8Array) => ({
    index,
    offset: index * 100,
    pcr,
    type: EV.IPL,
    typeName: 'EV_IPL',
    digests: [{ bank: 'sha256', algId: 0x000b, digest }],
    data: new Uint8Array(0),
  });
  const log: EventLog = {
    format: 'crypto-agile',
    banks: [{ name: 'sha256', algId: 0x000b, digestSize: 32 }],
    specId: undefined,
    events: [ev(1, 8, short), ev(2, 8, long), ev(3, 8, right), ev(4, 9, right)],
    warnings: [],
    parsedLength: 0,
  };
  let pcr8 = hash('sha256', new Uint8Array(32), short);
  pcr8 = hash('sha256', pcr8, long);
  pcr8 = hash('sha256', pcr8, right);
  const pcr9 = hash('sha256', new Uint8Array(32), right);
  for (const provider of [nodeHash, plainNode]) {
    const pcrs = replay(log, { hash: provider }).pcrs.sha256!;
    assert.equal(hex(pcrs[8]!), hex(pcr8));
    assert.equal(hex(pcrs[9]!), hex(pcr9));
  }
});

test('a bank declared with the wrong digest size starts from that size, then carries real digests', () => {
  const digest = new Uint8Array(32).fill(3);
  const log: EventLog = {
    format: 'crypto-agile',
    banks: [{ name: 'sha256', algId: 0x000b, digestSize: 20 }],
    specId: undefined,
    events: [1, 2].map((index) => ({
      index,
      offset: 0,
      pcr: 4,
      type: EV.IPL,
      typeName: 'EV_IPL',
      digests: [{ bank: 'sha256', algId: 0x000b, digest }],
      data: new Uint8Array(0),
    })),
    warnings: [],
    parsedLength: 0,
  };
  const expected = hash('sha256', hash('sha256', new Uint8Array(20), digest), digest);
  for (const provider of [nodeHash, plainNode])
    assert.equal(hex(replay(log, { hash: provider }).pcrs.sha256![4]!), hex(expected));
});
