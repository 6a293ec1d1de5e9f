// One rule at a time, pass and fail, with the exact expected / observed / event the verdict must carry.
// Expected values come from the fixtures (labels hashed and replayed with node:crypto), never from evaluate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluate,
  type GoldenSet,
  type Measurements,
  MAX_EVENT_INDICES,
  MAX_FAILURES_PER_RULE,
  type Rule,
} from '../src/index.ts';
import {
  buildMeasurements,
  DBX,
  edit,
  replay,
  sha1,
  sha256,
  typicalMeasurements,
  typicalSpecs,
} from './fixtures.ts';

function golden(...rules: Rule[]): GoldenSet {
  return { class: 'web', version: 4, createdAt: '2026-01-01T00:00:00.000Z', rules };
}

const m = typicalMeasurements();
const SHIM = sha256('shimx64.efi');
const GRUB = sha256('grubx64.efi');
// PCR 7 after SecureBoot, dbx and the separator (event order of typicalSpecs).
const PCR7 = replay('sha256', [sha256('SecureBoot=1'), sha256('dbx-contents'), sha256('sep')]);

test('no golden set: NO_POLICY, never a pass', () => {
  const v = evaluate(undefined, m);
  assert.deepEqual(
    { pass: v.pass, code: v.code, class: v.class, version: v.version, results: v.results, failed: v.failed },
    { pass: false, code: 'NO_POLICY', class: null, version: null, results: [], failed: [] },
  );
  assert.equal(v.hostId, 'host-a');
  assert.equal(v.attestationId, 'att-1');
});

test('a golden set without rules never passes (EMPTY_POLICY)', () => {
  const v = evaluate(golden(), m);
  assert.equal(v.pass, false);
  assert.equal(v.code, 'EMPTY_POLICY');
});

test('pcr-exact passes on the replayed value and names the events of the PCR', () => {
  const v = evaluate(
    golden({ id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [sha256('x'), PCR7] }),
    m,
  );
  assert.equal(v.pass, true);
  assert.equal(v.code, 'PASS');
  assert.deepEqual(v.results, [
    {
      ruleId: 'p7',
      kind: 'pcr-exact',
      expected: [sha256('x'), PCR7],
      eventIndices: [3, 4, 6],
      pass: true,
      code: 'OK',
      observed: PCR7,
      message: 'PCR 7 (sha256) matches',
    },
  ]);
});

test('pcr-exact fails with expected vs observed; upper-case golden values compare equal', () => {
  const other = sha256('other');
  const v = evaluate(
    golden({ id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [other.toUpperCase()] }),
    m,
  );
  assert.equal(v.pass, false);
  assert.equal(v.code, 'RULES_FAILED');
  assert.equal(v.failed.length, 1);
  const r = v.failed[0]!;
  assert.equal(r.code, 'PCR_MISMATCH');
  assert.deepEqual(r.expected, [other]);
  assert.equal(r.observed, PCR7);
  assert.deepEqual(r.eventIndices, [3, 4, 6]);
  assert.match(
    r.message,
    /PCR 7 \(sha256\) is [0-9a-f]{64}, expected [0-9a-f]{64}; it was extended by events 3, 4, 6/,
  );
  const up = evaluate(
    golden({ id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [PCR7.toUpperCase()] }),
    m,
  );
  assert.equal(up.pass, true);
});

test('pcr-exact on a PCR or bank that was not quoted fails PCR_MISSING', () => {
  const v = evaluate(
    golden(
      { id: 'p9', kind: 'pcr-exact', bank: 'sha256', pcr: 9, allowed: [PCR7] },
      { id: 'p0-384', kind: 'pcr-exact', bank: 'sha384', pcr: 0, allowed: ['0'.repeat(96)] },
    ),
    m,
  );
  assert.deepEqual(
    v.failed.map((r) => [r.ruleId, r.code, r.observed]),
    [
      ['p9', 'PCR_MISSING', null],
      ['p0-384', 'PCR_MISSING', null],
    ],
  );
});

const APPS: Rule = {
  id: 'apps',
  kind: 'event-allowlist',
  pcr: 4,
  eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
  allowed: [SHIM, GRUB],
};

test('event-allowlist passes when every event in scope is verified and allowed', () => {
  const v = evaluate(golden(APPS), m);
  assert.equal(v.pass, true);
  assert.deepEqual(v.results[0]!.observed, [SHIM, GRUB]);
  assert.equal(v.results[0]!.message, '2 EV_EFI_BOOT_SERVICES_APPLICATIONs in PCR 4, all allowed');
});

