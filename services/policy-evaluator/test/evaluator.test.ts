import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { DLQ_HEADERS } from '@hostgate/bus';
import {
  type CaptureResponse__Output,
  encodeMeasurements,
  type GetGoldenSetResponse__Output,
  KAFKA_TOPICS,
  type ListGoldenSetsResponse__Output,
  type ListVerdictsResponse__Output,
  type PublishGoldenSetResponse__Output,
} from '@hostgate/protos';
import { PolicyStore } from '../src/index.ts';
import { collect, measurementsOf, startEvaluator } from './harness.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('no active golden set: NO_POLICY, refused and never passed', async (t) => {
  const ev = await startEvaluator(t);
  const v = await ev.judge(measurementsOf('att-1', 'host-1').measurements);
  assert.equal(v.pass, false);
  assert.equal(v.attestationId, 'att-1');
  assert.equal(v.hostId, 'host-1');
  assert.equal(v.hostClass, 'default');
  assert.equal(v.policyVersion, 0);
  assert.deepEqual(
    v.refusals.map((r) => r.code),
    ['NO_POLICY'],
  );
  assert.match(v.verdictId, /^[0-9a-f-]{36}$/);
  assert.equal(ev.verdicts.seen.at(-1)?.key, 'host-1');
  // Quote facts and the subject key reach the issuer.
  assert.equal(v.certifiedKey?.keyPublic.toString(), 'key');
  assert.equal(v.akPublic.toString(), 'ak');
});

test('capture → activate → the same host passes; Secure Boot off and a forbidden boot application fail', async (t) => {
  const ev = await startEvaluator(t);
  const first = measurementsOf('att-1', 'host-1');
  await ev.judge(first.measurements);
  const cap = await ev.call<CaptureResponse__Output>(
    'Capture',
    { hostId: 'host-1', activate: true },
    'alice',
  );
  assert.equal(cap.attestationId, 'att-1');
  assert.equal(cap.goldenSet?.hostClass, 'default');
  assert.equal(cap.goldenSet?.version, 1);
  assert.equal(cap.goldenSet?.active, true);
  assert.equal(cap.goldenSet?.createdBy, 'alice');
  const kinds = cap.goldenSet?.rules.map((r) => r.rule);
  assert.ok(
    kinds?.includes('pcrExact') && kinds.includes('secureBootEnabled') && kinds.includes('eventAllowlist'),
  );

  const pass = await ev.judge(measurementsOf('att-2', 'host-1').measurements);
  assert.equal(pass.pass, true, JSON.stringify(pass.refusals));
  assert.deepEqual(pass.refusals, []);
  assert.equal(pass.policyVersion, 1);
  assert.ok(pass.passedRuleIds.includes('secure-boot'));

  // Secure Boot off: the secure-boot rule fails with the event that measured it; PCR 7 changes too.
  const off = measurementsOf('att-3', 'host-1', { secureBoot: false });
  const v = await ev.judge(off.measurements);
  assert.equal(v.pass, false);
  const sb = v.failedRules.find((r) => r.ruleId === 'secure-boot');
  assert.ok(sb, JSON.stringify(v.failedRules.map((r) => r.ruleId)));
  assert.equal(sb.code, 'SECURE_BOOT_OFF');
  assert.equal(sb.expected, 'true');
  assert.equal(sb.observed, 'false');
  assert.equal(sb.eventIndex, off.boot.index.secureBoot);
  assert.ok(v.refusals.some((r) => r.code === 'SECURE_BOOT_OFF' && r.details['rule_id'] === 'secure-boot'));
  assert.ok(v.failedRules.some((r) => r.ruleId === 'pcr-sha256-7' && r.code === 'PCR_VALUE_NOT_ALLOWED'));

  // A forbidden boot application, by its Authenticode digest, in a new version of the class.
  const forbidden = first.boot.grubDigest;
  const pub = await ev.call<PublishGoldenSetResponse__Output>(
    'PublishGoldenSet',
    {
      goldenSet: {
        hostClass: 'default',
        description: 'captured + revoked grub',
        rules: [
          ...(cap.goldenSet?.rules ?? []),
          { id: 'revoked-grub', forbiddenDigests: { digests: [Buffer.from(forbidden)] } },
        ],
      },
    },
    'bob',
  );
  assert.equal(pub.goldenSet?.version, 2);
  assert.equal(pub.goldenSet?.active, false);
  await ev.call('ActivateGoldenSet', { hostClass: 'default', version: 2, reason: 'grub CVE' }, 'bob');
  const bad = await ev.judge(measurementsOf('att-4', 'host-1').measurements);
  assert.equal(bad.pass, false);
  assert.equal(bad.policyVersion, 2);
  const f = bad.failedRules.find((r) => r.ruleId === 'revoked-grub');
  assert.equal(f?.code, 'FORBIDDEN_DIGEST');
  assert.equal(f?.eventIndex, first.boot.index.grub);
  assert.equal(f?.observed, JSON.stringify(hex(forbidden)));
  assert.deepEqual(
    bad.failedRules.map((r) => r.ruleId),
    ['revoked-grub'],
  );

  // The audit log names who did what.
  const audit = await new PolicyStore(ev.db).auditLog();
  assert.deepEqual(audit.map((a) => [a.actor, a.action]).reverse(), [
    ['alice', 'Capture'],
    ['bob', 'PublishGoldenSet'],
    ['bob', 'ActivateGoldenSet'],
  ]);
});

