// Test vectors (golden set × measurements × expected verdict, and malformed golden sets × expected
// errors) as JSON in test/vectors/, for any other implementation of the evaluator to check itself against.
// They are generated here: each scenario edits a synthetic host (PCRs replayed with node:crypto) and
// states the failures its edit must cause. The files are written when missing or with UPDATE_VECTORS=1;
// otherwise the committed files must equal what this code generates, and are then evaluated from disk.
// Regenerate: UPDATE_VECTORS=1 scripts/node --test packages/policy/test/vectors.test.ts && npx biome format --write packages/policy/test/vectors
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  capture,
  evaluate,
  type GoldenSet,
  type Measurements,
  PolicyValidationError,
  type Rule,
  validateGoldenSet,
  validateMeasurements,
} from '../src/index.ts';
import { buildMeasurements, DBX, type EventSpec, replay, sha256, typicalSpecs } from './fixtures.ts';

const DIR = path.join(import.meta.dirname, 'vectors');

interface ExpectedFailure {
  ruleId: string;
  code: string;
  eventIndex?: number;
}

interface EvaluateVector {
  name: string;
  description: string;
  goldenSet: GoldenSet | null;
  measurements: Measurements;
  expected: { pass: boolean; code: string; failed: ExpectedFailure[] };
}

interface InvalidVector {
  name: string;
  description: string;
  goldenSet: unknown;
  expected: { error: string; paths: string[] };
}

const SHIM = sha256('shimx64.efi');
const GRUB = sha256('grubx64.efi');
const EVIL = sha256('evil.efi');
const EVIL_APP: EventSpec = {
  pcr: 4,
  type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
  label: 'evil.efi',
  decoded: { kind: 'boot-application', imagePath: '\\EFI\\BOOT\\BOOTX64.EFI' },
};

function pcrOf(specs: readonly EventSpec[], pcr: number): string {
  return replay(
    'sha256',
    specs.filter((s) => s.pcr === pcr && s.type !== 'EV_NO_ACTION').map((s) => sha256(s.label)),
  );
}

