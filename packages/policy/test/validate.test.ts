// Golden sets and measurements from untrusted JSON: every rejection names the path and the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LIMITS,
  parseGoldenSetJson,
  PolicyValidationError,
  validateGoldenSet,
  validateGoldenSetDraft,
  validateMeasurements,
} from '../src/index.ts';
import { edit, sha1, sha256, typicalMeasurements } from './fixtures.ts';

const A = sha256('a');
const B = sha256('b');

function draft(rules: unknown[]): Record<string, unknown> {
  return { class: 'web-v1', rules };
}

function issuesOf(fn: () => unknown): { code: string; issues: { path: string; message: string }[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyValidationError, `expected PolicyValidationError, got ${String(e)}`);
    return { code: e.code, issues: [...e.issues] };
  }
  assert.fail('expected a PolicyValidationError');
}

test('a valid draft of every rule kind comes back normalised and frozen', () => {
  const d = validateGoldenSetDraft(
    draft([
      { id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [A.toUpperCase(), A] },
      { kind: 'event-allowlist', pcr: 4, eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION', allowed: [B] },
      { kind: 'secure-boot-enabled', description: 'must be on' },
      { kind: 'dbx-contains', required: [A] },
      { kind: 'forbidden-digests', digests: [sha1('x'), B] },
    ]),
  );
  assert.deepEqual(d.rules, [
    { id: 'p7', kind: 'pcr-exact', bank: 'sha256', pcr: 7, allowed: [A] },
    {
      id: 'event-allowlist-1',
      kind: 'event-allowlist',
      pcr: 4,
      eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      allowed: [B],
    },
    { id: 'secure-boot-enabled-2', kind: 'secure-boot-enabled', description: 'must be on' },
    { id: 'dbx-contains-3', kind: 'dbx-contains', required: [A] },
    { id: 'forbidden-digests-4', kind: 'forbidden-digests', digests: [sha1('x'), B] },
  ]);
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.rules) && Object.isFrozen(d.rules[0]));
  assert.throws(() => {
    (d.rules as unknown[]).push({});
  }, TypeError);
});

