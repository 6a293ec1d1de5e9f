// Properties over generated logs and golden sets (fast-check). Logs are built from labels and replayed
// with node:crypto (fixtures.ts), so the PCR values do not come from the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CaptureError,
  capture,
  evaluate,
  type Measurements,
  PolicyValidationError,
  parseGoldenSetJson,
  publish,
  RULE_KINDS,
  validateGoldenSet,
  validateGoldenSetDraft,
  validateMeasurements,
} from '../src/index.ts';
import { buildMeasurements, type EventSpec, sha1, sha256 } from './fixtures.ts';

const RUNS = { numRuns: 200 };

const TYPES = [
  'EV_NO_ACTION',
  'EV_S_CRTM_VERSION',
  'EV_EFI_PLATFORM_FIRMWARE_BLOB',
  'EV_EFI_VARIABLE_DRIVER_CONFIG',
  'EV_EFI_BOOT_SERVICES_APPLICATION',
  'EV_EFI_ACTION',
  'EV_SEPARATOR',
];

/** Labels from a small pool, so digests repeat across events, rules and logs. */
const label = fc.integer({ min: 0, max: 30 }).map((n) => `blob-${n}`);

function eventSpec(verified: fc.Arbitrary<boolean>): fc.Arbitrary<EventSpec> {
  return fc
    .record({
      pcr: fc.integer({ min: 0, max: 9 }),
      type: fc.constantFrom(...TYPES),
      label,
      verified,
      sb: fc.option(fc.boolean(), { nil: undefined }),
      path: fc.option(fc.constantFrom('\\EFI\\BOOT\\BOOTX64.EFI', '\\EFI\\ubuntu\\grubx64.efi'), {
        nil: undefined,
      }),
    })
    .map(({ pcr, type, label, verified, sb, path }) => ({
      // Boot applications live in PCR 4, as firmware measures them.
      pcr: type === 'EV_EFI_BOOT_SERVICES_APPLICATION' ? 4 : pcr,
      type,
      label,
      verified,
      ...(sb !== undefined && type === 'EV_EFI_VARIABLE_DRIVER_CONFIG'
        ? { decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: sb } }
        : path !== undefined && type === 'EV_EFI_BOOT_SERVICES_APPLICATION'
          ? { decoded: { kind: 'boot-application', imagePath: path } }
          : {}),
    }));
}

function measurements(verified: fc.Arbitrary<boolean>): fc.Arbitrary<Measurements> {
  return fc
    .record({
      specs: fc.array(eventSpec(verified), { maxLength: 40 }),
      dbx: fc.uniqueArray(
        label.map((l) => sha256(`dbx-${l}`)),
        { maxLength: 6 },
      ),
    })
    .map(({ specs, dbx }) => {
      // Firmware measures the SecureBoot variable once; a log that contradicts itself is tested in capture.test.ts.
      let seen = false;
      const once = specs.map((s) => {
        if (s.decoded?.secureBoot === undefined) return s;
        if (!seen) {
          seen = true;
          return s;
        }
        const { decoded: _dropped, ...rest } = s;
        return rest;
      });
      return buildMeasurements(once, { dbx });
    });
}

test('capture → publish → evaluate on the same fully verified measurements passes', () => {
  fc.assert(
    fc.property(measurements(fc.constant(true)), (m) => {
      const set = publish([], capture('prop', m));
      const v = evaluate(set, m);
      assert.equal(v.pass, true, JSON.stringify(v.failed));
      assert.equal(v.code, 'PASS');
    }),
    RUNS,
  );
});

test('with some unverified events, capture either refuses (CaptureError) or its set passes', () => {
  let passed = 0;
  fc.assert(
    fc.property(measurements(fc.boolean()), (m) => {
      let draft: ReturnType<typeof capture>;
      try {
        draft = capture('prop', m);
      } catch (e) {
        assert.ok(e instanceof CaptureError, String(e));
        return;
      }
      passed++;
      assert.equal(evaluate(publish([], draft), m).pass, true);
    }),
    RUNS,
  );
  assert.ok(passed > 0, 'the generator must also produce capturable logs');
});