test('a redelivered Measurements yields the stored verdict again, not a new one', async (t) => {
  const ev = await startEvaluator(t);
  const { measurements } = measurementsOf('att-r', 'host-r');
  const a = await ev.judge(measurements);
  const b = await ev.judge(measurements);
  assert.equal(b.verdictId, a.verdictId);
  assert.deepEqual(b, a);
  const list = await ev.call<ListVerdictsResponse__Output>('ListVerdicts', { hostId: 'host-r' });
  assert.equal(list.verdicts.length, 1);
  assert.equal(list.verdicts[0]?.verdictId, a.verdictId);
});

test('a log that did not replay is carried through as a failing verdict, even with a passing policy', async (t) => {
  const ev = await startEvaluator(t);
  await ev.judge(measurementsOf('att-1', 'host-t').measurements);
  await ev.call('Capture', { hostId: 'host-t', activate: true });
  const v = await ev.judge(measurementsOf('att-2', 'host-t', { tamperPcr: 4 }).measurements);
  assert.equal(v.pass, false);
  assert.equal(v.refusals[0]?.code, 'EVENTLOG_MISMATCH');
  assert.equal(v.refusals[0]?.details['pcr'], '4');
  // Capture never uses refused measurements: the last replayed ones are still att-1's.
  const cap = await ev.call<CaptureResponse__Output>('Capture', { hostId: 'host-t' });
  assert.equal(cap.attestationId, 'att-1');
});

test('published versions are immutable: a new publish is a new version; the store refuses edits', async (t) => {
  const ev = await startEvaluator(t);
  const draft = (d: string) => ({
    goldenSet: { hostClass: 'web', description: d, rules: [{ id: 'sb', secureBootEnabled: {} }] },
  });
  const v1 = await ev.call<PublishGoldenSetResponse__Output>('PublishGoldenSet', draft('first'));
  const v2 = await ev.call<PublishGoldenSetResponse__Output>('PublishGoldenSet', {
    goldenSet: { ...draft('second').goldenSet, version: 1 },
  });
  assert.equal(v1.goldenSet?.version, 1);
  assert.equal(v2.goldenSet?.version, 2);
  const got = await ev.call<GetGoldenSetResponse__Output>('GetGoldenSet', { hostClass: 'web', version: 1 });
  assert.equal(got.goldenSet?.description, 'first');
  await assert.rejects(
    ev.db.query("UPDATE golden_sets SET description = 'edited' WHERE host_class = 'web'"),
    /immutable/,
  );
  await assert.rejects(ev.db.query("DELETE FROM golden_sets WHERE host_class = 'web'"), /immutable/);
  const list = await ev.call<ListGoldenSetsResponse__Output>('ListGoldenSets', { hostClass: 'web' });
  assert.deepEqual(
    list.goldenSets.map((s) => [s.version, s.description, s.active]),
    [
      [2, 'second', false],
      [1, 'first', false],
    ],
  );
  // One active version per class; deactivating leaves hosts of the class with NO_POLICY.
  await ev.call('ActivateGoldenSet', { hostClass: 'web', version: 1 });
  const act = await ev.call<{ previousVersion: number }>('ActivateGoldenSet', {
    hostClass: 'web',
    version: 2,
  });
  assert.equal(act.previousVersion, 1);
  const active = await ev.call<ListGoldenSetsResponse__Output>('ListGoldenSets', { activeOnly: true });
  assert.deepEqual(
    active.goldenSets.map((s) => [s.hostClass, s.version]),
    [['web', 2]],
  );
  await ev.call('AssignHostClass', { hostId: 'host-w', hostClass: 'web' });
  const passW = await ev.judge(measurementsOf('att-w1', 'host-w').measurements);
  assert.equal(passW.pass, true, JSON.stringify(passW.refusals));
  assert.equal(passW.hostClass, 'web');
  const de = await ev.call<{ previousVersion: number }>('DeactivateGoldenSet', { hostClass: 'web' });
  assert.equal(de.previousVersion, 2);
  const none = await ev.judge(measurementsOf('att-w2', 'host-w').measurements);
  assert.deepEqual(
    none.refusals.map((r) => r.code),
    ['NO_POLICY'],
  );
});

