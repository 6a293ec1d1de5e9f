// Publication is append-only per class; activation keeps exactly one active version per class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activate,
  activeGoldenSet,
  activeVersion,
  deactivate,
  EMPTY_POLICY_STATE,
  type GoldenSet,
  PolicyStateError,
  PolicyValidationError,
  publish,
  publishInState,
  summarizeClasses,
} from '../src/index.ts';
import { sha256 } from './fixtures.ts';

const T1 = new Date('2026-03-01T10:00:00Z');
const T2 = new Date('2026-03-02T10:00:00Z');

function draft(cls: string, digest = sha256('a')): unknown {
  return { class: cls, rules: [{ id: 'p0', kind: 'pcr-exact', bank: 'sha256', pcr: 0, allowed: [digest] }] };
}

function stateError(fn: () => unknown, code: string): PolicyStateError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyStateError, String(e));
    assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected PolicyStateError ${code}`);
}

test('versions count up per class from 1, with the publication time', () => {
  const a1 = publish([], draft('a'), { now: T1 });
  const a2 = publish([a1], draft('a', sha256('b')), { now: T2 });
  const b1 = publish([a1, a2], draft('b'), { now: T2 });
  assert.deepEqual(
    [a1, a2, b1].map((s) => [s.class, s.version, s.createdAt]),
    [
      ['a', 1, '2026-03-01T10:00:00.000Z'],
      ['a', 2, '2026-03-02T10:00:00.000Z'],
      ['b', 1, '2026-03-02T10:00:00.000Z'],
    ],
  );
  assert.ok(Object.isFrozen(a1) && Object.isFrozen(a1.rules) && Object.isFrozen(a1.rules[0]));
  assert.throws(() => {
    (a1 as { version: number }).version = 9;
  }, TypeError);
});

test('publish validates its input', () => {
  assert.throws(() => publish([], { class: 'a', rules: [] }), PolicyValidationError);
});

test('a published version cannot change; a retried identical publish returns the published set', () => {
  const a1 = publish([], draft('a'), { now: T1 });
  const changed = { ...(draft('a', sha256('other')) as object), version: 1 };
  const e = stateError(() => publish([a1], changed), 'VERSION_PUBLISHED');
  assert.equal(e.class, 'a');
  assert.equal(e.version, 1);
  const again = publish([a1], { ...a1, createdAt: 'whatever', rules: a1.rules.map((r) => ({ ...r })) });
  assert.equal(again, a1);
});

test('naming a version that is not the next one is a conflict', () => {
  const a1 = publish([], draft('a'), { now: T1 });
  stateError(() => publish([a1], { ...(draft('a') as object), version: 3 }), 'VERSION_CONFLICT');
  const a2 = publish([a1], { ...(draft('a') as object), version: 2 }, { now: T2 });
  assert.equal(a2.version, 2);
});

test('one active version per class; activation is recorded, idempotent, reversible', () => {
  let s = EMPTY_POLICY_STATE;
  assert.equal(activeGoldenSet(s, 'a'), undefined);
  s = publishInState(s, draft('a'), { now: T1 }).state;
  s = publishInState(s, draft('a', sha256('b')), { now: T2 }).state;
  s = publishInState(s, draft('b'), { now: T2 }).state;
  assert.equal(activeVersion(s.activations, 'a'), null, 'publishing does not activate');

  s = activate(s, 'a', 1, { now: T1, actor: 'ops@example' });
  s = activate(s, 'b', 1, { now: T1 });
  assert.equal(activate(s, 'a', 1), s, 'activating the active version changes nothing');
  s = activate(s, 'a', 2, { now: T2 });
  assert.equal(activeGoldenSet(s, 'a')?.version, 2);
  assert.equal(activeGoldenSet(s, 'b')?.version, 1);
  s = activate(s, 'a', 1, { now: T2 });
  assert.equal(activeVersion(s.activations, 'a'), 1, 'rollback to an older version');
  assert.deepEqual(s.activations[0], {
    class: 'a',
    version: 1,
    at: '2026-03-01T10:00:00.000Z',
    actor: 'ops@example',
  });

  s = deactivate(s, 'a', { now: T2 });
  assert.equal(activeGoldenSet(s, 'a'), undefined);
  assert.equal(deactivate(s, 'a'), s);
  assert.deepEqual(summarizeClasses(s), [
    { class: 'a', versions: [1, 2], latest: 2, active: null },
    { class: 'b', versions: [1], latest: 1, active: 1 },
  ]);
  assert.equal(s.activations.length, 5);
});

test('activating a version that was never published is refused', () => {
  const s = publishInState(EMPTY_POLICY_STATE, draft('a'), { now: T1 }).state;
  const e = stateError(() => activate(s, 'a', 2), 'UNKNOWN_VERSION');
  assert.match(e.message, /a v2 is not published \(latest: 1\)/);
  stateError(() => activate(s, 'nope', 1), 'UNKNOWN_VERSION');
});

test('state transitions never mutate their input', () => {
  const s0 = publishInState(EMPTY_POLICY_STATE, draft('a'), { now: T1 }).state;
  const sets: readonly GoldenSet[] = s0.sets;
  const s1 = activate(s0, 'a', 1);
  assert.equal(s0.activations.length, 0);
  assert.equal(s1.sets, sets);
  assert.ok(Object.isFrozen(s1.activations));
});

test('an activation record naming a set the store lost gives no golden set (NO_POLICY), not another version', () => {
  const s = publishInState(EMPTY_POLICY_STATE, draft('a'), { now: T1 }).state;
  const dangling = { sets: s.sets, activations: [{ class: 'a', version: 7, at: T1.toISOString() }] };
  assert.equal(activeVersion(dangling.activations, 'a'), 7);
  assert.equal(activeGoldenSet(dangling, 'a'), undefined);
});