const BAD: [string, unknown, string, RegExp][] = [
  ['not an object', [], '$', /must be an object, got an array/],
  ['no class', { rules: [{ kind: 'secure-boot-enabled' }] }, '$.class', /must be a string, got nothing/],
  ['bad class', { class: '../etc', rules: [{ kind: 'secure-boot-enabled' }] }, '$.class', /class name/],
  [
    'unknown top-level key',
    { class: 'c', rules: [{ kind: 'secure-boot-enabled' }], extra: 1 },
    '$.extra',
    /unknown key/,
  ],
  ['empty rules', { class: 'c', rules: [] }, '$.rules', /at least one rule/],
  ['rules not array', { class: 'c', rules: {} }, '$.rules', /must be an array, got an object/],
  ['unknown kind', draft([{ kind: 'pcr-any' }]), '$.rules[0].kind', /must be one of/],
  ['prototype kind', draft([{ kind: 'toString' }]), '$.rules[0].kind', /must be one of/],
  ['rule not object', draft([7]), '$.rules[0]', /must be an object, got a number/],
  ['unknown rule key', draft([{ kind: 'secure-boot-enabled', pcr: 7 }]), '$.rules[0].pcr', /unknown key/],
  [
    'bad bank',
    draft([{ kind: 'pcr-exact', bank: 'md5', pcr: 0, allowed: [A] }]),
    '$.rules[0].bank',
    /one of sha1/,
  ],
  [
    'pcr out of range',
    draft([{ kind: 'pcr-exact', bank: 'sha256', pcr: 24, allowed: [A] }]),
    '$.rules[0].pcr',
    /0 to 23, got 24/,
  ],
  [
    'pcr not integer',
    draft([{ kind: 'pcr-exact', bank: 'sha256', pcr: 1.5, allowed: [A] }]),
    '$.rules[0].pcr',
    /integer/,
  ],
  [
    'wrong digest length',
    draft([{ kind: 'pcr-exact', bank: 'sha1', pcr: 0, allowed: [A] }]),
    '$.rules[0].allowed[0]',
    /sha1 digest \(40 hex/,
  ],
  [
    'not hex',
    draft([{ kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: ['z'.repeat(64)] }]),
    '$.rules[0].allowed[0]',
    /sha256 digest/,
  ],
  [
    'empty allowed',
    draft([{ kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: [] }]),
    '$.rules[0].allowed',
    /must not be empty/,
  ],
  [
    'bad event type',
    draft([{ kind: 'event-allowlist', pcr: 4, eventType: 'boot app', allowed: [] }]),
    '$.rules[0].eventType',
    /TCG event type/,
  ],
  [
    'dbx not sha256',
    draft([{ kind: 'dbx-contains', required: [sha1('a')] }]),
    '$.rules[0].required[0]',
    /sha256 digest/,
  ],
  [
    'forbidden odd length',
    draft([{ kind: 'forbidden-digests', digests: ['abc'] }]),
    '$.rules[0].digests[0]',
    /40, 64, 96 or 128/,
  ],
  [
    'duplicate id',
    draft([
      { id: 'x', kind: 'secure-boot-enabled' },
      { id: 'x', kind: 'secure-boot-enabled' },
    ]),
    '$.rules[1].id',
    /duplicate rule id "x" \(also \$.rules\[0\]\)/,
  ],
  ['bad id', draft([{ id: ' x', kind: 'secure-boot-enabled' }]), '$.rules[0].id', /rule id/],
  [
    'long description',
    draft([{ kind: 'secure-boot-enabled', description: 'x'.repeat(1025) }]),
    '$.rules[0].description',
    /longer than 1024/,
  ],
];

for (const [name, input, path, message] of BAD) {
  test(`draft rejected: ${name} at ${path}`, () => {
    const { code, issues } = issuesOf(() => validateGoldenSetDraft(input));
    assert.equal(code, 'GOLDEN_SET_INVALID');
    const hit = issues.find((i) => i.path === path);
    assert.ok(hit, `no issue at ${path}: ${JSON.stringify(issues)}`);
    assert.match(hit.message, message);
  });
}

test('every problem is reported, not only the first, and the list is capped', () => {
  const { issues } = issuesOf(() =>
    validateGoldenSetDraft(
      draft([{ kind: 'pcr-exact', bank: 'md5', pcr: -1, allowed: [] }, { kind: 'nope' }]),
    ),
  );
  assert.deepEqual(
    issues.map((i) => i.path),
    ['$.rules[0].bank', '$.rules[0].pcr', '$.rules[1].kind'],
  );
  const many = issuesOf(() => validateGoldenSetDraft(draft(Array.from({ length: 200 }, () => 1))));
  assert.equal(many.issues.length, LIMITS.issues + 1);
  assert.deepEqual(many.issues.at(-1), { path: '$', message: `more than ${LIMITS.issues} problems` });
});

test('size caps: rules per set, values per rule, values per set', () => {
  const tooManyRules = Array.from({ length: LIMITS.rulesPerSet + 1 }, () => ({
    kind: 'secure-boot-enabled',
  }));
  assert.match(
    issuesOf(() => validateGoldenSetDraft(draft(tooManyRules))).issues[0]!.message,
    /more than 1024 rules/,
  );
  const values = Array.from({ length: LIMITS.valuesPerRule + 1 }, () => A);
  assert.match(
    issuesOf(() => validateGoldenSetDraft(draft([{ kind: 'forbidden-digests', digests: values }]))).issues[0]!
      .message,
    /more than 16384 entries/,
  );
  const nine = Array.from({ length: 9 }, () => ({ kind: 'forbidden-digests', digests: values.slice(1) }));
  const { issues } = issuesOf(() => validateGoldenSetDraft(draft(nine)));
  assert.equal(issues[0]!.path, '$.rules[8].digests');
  assert.match(issues[0]!.message, /more than 131072 values in all/);
});

test('parseGoldenSetJson caps the text size and types JSON errors', () => {
  const big = JSON.stringify(
    draft([{ kind: 'secure-boot-enabled', description: 'x'.repeat(LIMITS.goldenSetJsonBytes) }]),
  );
  assert.equal(issuesOf(() => parseGoldenSetJson(big)).code, 'GOLDEN_SET_TOO_LARGE');
  const notJson = issuesOf(() => parseGoldenSetJson('{"class":'));
  assert.equal(notJson.code, 'GOLDEN_SET_INVALID');
  assert.match(notJson.issues[0]!.message, /^not JSON/);
  const proto = issuesOf(() =>
    parseGoldenSetJson('{"class":"c","rules":[{"kind":"secure-boot-enabled"}],"__proto__":{"x":1}}'),
  );
  assert.equal(proto.issues[0]!.path, '$.__proto__');
  const d = parseGoldenSetJson(JSON.stringify(draft([{ kind: 'secure-boot-enabled' }])));
  assert.equal('version' in d, false);
});

test('a published set needs a version and a UTC createdAt', () => {
  const base = { ...draft([{ kind: 'secure-boot-enabled' }]) };
  const ok = validateGoldenSet({ ...base, version: 3, createdAt: '2026-01-02T03:04:05.678Z' });
  assert.equal(ok.version, 3);
  assert.equal(ok.createdAt, '2026-01-02T03:04:05.678Z');
  const bad = issuesOf(() => validateGoldenSet({ ...base, version: 0, createdAt: '2026-01-02 03:04' }));
  assert.deepEqual(
    bad.issues.map((i) => i.path),
    ['$.version', '$.createdAt'],
  );
  assert.deepEqual(
    issuesOf(() => validateGoldenSet({ ...base, version: 1, createdAt: '2026-13-45T00:00:00Z' })).issues.map(
      (i) => i.path,
    ),
    ['$.createdAt'],
  );
  assert.deepEqual(
    issuesOf(() => validateGoldenSet({ ...base, version: 1, createdAt: '2026-02-30T00:00:00Z' })).issues.map(
      (i) => i.path,
    ),
    ['$.createdAt'],
  );
});

test('validateMeasurements accepts what the fixtures build and normalises hex', () => {
  const m = edit(typicalMeasurements());
  (m.pcrs.sha256 as Record<string, string>)['7'] = m.pcrs.sha256!['7']!.toUpperCase();
  const v = validateMeasurements({ ...m, futureField: 1 });
  assert.equal(v.pcrs.sha256!['7'], m.pcrs.sha256!['7']!.toLowerCase());
  assert.equal(v.events.length, m.events.length);
  assert.deepEqual(v.secureBoot, m.secureBoot);
  assert.ok(Object.isFrozen(v.events[0]));
});

const BAD_M: [string, (m: Record<string, unknown>) => void, string][] = [
  ['no hostId', (m) => delete m['hostId'], '$.hostId'],
  ['unknown bank', (m) => ((m['pcrs'] as Record<string, unknown>)['md5'] = {}), '$.pcrs.md5'],
  [
    'pcr 24',
    (m) => ((m['pcrs'] as Record<string, Record<string, string>>)['sha256']!['24'] = A),
    '$.pcrs.sha256.24',
  ],
  [
    'pcr "07"',
    (m) => ((m['pcrs'] as Record<string, Record<string, string>>)['sha256']!['07'] = A),
    '$.pcrs.sha256.07',
  ],
  [
    'short pcr value',
    (m) => ((m['pcrs'] as Record<string, Record<string, string>>)['sha1']!['0'] = A),
    '$.pcrs.sha1.0',
  ],
  [
    'verified not boolean',
    (m) => ((m['events'] as Record<string, unknown>[])[1]!['verified'] = 'yes'),
    '$.events[1].verified',
  ],
  [
    'duplicate index',
    (m) => ((m['events'] as Record<string, unknown>[])[2]!['index'] = 1),
    '$.events[2].index',
  ],
  [
    'decoded kind',
    (m) => ((m['events'] as Record<string, unknown>[])[3]!['decoded'] = { kind: 3 }),
    '$.events[3].decoded.kind',
  ],
  ['secureBoot string', (m) => (m['secureBoot'] = { enabled: 'true' }), '$.secureBoot.enabled'],
  ['dbx entry', (m) => (m['dbx'] = [sha1('a')]), '$.dbx[0]'],
  [
    'boot app without index',
    (m) => (m['bootApplications'] = [{ digest: A }]),
    '$.bootApplications[0].eventIndex',
  ],
  ['events not array', (m) => (m['events'] = 'x'), '$.events'],
];

for (const [name, mutate, path] of BAD_M) {
  test(`measurements rejected: ${name} at ${path}`, () => {
    const m = edit(typicalMeasurements()) as unknown as Record<string, unknown>;
    mutate(m);
    const { code, issues } = issuesOf(() => validateMeasurements(m));
    assert.equal(code, 'MEASUREMENTS_INVALID');
    assert.ok(
      issues.some((i) => i.path === path),
      `no issue at ${path}: ${JSON.stringify(issues)}`,
    );
  });
}

test('measurements: event count is capped before events are read', () => {
  const m = { ...typicalMeasurements(), events: { length: LIMITS.events + 1 } };
  assert.equal(issuesOf(() => validateMeasurements(m)).issues[0]!.path, '$.events');
  const arr = new Array(LIMITS.events + 1);
  const { issues } = issuesOf(() => validateMeasurements({ ...typicalMeasurements(), events: arr }));
  assert.deepEqual(issues[0], { path: '$.events', message: `more than ${LIMITS.events} events` });
});