test('event-allowlist: an unknown boot application fails with its event and digest', () => {
  const specs = typicalSpecs();
  specs.push({
    pcr: 4,
    type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
    label: 'evil.efi',
    decoded: { kind: 'boot-application', imagePath: '\\EFI\\evil.efi' },
  });
  const v = evaluate(golden(APPS), buildMeasurements(specs));
  assert.equal(v.pass, false);
  assert.deepEqual(v.failed, [
    {
      ruleId: 'apps',
      kind: 'event-allowlist',
      pass: false,
      expected: [SHIM, GRUB],
      eventIndex: 9,
      code: 'EVENT_NOT_ALLOWED',
      observed: sha256('evil.efi'),
      message: `event 9 (EV_EFI_BOOT_SERVICES_APPLICATION \\EFI\\evil.efi) in PCR 4 has sha256 digest ${sha256('evil.efi')}, not in the allowlist`,
    },
  ]);
});

test('event-allowlist: an allowed digest in an unverified event is no evidence (UNVERIFIED_EVENT)', () => {
  const specs = typicalSpecs();
  specs[8] = { ...specs[8]!, verified: false };
  const v = evaluate(golden(APPS), buildMeasurements(specs));
  assert.deepEqual(
    v.failed.map((r) => [r.code, r.eventIndex, r.observed]),
    [['UNVERIFIED_EVENT', 8, GRUB]],
  );
});

test('event-allowlist without eventType covers every extended event of the PCR (not EV_NO_ACTION)', () => {
  const rule: Rule = {
    id: 'pcr0',
    kind: 'event-allowlist',
    pcr: 0,
    allowed: [sha256('crtm-1.0'), sha256('sep')],
  };
  const v = evaluate(golden(rule), m);
  assert.deepEqual(
    v.failed.map((r) => [r.eventIndex, r.observed]),
    [[2, sha256('firmware-1')]],
  );
  const sha1Rule: Rule = {
    ...rule,
    bank: 'sha1',
    allowed: [sha1('crtm-1.0'), sha1('sep'), sha1('firmware-1')],
  };
  assert.equal(evaluate(golden(sha1Rule), m).pass, true);
});

test('event-allowlist: an event lacking the bank digest fails', () => {
  const mm = edit(m) as unknown as { events: { digests: Record<string, string> }[] };
  delete mm.events[7]!.digests['sha256'];
  const v = evaluate(golden(APPS), mm as unknown as Measurements);
  assert.deepEqual(
    v.failed.map((r) => [r.code, r.eventIndex, r.observed]),
    [['EVENT_NOT_ALLOWED', 7, null]],
  );
});

test('event-allowlist: an empty allowlist forbids the event type; no events in scope passes', () => {
  const none: Rule = {
    id: 'drivers',
    kind: 'event-allowlist',
    pcr: 2,
    eventType: 'EV_EFI_BOOT_SERVICES_DRIVER',
    allowed: [],
  };
  const v = evaluate(golden(none), m);
  assert.equal(v.pass, true);
  assert.equal(v.results[0]!.message, 'no EV_EFI_BOOT_SERVICES_DRIVER in PCR 2');
  const specs = typicalSpecs();
  specs.push({ pcr: 2, type: 'EV_EFI_BOOT_SERVICES_DRIVER', label: 'nic-rom' });
  const f = evaluate(golden(none), buildMeasurements(specs));
  assert.deepEqual(
    f.failed.map((r) => [r.code, r.eventIndex]),
    [['EVENT_NOT_ALLOWED', 9]],
  );
});