test('admin errors: malformed sets INVALID_ARGUMENT, unknown versions NOT_FOUND, capture without evidence FAILED_PRECONDITION', async (t) => {
  const ev = await startEvaluator(t);
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
      return grpc.status.OK;
    } catch (err) {
      return (err as grpc.ServiceError).code;
    }
  };
  assert.equal(
    await code(ev.call('PublishGoldenSet', { goldenSet: { hostClass: 'x', rules: [] } })),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await code(ev.call('PublishGoldenSet', { goldenSet: { hostClass: 'x', rules: [{ id: 'a' }] } })),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await code(
      ev.call('PublishGoldenSet', {
        goldenSet: {
          hostClass: 'x',
          rules: [
            {
              id: 'p',
              pcrExact: { hashAlgorithm: 'HASH_ALGORITHM_SHA256', pcr: 0, allowed: [Buffer.alloc(3)] },
            },
          ],
        },
      }),
    ),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await code(ev.call('ActivateGoldenSet', { hostClass: 'x', version: 9 })),
    grpc.status.NOT_FOUND,
  );
  assert.equal(await code(ev.call('GetGoldenSet', { hostClass: 'x', version: 0 })), grpc.status.NOT_FOUND);
  assert.equal(await code(ev.call('Capture', { hostId: 'nobody' })), grpc.status.FAILED_PRECONDITION);
  assert.equal(
    await code(ev.call('AssignHostClass', { hostId: 'h', hostClass: 'bad class!' })),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(
    await code(ev.call('ListVerdicts', { hostId: 'h', pageToken: 'zz' })),
    grpc.status.INVALID_ARGUMENT,
  );
});

test('Evaluate judges on demand without storing or publishing', async (t) => {
  const ev = await startEvaluator(t);
  await ev.judge(measurementsOf('att-1', 'host-e').measurements);
  await ev.call('Capture', { hostId: 'host-e', activate: true });
  const before = ev.verdicts.seen.length;
  const byHost = await ev.call<{ verdict: { pass: boolean; verdictId: string } }>('Evaluate', {
    hostId: 'host-e',
  });
  assert.equal(byHost.verdict.pass, true);
  assert.equal(byHost.verdict.verdictId, '');
  const off = await ev.call<{ verdict: { pass: boolean; refusals: { code: string }[] } }>('Evaluate', {
    measurements: measurementsOf('att-x', 'host-e', { secureBoot: false }).measurements,
  });
  assert.equal(off.verdict.pass, false);
  assert.ok(off.verdict.refusals.some((r) => r.code === 'SECURE_BOOT_OFF'));
  assert.equal(ev.verdicts.seen.length, before);
  const list = await ev.call<ListVerdictsResponse__Output>('ListVerdicts', { hostId: 'host-e' });
  assert.equal(list.verdicts.length, 1);
});