/** The golden set every scenario starts from, written out rule by rule from the typical host's log. */
function referenceSet(): GoldenSet {
  const specs = typicalSpecs();
  const rules: Rule[] = [
    { id: 'pcr0', kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: [pcrOf(specs, 0)] },
    { id: 'pcr4', kind: 'pcr-exact', bank: 'sha256', pcr: 4, allowed: [pcrOf(specs, 4)] },
    { id: 'pcr7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [pcrOf(specs, 7)] },
    { id: 'secure-boot', kind: 'secure-boot-enabled' },
    { id: 'dbx', kind: 'dbx-contains', required: [DBX[0]!] },
    {
      id: 'boot-apps',
      kind: 'event-allowlist',
      pcr: 4,
      eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      allowed: [SHIM, GRUB],
    },
    { id: 'forbidden', kind: 'forbidden-digests', digests: [EVIL] },
  ];
  return { class: 'web', version: 1, createdAt: '2026-01-01T00:00:00.000Z', rules };
}

function host(specs: EventSpec[], dbx: readonly string[] = DBX): Measurements {
  return buildMeasurements(specs, { hostId: 'host-vec', attestationId: 'att-vec', dbx });
}

function evaluateVectors(): EvaluateVector[] {
  const ref = referenceSet();
  const vectors: EvaluateVector[] = [];
  const add = (v: EvaluateVector) => vectors.push(v);

  add({
    name: 'pass-typical',
    description: 'A Secure Boot host whose log matches every rule of the reference set.',
    goldenSet: ref,
    measurements: host(typicalSpecs()),
    expected: { pass: true, code: 'PASS', failed: [] },
  });

  add({
    name: 'no-policy',
    description: 'The host class has no active golden set: refused, never passed.',
    goldenSet: null,
    measurements: host(typicalSpecs()),
    expected: { pass: false, code: 'NO_POLICY', failed: [] },
  });

  const sbOff = typicalSpecs();
  sbOff[3] = {
    ...sbOff[3]!,
    label: 'SecureBoot=0',
    decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: false },
  };
  add({
    name: 'secure-boot-off',
    description:
      'SecureBoot measured as 0 (event 3): PCR 7 changes and the Secure Boot rule fails at event 3.',
    goldenSet: ref,
    measurements: host(sbOff),
    expected: {
      pass: false,
      code: 'RULES_FAILED',
      failed: [
        { ruleId: 'pcr7', code: 'PCR_MISMATCH' },
        { ruleId: 'secure-boot', code: 'SECURE_BOOT_DISABLED', eventIndex: 3 },
      ],
    },
  });

  const evil = [...typicalSpecs(), EVIL_APP];
  add({
    name: 'forbidden-boot-application',
    description: 'A forbidden boot application loaded after grub (event 9), replayed into PCR 4.',
    goldenSet: ref,
    measurements: host(evil),
    expected: {
      pass: false,
      code: 'RULES_FAILED',
      failed: [
        { ruleId: 'pcr4', code: 'PCR_MISMATCH' },
        { ruleId: 'boot-apps', code: 'EVENT_NOT_ALLOWED', eventIndex: 9 },
        { ruleId: 'forbidden', code: 'FORBIDDEN_DIGEST', eventIndex: 9 },
      ],
    },
  });

  // The quote shows the good PCR 4, but the log claims one more application: PCR 4 does not replay, so
  // none of its events is verified. The allowed digests prove nothing; the forbidden one still fails.
  const unverified = [...typicalSpecs(), EVIL_APP].map((s) => (s.pcr === 4 ? { ...s, verified: false } : s));
  const unverifiedHost = host(unverified);
  add({
    name: 'unverified-forbidden-digest',
    description:
      'Log edited after the quote: PCR 4 events are unverified. Unverified events cannot pass the allowlist, ' +
      'and a forbidden digest fails even in an unverified event.',
    goldenSet: ref,
    measurements: { ...unverifiedHost, pcrs: host(typicalSpecs()).pcrs },
    expected: {
      pass: false,
      code: 'RULES_FAILED',
      failed: [
        { ruleId: 'boot-apps', code: 'UNVERIFIED_EVENT', eventIndex: 7 },
        { ruleId: 'boot-apps', code: 'UNVERIFIED_EVENT', eventIndex: 8 },
        { ruleId: 'boot-apps', code: 'UNVERIFIED_EVENT', eventIndex: 9 },
        { ruleId: 'forbidden', code: 'FORBIDDEN_DIGEST', eventIndex: 9 },
      ],
    },
  });

  add({
    name: 'dbx-outdated',
    description: 'The host dbx lacks the first required revocation (dbx measured by event 4).',
    goldenSet: ref,
    measurements: host(typicalSpecs(), [DBX[1]!]),
    expected: {
      pass: false,
      code: 'RULES_FAILED',
      failed: [{ ruleId: 'dbx', code: 'DBX_MISSING_ENTRIES', eventIndex: 4 }],
    },
  });

  const firmware = typicalSpecs();
  firmware[2] = { ...firmware[2]!, label: 'firmware-2' };
  add({
    name: 'firmware-update',
    description: 'New firmware blob (event 2): only PCR 0 differs.',
    goldenSet: ref,
    measurements: host(firmware),
    expected: { pass: false, code: 'RULES_FAILED', failed: [{ ruleId: 'pcr0', code: 'PCR_MISMATCH' }] },
  });

  const typical = host(typicalSpecs());
  const { '7': _pcr7, ...withoutPcr7 } = typical.pcrs.sha256!;
  add({
    name: 'pcr-not-quoted',
    description: 'PCR 7 is absent from the quote.',
    goldenSet: ref,
    measurements: { ...typical, pcrs: { ...typical.pcrs, sha256: withoutPcr7 } },
    expected: { pass: false, code: 'RULES_FAILED', failed: [{ ruleId: 'pcr7', code: 'PCR_MISSING' }] },
  });

  const captured: GoldenSet = {
    ...capture('web', typical),
    version: 2,
    createdAt: '2026-01-02T00:00:00.000Z',
  };
  add({
    name: 'captured-same-host',
    description: 'A set captured from the typical host judges that same host.',
    goldenSet: captured,
    measurements: typical,
    expected: { pass: true, code: 'PASS', failed: [] },
  });

  const newShim = typicalSpecs();
  newShim[7] = { ...newShim[7]!, label: 'shimx64-15.8.efi' };
  add({
    name: 'captured-shim-update',
    description:
      'The captured set judges the host after a shim update (event 7): PCR 4 and the allowlist fail.',
    goldenSet: captured,
    measurements: host(newShim),
    expected: {
      pass: false,
      code: 'RULES_FAILED',
      failed: [
        { ruleId: 'pcr-sha256-4', code: 'PCR_MISMATCH' },
        { ruleId: 'boot-applications', code: 'EVENT_NOT_ALLOWED', eventIndex: 7 },
      ],
    },
  });
  return vectors;
}