test('a rule fails once per offending event, capped with a summary result', () => {
  const specs = typicalSpecs();
  for (let i = 0; i < MAX_FAILURES_PER_RULE + 5; i++) {
    specs.push({ pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', label: `app-${i}` });
  }
  const v = evaluate(golden(APPS), buildMeasurements(specs));
  assert.equal(v.failed.length, MAX_FAILURES_PER_RULE + 1);
  assert.equal(v.failed[0]!.eventIndex, 9);
  assert.deepEqual(v.failed.at(-1)!.observed, { moreFailures: 5 });
  assert.equal(v.failed.at(-1)!.eventIndex, undefined);
});

const SB: Rule = { id: 'sb', kind: 'secure-boot-enabled' };

test('secure-boot-enabled passes on a verified SecureBoot=1 event', () => {
  const v = evaluate(golden(SB), m);
  assert.deepEqual(v.results, [
    {
      ruleId: 'sb',
      kind: 'secure-boot-enabled',
      expected: true,
      eventIndex: 3,
      pass: true,
      code: 'OK',
      observed: true,
      message: 'Secure Boot is on',
    },
  ]);
});

test('secure-boot-enabled: off, unmeasured, unverified and contradicted all fail', () => {
  const specs = typicalSpecs();
  specs[3] = {
    ...specs[3]!,
    label: 'SecureBoot=0',
    decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: false },
  };
  const off = evaluate(golden(SB), buildMeasurements(specs)).failed[0]!;
  assert.deepEqual(
    [off.code, off.observed, off.eventIndex, off.expected],
    ['SECURE_BOOT_DISABLED', false, 3, true],
  );

  const unmeasured = evaluate(golden(SB), { ...m, secureBoot: { enabled: undefined } }).failed[0]!;
  assert.deepEqual(
    [unmeasured.code, unmeasured.observed, unmeasured.eventIndex],
    ['SECURE_BOOT_UNMEASURED', null, undefined],
  );

  const unv = typicalSpecs();
  unv[3] = { ...unv[3]!, verified: false };
  const unverified = evaluate(golden(SB), buildMeasurements(unv)).failed[0]!;
  assert.deepEqual(
    [unverified.code, unverified.observed, unverified.eventIndex],
    ['SECURE_BOOT_UNVERIFIED', true, 3],
  );

  const noSource = evaluate(golden(SB), { ...m, secureBoot: { enabled: true } }).failed[0]!;
  assert.equal(noSource.code, 'SECURE_BOOT_UNVERIFIED');
  assert.match(noSource.message, /no event of the log shows it/);

  const contra = typicalSpecs();
  contra.push({
    pcr: 7,
    type: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
    label: 'SecureBoot=0',
    verified: false,
    decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: false },
  });
  const mm = buildMeasurements(contra);
  const contradicted = evaluate(golden(SB), { ...mm, secureBoot: { enabled: true, eventIndex: 3 } })
    .failed[0]!;
  assert.deepEqual([contradicted.code, contradicted.eventIndex], ['SECURE_BOOT_DISABLED', 9]);
});

test('dbx-contains passes when every required entry is there, fails listing the missing ones', () => {
  const pass = evaluate(golden({ id: 'dbx', kind: 'dbx-contains', required: [DBX[1]!] }), m);
  assert.deepEqual(pass.results[0]!.observed, { missing: [], entries: 2 });
  assert.equal(pass.results[0]!.eventIndex, 4);
  const newRevocation = sha256('revoked-bootkit-3');
  const v = evaluate(golden({ id: 'dbx', kind: 'dbx-contains', required: [DBX[0]!, newRevocation] }), m);
  assert.deepEqual(v.failed, [
    {
      ruleId: 'dbx',
      kind: 'dbx-contains',
      expected: { contains: [DBX[0], newRevocation] },
      eventIndex: 4,
      pass: false,
      code: 'DBX_MISSING_ENTRIES',
      observed: { missing: [newRevocation], entries: 2 },
      message: `the dbx lacks 1 of 2 required entries (first: ${newRevocation})`,
    },
  ]);
});

test('dbx-contains fails DBX_UNVERIFIED when the dbx event did not replay', () => {
  const specs = typicalSpecs();
  specs[4] = { ...specs[4]!, verified: false };
  const v = evaluate(
    golden({ id: 'dbx', kind: 'dbx-contains', required: [DBX[0]!] }),
    buildMeasurements(specs, { dbx: DBX }),
  );
  assert.deepEqual(
    v.failed.map((r) => [r.code, r.eventIndex]),
    [['DBX_UNVERIFIED', 4]],
  );
});