test('changing any captured PCR fails exactly that rule, with the new value observed', () => {
  fc.assert(
    fc.property(
      measurements(fc.constant(true)),
      fc.integer({ min: 0, max: 7 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (m, pcr, bytes) => {
        const set = publish([], capture('prop', m));
        const changed = Buffer.from(bytes).toString('hex');
        fc.pre(changed !== m.pcrs.sha256![String(pcr)]);
        const edited: Measurements = {
          ...m,
          pcrs: { ...m.pcrs, sha256: { ...m.pcrs.sha256, [String(pcr)]: changed } },
        };
        const v = evaluate(set, edited);
        assert.equal(v.pass, false);
        assert.deepEqual(
          v.failed.map((r) => [r.ruleId, r.code, r.observed, r.expected]),
          [[`pcr-sha256-${pcr}`, 'PCR_MISMATCH', changed, [m.pcrs.sha256![String(pcr)]]]],
        );
      },
    ),
    RUNS,
  );
});

const digest = fc.oneof(
  label.map(sha256),
  label.map(sha1),
  label.map((l) => sha256(`dbx-${l}`)),
  fc.constantFrom('0'.repeat(64), 'F'.repeat(64)),
);
const sha256Digest = fc.oneof(
  label.map(sha256),
  label.map((l) => sha256(`dbx-${l}`)),
);

const ruleJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({
    kind: fc.constant('pcr-exact'),
    bank: fc.constant('sha256'),
    pcr: fc.integer({ min: 0, max: 23 }),
    allowed: fc.array(sha256Digest, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('pcr-exact'),
    bank: fc.constant('sha1'),
    pcr: fc.integer({ min: 0, max: 23 }),
    allowed: fc.array(label.map(sha1), { minLength: 1, maxLength: 4 }),
  }),
  fc.record(
    {
      kind: fc.constant('event-allowlist'),
      pcr: fc.integer({ min: 0, max: 9 }),
      eventType: fc.constantFrom(...TYPES),
      allowed: fc.array(sha256Digest, { maxLength: 6 }),
    },
    { requiredKeys: ['kind', 'pcr', 'allowed'] },
  ),
  fc.constant({ kind: 'secure-boot-enabled' }),
  fc.record({
    kind: fc.constant('dbx-contains'),
    required: fc.array(sha256Digest, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('forbidden-digests'),
    digests: fc.array(digest, { minLength: 1, maxLength: 4 }),
  }),
);

const goldenJson = fc.record({
  class: fc.constantFrom('web', 'db', 'gpu-node'),
  version: fc.integer({ min: 1, max: 1000 }),
  createdAt: fc.constant('2026-01-01T00:00:00.000Z'),
  rules: fc.array(ruleJson, { minLength: 1, maxLength: 12 }),
});

test('evaluate never throws on validated input and its verdict is consistent', () => {
  fc.assert(
    fc.property(goldenJson, measurements(fc.boolean()), (g, raw) => {
      const set = validateGoldenSet(g);
      const m = validateMeasurements(JSON.parse(JSON.stringify(raw)));
      const v = evaluate(set, m);
      assert.equal(v.pass, v.failed.length === 0);
      assert.equal(v.code, v.pass ? 'PASS' : 'RULES_FAILED');
      assert.deepEqual(
        v.failed,
        v.results.filter((r) => !r.pass),
      );
      for (const rule of set.rules) {
        const mine = v.results.filter((r) => r.ruleId === rule.id);
        assert.ok(mine.length >= 1, `rule ${rule.id} has no result`);
        assert.ok(mine.every((r) => r.kind === rule.kind));
        // A rule passes in exactly one result, or fails in all of its results.
        assert.ok(mine.length === 1 || mine.every((r) => !r.pass));
      }
      for (const r of v.failed) assert.notEqual(r.code, 'OK');
      assert.ok(!v.failed.some((r) => r.code === 'EVALUATION_ERROR' || r.code === 'UNKNOWN_RULE'));
      JSON.stringify(v);
    }),
    RUNS,
  );
});

function expectTypedOrValue(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyValidationError, `untyped error: ${String(e)}`);
    assert.ok(e.issues.length >= 1);
    for (const i of e.issues) assert.ok(i.path.startsWith('$') && i.message.length > 0);
  }
}

test('validation of random JSON returns or throws PolicyValidationError, nothing else', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (j) => {
      expectTypedOrValue(() => validateGoldenSetDraft(j));
      expectTypedOrValue(() => validateGoldenSet(j));
      expectTypedOrValue(() => validateMeasurements(j));
      expectTypedOrValue(() => parseGoldenSetJson(JSON.stringify(j)));
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.string(), (s) => expectTypedOrValue(() => parseGoldenSetJson(s))),
    { numRuns: 300 },
  );
});