function invalidVectors(): InvalidVector[] {
  const ref = referenceSet();
  const v = (name: string, description: string, goldenSet: unknown, paths: string[]): InvalidVector => ({
    name,
    description,
    goldenSet,
    expected: { error: 'GOLDEN_SET_INVALID', paths },
  });
  return [
    v('no-rules', 'An empty set would pass every host.', { ...ref, rules: [] }, ['$.rules']),
    v(
      'unknown-kind',
      'A rule kind this evaluator does not know.',
      { ...ref, rules: [{ id: 'x', kind: 'pcr-any' }] },
      ['$.rules[0].kind'],
    ),
    v(
      'short-digest',
      'A SHA-1 length value in the sha256 bank.',
      { ...ref, rules: [{ ...ref.rules[0]!, allowed: ['00'.repeat(20)] }] },
      ['$.rules[0].allowed[0]'],
    ),
    v('duplicate-id', 'Two rules with the same id.', { ...ref, rules: [ref.rules[0], ref.rules[0]] }, [
      '$.rules[1].id',
    ]),
    v(
      'unknown-key',
      'A typo in a key is an error, not ignored.',
      { ...ref, rules: [{ ...ref.rules[3]!, enabled: true }] },
      ['$.rules[0].enabled'],
    ),
    v('no-version', 'A published set without its version.', { ...ref, version: undefined }, ['$.version']),
    v('pcr-range', 'PCR 24 does not exist.', { ...ref, rules: [{ ...ref.rules[0]!, pcr: 24 }] }, [
      '$.rules[0].pcr',
    ]),
  ];
}

function fileName(kind: 'evaluate' | 'invalid', name: string): string {
  return path.join(DIR, `${kind}-${name}.json`);
}

function syncVector(file: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  let onDisk: string | undefined;
  try {
    onDisk = readFileSync(file, 'utf8');
  } catch {
    onDisk = undefined;
  }
  if (onDisk === undefined || process.env['UPDATE_VECTORS'] === '1') {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(file, text);
    return;
  }
  // Compared as JSON values: the committed files are formatted by Biome, not by JSON.stringify.
  assert.deepEqual(
    JSON.parse(onDisk),
    JSON.parse(text),
    `${path.basename(file)} differs from what the test generates; rerun with UPDATE_VECTORS=1 (then biome format)`,
  );
}

test('the vector files are what this code generates', () => {
  for (const v of evaluateVectors()) syncVector(fileName('evaluate', v.name), v);
  for (const v of invalidVectors()) syncVector(fileName('invalid', v.name), v);
  const expected = new Set([
    ...evaluateVectors().map((v) => path.basename(fileName('evaluate', v.name))),
    ...invalidVectors().map((v) => path.basename(fileName('invalid', v.name))),
  ]);
  const stale = readdirSync(DIR).filter((f) => f.endsWith('.json') && !expected.has(f));
  assert.deepEqual(stale, [], 'vector files no scenario generates');
});

test('evaluate vectors from disk give their expected verdicts', () => {
  const files = readdirSync(DIR).filter((f) => f.startsWith('evaluate-'));
  assert.ok(files.length >= 10);
  for (const f of files) {
    const v = JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as EvaluateVector;
    const golden = v.goldenSet === null ? undefined : validateGoldenSet(v.goldenSet);
    const verdict = evaluate(golden, validateMeasurements(v.measurements));
    assert.deepEqual(
      {
        pass: verdict.pass,
        code: verdict.code,
        failed: verdict.failed.map((r) => ({
          ruleId: r.ruleId,
          code: r.code,
          ...(r.eventIndex === undefined ? {} : { eventIndex: r.eventIndex }),
        })),
      },
      v.expected,
      f,
    );
    assert.equal(verdict.hostId, 'host-vec');
  }
});

test('invalid vectors from disk are rejected at their expected paths', () => {
  const files = readdirSync(DIR).filter((f) => f.startsWith('invalid-'));
  assert.ok(files.length >= 7);
  for (const f of files) {
    const v = JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as InvalidVector;
    assert.throws(
      () => validateGoldenSet(v.goldenSet),
      (e: unknown) => {
        assert.ok(e instanceof PolicyValidationError, f);
        assert.equal(e.code, v.expected.error, f);
        assert.deepEqual(
          e.issues.map((i) => i.path),
          v.expected.paths,
          f,
        );
        return true;
      },
    );
  }
});