test('forbidden-digests: any bank, verified or not, every hit with its event', () => {
  const rule: Rule = {
    id: 'bad',
    kind: 'forbidden-digests',
    digests: [sha1('grubx64.efi'), sha256('firmware-1')],
  };
  const v = evaluate(golden(rule), m);
  assert.deepEqual(
    v.failed.map((r) => [r.code, r.eventIndex, r.observed]),
    [
      ['FORBIDDEN_DIGEST', 2, sha256('firmware-1')],
      ['FORBIDDEN_DIGEST', 8, sha1('grubx64.efi')],
    ],
  );
  assert.deepEqual(v.failed[0]!.expected, { noneOf: [sha1('grubx64.efi'), sha256('firmware-1')] });

  const specs = typicalSpecs();
  specs[8] = { ...specs[8]!, verified: false };
  const unverified = evaluate(golden(rule), buildMeasurements(specs));
  assert.match(unverified.failed[1]!.message, /\(unverified\) carries forbidden sha1 digest/);

  const clean = evaluate(
    golden({ id: 'bad', kind: 'forbidden-digests', digests: [sha256('nothing-like-it')] }),
    m,
  );
  assert.equal(clean.pass, true);
});

test('forbidden-digests also sees a boot application whose event is missing from the list', () => {
  const evil = sha256('evil.efi');
  const mm: Measurements = {
    ...m,
    bootApplications: [...m.bootApplications, { digest: evil, eventIndex: 42, path: 'x.efi' }],
  };
  const v = evaluate(golden({ id: 'bad', kind: 'forbidden-digests', digests: [evil] }), mm);
  assert.deepEqual(
    v.failed.map((r) => [r.eventIndex, r.observed]),
    [[42, evil]],
  );
});

test('the verdict lists every failed rule and only those, and is frozen', () => {
  const v = evaluate(
    golden(
      { id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [PCR7] },
      { id: 'p0', kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: [PCR7] },
      SB,
      { id: 'bad', kind: 'forbidden-digests', digests: [SHIM] },
    ),
    m,
  );
  assert.equal(v.results.length, 4);
  assert.deepEqual(
    v.failed.map((r) => r.ruleId),
    ['p0', 'bad'],
  );
  assert.equal(v.message, '2 of 4 rules of web v4 fail: p0, bad');
  assert.ok(Object.isFrozen(v) && Object.isFrozen(v.failed[0]));
});

test('an unknown rule kind (built in code, not validated) fails instead of passing', () => {
  const v = evaluate(golden({ id: 'x', kind: 'pcr-any' } as unknown as Rule), m);
  assert.deepEqual([v.pass, v.failed[0]!.code], [false, 'UNKNOWN_RULE']);
});

test('a rule that throws becomes EVALUATION_ERROR, not an exception', () => {
  const hostile = { id: 'p', kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: null } as unknown as Rule;
  const v = evaluate(golden(hostile), m);
  assert.deepEqual([v.pass, v.failed[0]!.code], [false, 'EVALUATION_ERROR']);
});

test('forbidden-digests reports hits in log order, capped with a summary', () => {
  const specs = typicalSpecs();
  for (let i = 0; i < MAX_FAILURES_PER_RULE + 3; i++)
    specs.push({ pcr: 5, type: 'EV_EFI_ACTION', label: 'bad' });
  const v = evaluate(
    golden({ id: 'bad', kind: 'forbidden-digests', digests: [sha256('bad'), sha1('bad')] }),
    buildMeasurements(specs),
  );
  // Each event carries the forbidden digest in both banks: two hits per event, sha1 first as in the log.
  assert.equal(v.failed.length, MAX_FAILURES_PER_RULE + 1);
  assert.deepEqual(
    v.failed.slice(0, 3).map((r) => [r.eventIndex, r.observed]),
    [
      [9, sha1('bad')],
      [9, sha256('bad')],
      [10, sha1('bad')],
    ],
  );
  assert.deepEqual(v.failed.at(-1)!.observed, {
    moreFailures: 2 * (MAX_FAILURES_PER_RULE + 3) - MAX_FAILURES_PER_RULE,
  });
});

test('a PCR extended by many events lists a bounded number of them', () => {
  const specs = typicalSpecs();
  for (let i = 0; i < MAX_EVENT_INDICES + 10; i++) specs.push({ pcr: 9, type: 'EV_IPL', label: `cmd-${i}` });
  const v = evaluate(
    golden({ id: 'p9', kind: 'pcr-exact', bank: 'sha256', pcr: 9, allowed: [PCR7] }),
    buildMeasurements(specs),
  );
  const r = v.failed[0]!;
  assert.equal(r.eventIndices!.length, MAX_EVENT_INDICES);
  assert.deepEqual(r.eventIndices!.slice(0, 2), [9, 10]);
  assert.match(r.message, /extended by events 9, 10, 11, .* 24 … \(266 in all\)$/);
});