test('poison measurements go to the dead-letter topic; the consumer keeps going', async (t) => {
  const ev = await startEvaluator(t);
  const dlq = await collect(ev.bus, `${KAFKA_TOPICS.measurements}.dlq`);
  await ev.bus.publish(KAFKA_TOPICS.measurements, 'h', new Uint8Array([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  await ev.bus.publish(
    KAFKA_TOPICS.measurements,
    'other-key',
    encodeMeasurements(measurementsOf('att-k', 'host-k').measurements),
  );
  const v = await ev.judge(measurementsOf('att-ok', 'host-ok').measurements);
  assert.equal(v.attestationId, 'att-ok');
  const dead = await dlq.waitFor(2, 30_000);
  assert.deepEqual(dead.map((m) => m.headers[DLQ_HEADERS.errorCode]).sort(), [
    'MEASUREMENTS_INVALID',
    'PROTO_DECODE',
  ]);
});

test('a store that fails for a while delays the verdict, never dead-letters it; poison goes at once', async (t) => {
  const { InProcessBus } = await import('@hostgate/bus');
  const { loadServiceConfig } = await import('@hostgate/service-runtime');
  const { configSchema, SERVICE_NAME, start } = await import('../src/index.ts');
  const { logger, openTestDb } = await import('./harness.ts');
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const real = await openTestDb(t);
  // Armed after start: the first three store calls of the hot path fail, whichever adapter it uses.
  let failures = 0;
  const fail = () => failures-- > 0;
  const flaky = {
    ...real,
    kind: real.kind,
    schema: real.schema,
    query: <R>(sql: string, params?: readonly unknown[]) =>
      fail() ? Promise.reject(new Error('connection reset')) : real.query<R>(sql, params),
    migrate: real.migrate.bind(real),
    close: real.close.bind(real),
    transaction: <T>(fn: (tx: import('@hostgate/service-runtime').Queryable) => Promise<T>) =>
      fail() ? Promise.reject(new Error('connection reset')) : real.transaction(fn),
  };
  const config = loadServiceConfig(
    { name: SERVICE_NAME, config: configSchema },
    { HOSTGATE_POLICY_EVALUATOR_ADDRESS: '127.0.0.1:0', HOSTGATE_POLICY_EVALUATOR_DELIVERY_ATTEMPTS: '10' },
  );
  const svc = await start(config, { logger, bus, db: flaky });
  t.after(() => svc.stop());
  const verdicts = await collect(bus, KAFKA_TOPICS.verdicts);
  const dlq = await collect(bus, `${KAFKA_TOPICS.measurements}.dlq`);
  await bus.publish(
    KAFKA_TOPICS.measurements,
    'host-f',
    encodeMeasurements(measurementsOf('att-f', 'host-f').measurements),
  );
  const [v] = await verdicts.waitFor(1, 30_000);
  assert.equal(v?.key, 'host-f');
  assert.ok(failures < 0, 'the store failed three times before it answered');
  await bus.publish(KAFKA_TOPICS.measurements, 'host-g', new Uint8Array([0xff]));
  const [dead] = await dlq.waitFor(1);
  assert.equal(dead?.headers[DLQ_HEADERS.attempts], '1');
  assert.equal(dead?.headers[DLQ_HEADERS.errorCode], 'PROTO_DECODE');
  assert.equal(dlq.seen.length, 1);
});

test('with an admin token configured, calls that change policy need it; reads do not', async (t) => {
  const ev = await startEvaluator(t, { HOSTGATE_POLICY_EVALUATOR_ADMIN_TOKEN: 's3cret-token' });
  const draft = { goldenSet: { hostClass: 'web', rules: [{ id: 'sb', secureBootEnabled: {} }] } };
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => grpc.status.OK,
      (err: grpc.ServiceError) => err.code,
    );
  assert.equal(await codeOf(ev.call('PublishGoldenSet', draft, 'mallory')), grpc.status.UNAUTHENTICATED);
  assert.equal(
    await codeOf(ev.call('PublishGoldenSet', draft, 'mallory', 'wrong')),
    grpc.status.UNAUTHENTICATED,
  );
  assert.equal(
    await codeOf(ev.call('AssignHostClass', { hostId: 'h', hostClass: 'web' })),
    grpc.status.UNAUTHENTICATED,
  );
  assert.equal(await codeOf(ev.call('Capture', { hostId: 'h' })), grpc.status.UNAUTHENTICATED);
  assert.equal(await codeOf(ev.call('PublishGoldenSet', draft, 'erin', 's3cret-token')), grpc.status.OK);
  assert.equal(
    await codeOf(ev.call('ActivateGoldenSet', { hostClass: 'web', version: 1 }, 'erin')),
    grpc.status.UNAUTHENTICATED,
  );
  assert.equal(await codeOf(ev.call('ListGoldenSets', {})), grpc.status.OK);
  // Refused calls leave no trace; the accepted one is audited under its operator.
  const audit = await new PolicyStore(ev.db).auditLog();
  assert.deepEqual(
    audit.map((a) => [a.actor, a.action]),
    [['erin', 'PublishGoldenSet']],
  );
});

test('ListVerdicts: newest first in the order stored, paged, failed only', async (t) => {
  const ev = await startEvaluator(t);
  await ev.judge(measurementsOf('att-0', 'host-l').measurements);
  await ev.call('Capture', { hostId: 'host-l', activate: true });
  const ids: string[] = [];
  for (let i = 1; i <= 5; i++) {
    const v = await ev.judge(measurementsOf(`att-${i}`, 'host-l', { secureBoot: i % 2 === 0 }).measurements);
    ids.push(v.attestationId);
  }
  const all: string[] = [];
  let pageToken = '';
  do {
    const page = await ev.call<ListVerdictsResponse__Output>('ListVerdicts', {
      hostId: 'host-l',
      pageSize: 2,
      pageToken,
    });
    assert.ok(page.verdicts.length <= 2);
    all.push(...page.verdicts.map((v) => v.attestationId));
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  assert.deepEqual(all, ['att-5', 'att-4', 'att-3', 'att-2', 'att-1', 'att-0']);
  const failed = await ev.call<ListVerdictsResponse__Output>('ListVerdicts', {
    hostId: 'host-l',
    failedOnly: true,
  });
  // Secure Boot off on 1, 3, 5; att-0 had no policy.
  assert.deepEqual(
    failed.verdicts.map((v) => v.attestationId),
    ['att-5', 'att-3', 'att-1', 'att-0'],
  );
});
