// Hostile input: whatever bytes arrive, the readers throw only DerError or HealthCertError,
// each with a stable code and an offset inside the input.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { createCa } from '../src/ca.ts';
import { createCrl, parseCrl } from '../src/crl.ts';
import { type DerElement, decodeDer, encodeTlv, concatBytes } from '../src/der.ts';
import { DerError, HealthCertError } from '../src/errors.ts';
import { issueHealthCert, parseHealthCert } from '../src/health-cert.ts';
import { verifyHealthCert } from '../src/verify.ts';

const ca = createCa({ commonName: 'HostGate Fuzz CA', validityDays: 30 });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const cert = issueHealthCert({
  ca,
  hostId: 'h-fuzz',
  subjectPublicKey: rsa,
  policyClass: 'fuzz',
  policyVersion: 1,
  verdictId: 'v-1',
  pcrDigest: 'ab'.repeat(32),
}).der;
const crl = createCrl({
  ca,
  revoked: [
    { serial: 3n, revokedAt: new Date('2026-01-01T00:00:00Z'), reason: 'keyCompromise' },
    { serial: 4n, revokedAt: new Date('2026-01-01T00:00:00Z') },
  ],
  thisUpdate: new Date('2026-01-01T00:00:00Z'),
  nextUpdate: new Date('2026-01-02T00:00:00Z'),
}).der;

function typedOnly(input: Uint8Array, run: (b: Uint8Array) => unknown): void {
  try {
    run(input);
  } catch (e) {
    if (!(e instanceof DerError) && !(e instanceof HealthCertError)) throw e;
    assert.match(e.code, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(
      Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= input.length,
      `${e.code} at ${e.offset}`,
    );
  }
}

const readers: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
  ['parseHealthCert', cert, parseHealthCert],
  ['verifyHealthCert', cert, (b) => verifyHealthCert(b, { trusted: ca, at: new Date() })],
  ['parseCrl', crl, parseCrl],
];

const byteMutation = fc.record({
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  cut: fc.nat(),
  insert: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  mode: fc.constantFrom('set', 'xor', 'truncate', 'insert', 'delete'),
});

type ByteMutation = { at: number; value: number; cut: number; insert: Uint8Array; mode: string };

function mutateBytes(input: Uint8Array, m: ByteMutation): Uint8Array {
  const i = m.at % input.length;
  const out = input.slice();
  switch (m.mode) {
    case 'set':
      out[i] = m.value;
      return out;
    case 'xor':
      out[i]! ^= m.value || 1;
      return out;
    case 'truncate':
      return out.subarray(0, m.cut % input.length);
    case 'insert':
      return concatBytes([out.subarray(0, i), m.insert, out.subarray(i)]);
    default:
      return concatBytes([out.subarray(0, i), out.subarray(i + 1 + (m.cut % 4))]);
  }
}

for (const [name, valid, read] of readers) {
  test(`${name}: byte-level mutations only raise typed errors`, () => {
    fc.assert(
      fc.property(byteMutation, (m) => typedOnly(mutateBytes(valid, m), read)),
      { numRuns: 1500 },
    );
  });
}

// Structure-aware: rebuild the DER with one element replaced by other well-formed TLVs, so the
// mutations get past the DER layer and reach the certificate and CRL rules.
function collect(el: DerElement, out: DerElement[] = []): DerElement[] {
  out.push(el);
  for (const c of el.children) collect(c, out);
  return out;
}

function rebuild(el: DerElement, target: DerElement, replacement: Uint8Array): Uint8Array {
  if (el === target) return replacement;
  if (!el.constructed) return el.encoded;
  return encodeTlv(
    el.tagClass,
    true,
    el.tagNumber,
    concatBytes(el.children.map((c) => rebuild(c, target, replacement))),
  );
}

const replacement = fc.oneof(
  fc
    .record({
      tagClass: fc.integer({ min: 0, max: 3 }),
      tagNumber: fc.constantFrom(1, 2, 3, 4, 5, 6, 10, 12, 19, 22, 23, 24, 0, 1, 3, 6),
      content: fc.uint8Array({ maxLength: 40 }),
    })
    .map(({ tagClass, tagNumber, content }) => encodeTlv(tagClass, false, tagNumber, content)),
  fc.constant(new Uint8Array(0)), // remove the element
  fc.constant(encodeTlv(0, true, 16, new Uint8Array(0))), // empty SEQUENCE
);

for (const [name, valid, read] of readers) {
  test(`${name}: replaced elements only raise typed errors`, () => {
    const root = decodeDer(valid);
    const elements = collect(root);
    let parsedAnyway = 0;
    fc.assert(
      fc.property(fc.nat(), replacement, fc.boolean(), (pick, repl, duplicate) => {
        const target = elements[pick % elements.length]!;
        const bytes = rebuild(root, target, duplicate ? concatBytes([target.encoded, repl]) : repl);
        try {
          read(bytes);
          parsedAnyway++;
        } catch {
          // checked below
        }
        typedOnly(bytes, read);
      }),
      { numRuns: 1500 },
    );
    // Some replacements (e.g. in the signature bytes for parse*) are legitimately still readable.
    assert.ok(parsedAnyway < 1500);
  });
}

test('random bytes and random DER trees only raise typed errors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
      for (const [, , read] of readers) typedOnly(b, read);
    }),
    { numRuns: 1000 },
  );
});