/** Replaces the value at a random position of a JSON tree with `replacement`. */
function graft(tree: unknown, pick: number, replacement: unknown): unknown {
  let n = pick;
  const walk = (node: unknown): unknown => {
    if (n-- === 0) return replacement;
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    }
    return node;
  };
  return walk(tree);
}

test('a valid golden set with one random subtree replaced is accepted or rejected with a typed error', () => {
  let rejected = 0;
  fc.assert(
    fc.property(goldenJson, fc.nat(200), fc.jsonValue({ maxDepth: 2 }), (g, pick, junk) => {
      const mutated = graft(g, pick, junk);
      try {
        const set = validateGoldenSet(mutated);
        assert.ok(set.rules.every((r) => RULE_KINDS.includes(r.kind)));
      } catch (e) {
        assert.ok(e instanceof PolicyValidationError, `untyped error: ${String(e)}`);
        rejected++;
      }
    }),
    RUNS,
  );
  assert.ok(rejected > 0);
});

/** Mostly `good`, now and then `bad`: most inputs validate, every field sometimes does not. */
function mostly<T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> {
  return fc.oneof({ arbitrary: good, weight: 60 }, { arbitrary: bad, weight: 1 });
}

/** Measurement-shaped JSON with loosely typed fields: most validate, some do not. */
const looseMeasurements = fc.record({
  hostId: mostly(fc.string(), fc.integer()),
  attestationId: fc.string(),
  pcrs: mostly(
    fc.record(
      {
        sha1: fc.dictionary(fc.constantFrom('0', '4', '7', '23'), label.map(sha1)),
        sha256: fc.dictionary(
          mostly(fc.constantFrom('0', '4', '7', '23'), fc.constantFrom('24', '07')),
          mostly(sha256Digest, label.map(sha1)),
        ),
      },
      { requiredKeys: ['sha256'] },
    ),
    fc.constant({ md5: {} }),
  ),
  events: fc.uniqueArray(
    fc.record(
      {
        index: mostly(fc.nat(60), fc.constant(-1)),
        pcr: mostly(fc.integer({ min: 0, max: 9 }), fc.constant(24)),
        type: mostly(fc.constantFrom(...TYPES), fc.string()),
        digests: fc.record(
          { sha1: label.map(sha1), sha256: mostly(sha256Digest, label.map(sha1)) },
          { requiredKeys: [] },
        ),
        verified: mostly(fc.boolean(), fc.constant('yes')),
        decoded: fc.record(
          {
            kind: mostly(fc.string(), fc.constant(3)),
            secureBoot: fc.boolean(),
            imagePath: fc.string(),
            variableName: fc.constantFrom('SecureBoot', 'dbx', 'db'),
          },
          { requiredKeys: ['kind'] },
        ),
      },
      { requiredKeys: ['index', 'pcr', 'type', 'digests', 'verified'] },
    ),
    { maxLength: 30, selector: (e) => e.index },
  ),
  secureBoot: fc.record(
    { enabled: mostly(fc.boolean(), fc.constant(null)), eventIndex: fc.nat(60) },
    { requiredKeys: [] },
  ),
  dbx: fc.array(mostly(sha256Digest, label.map(sha1)), { maxLength: 5 }),
  dbxEventIndex: fc.nat(60),
  bootApplications: fc.array(fc.record({ digest: sha256Digest, eventIndex: fc.nat(60), path: fc.string() }), {
    maxLength: 4,
  }),
});

test('loose measurement JSON: validation returns or raises PolicyValidationError; evaluate never throws on what validates', () => {
  let validated = 0;
  fc.assert(
    fc.property(goldenJson, looseMeasurements, (g, raw) => {
      let m: Measurements;
      try {
        m = validateMeasurements(raw);
      } catch (e) {
        assert.ok(e instanceof PolicyValidationError, `untyped error: ${String(e)}`);
        return;
      }
      validated++;
      const v = evaluate(validateGoldenSet(g), m);
      assert.equal(v.pass, v.failed.length === 0);
      assert.ok(!v.failed.some((r) => r.code === 'EVALUATION_ERROR'));
    }),
    { numRuns: 400 },
  );
  assert.ok(validated > 100, `the generator must mostly produce valid measurements (${validated} of 400)`);
});
