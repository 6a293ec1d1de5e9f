// Round trips to the store per verdict (each query, and BEGIN/COMMIT of a transaction, is one), and
// that a redelivered verdict still yields one certificate and re-publishes the very same messages.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessBus } from '@hostgate/bus';
import { createCa } from '@hostgate/health-cert';
import { decodeCertificateEvent, encodeVerdict, type Verdict } from '@hostgate/protos';
import type { Db, Queryable } from '@hostgate/service-runtime';
import { postgresMissing } from '@hostgate/testkit/postgres';
import { type Issuer, migrations } from '../src/index.ts';
import { hostKeys, openTestDb, recordingBus, testIssuer, verdict } from './harness.ts';

interface Counted {
  db: Db;
  statements: string[];
}

/** Records every round trip the issuer makes: a query, or BEGIN/COMMIT around a transaction. */
function counting(db: Db): Counted {
  const statements: string[] = [];
  const first = (sql: string) => sql.trim().split(/\s+/).slice(0, 3).join(' ');
  const wrapped: Db = Object.assign(Object.create(db) as Db, {
    query: (sql: string, params?: readonly unknown[]) => {
      statements.push(first(sql));
      return db.query(sql, params);
    },
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => {
      statements.push('BEGIN');
      return db
        .transaction((tx) =>
          fn({
            query: (sql: string, params?: readonly unknown[]) => {
              statements.push(first(sql));
              return tx.query(sql, params);
            },
          } as Queryable),
        )
        .finally(() => statements.push('COMMIT'));
    },
  });
  return { db: wrapped, statements };
}

async function openDb(t: TestContext, tier: 'pglite' | 'postgres'): Promise<Db> {
  const db = await openTestDb(t, tier, 'hg_issuer_rt');
  await db.migrate(migrations);
  return db;
}

const ca = createCa({ commonName: 'Round Trip CA' });

function newIssuer(db: Db, bus: InProcessBus): Issuer {
  return testIssuer({ db, bus, ca });
}

for (const tier of ['pglite', 'postgres'] as const) {
  const skip = tier === 'postgres' ? postgresMissing() : undefined;
  test(`${tier}: statements per verdict; redelivery yields one certificate and the same messages`, {
    skip,
  }, async (t) => {
    const db = await openDb(t, tier);
    const counted = counting(db);
    const bus = new InProcessBus();
    t.after(() => bus.close());
    const published: Array<{ topic: string; key: string; value: Buffer; headers: Record<string, string> }> =
      [];
    const recording = recordingBus(bus, (topic, value, key, headers) =>
      published.push({ topic, key, value, headers }),
    );
    const issuer = newIssuer(counted.db, recording);
    const handle = async (v: Verdict) => {
      counted.statements.length = 0;
      published.length = 0;
      await issuer.handleVerdict({ key: v.hostId!, value: encodeVerdict(v), headers: {} });
      return { statements: [...counted.statements], published: [...published] };
    };
    const count = async (sql: string, param: string) =>
      (await db.query<{ n: bigint }>(sql, [param])).rows[0]!.n;

    const keys = hostKeys();
    const hostId = `rt-${tier}`;
    const report: Record<string, number> = {};

    const pass = verdict({ hostId, keys, pass: true });
    const issued = await handle(pass);
    report['pass'] = issued.statements.length;
    assert.equal(issued.published.length, 3, 'CertificateEvent and two SOC events');
    const again = await handle(pass);
    report['pass redelivered'] = again.statements.length;
    assert.deepEqual(again.published, issued.published, 'the stored messages, byte for byte');
    assert.equal(
      await count(
        'SELECT count(*)::int8 AS n FROM certificates WHERE attestation_id = $1',
        pass.attestationId,
      ),
      1n,
    );

    // A second pass: two live certificates, both revoked by the refusal.
    const pass2 = verdict({ hostId, keys, pass: true });
    await handle(pass2);
    const live = (
      await db.query<{ serial: string }>(
        'SELECT serial FROM certificates WHERE host_id = $1 AND revoked_at IS NULL ORDER BY serial',
        [hostId],
      )
    ).rows.map((r) => r.serial);
    assert.equal(live.length, 2);

    const fail = verdict({
      hostId,
      keys,
      pass: false,
      refusals: [{ code: 'SECURE_BOOT_OFF', message: 'Secure Boot is off', details: {} }],
    });
    const refused = await handle(fail);
    report['fail (revokes 2)'] = refused.statements.length;
    assert.equal(refused.published.length, 3);
    const event = decodeCertificateEvent(refused.published[0]!.value);
    assert.equal(event.type, 'CERTIFICATE_EVENT_TYPE_REFUSED');
    assert.deepEqual(event.revoked.map((r) => r.serial).sort(), live);
    assert.equal(
      await count(
        'SELECT count(*)::int8 AS n FROM certificates WHERE host_id = $1 AND revoked_at IS NULL',
        hostId,
      ),
      0n,
    );
    const failAgain = await handle(fail);
    report['fail redelivered'] = failAgain.statements.length;
    assert.deepEqual(failAgain.published, refused.published);
    // The refusal kept the class and version the host last passed.
    const host = (
      await db.query<{
        healthy: boolean;
        policy_class: string;
        policy_version: number;
        attestation_id: string;
      }>('SELECT healthy, policy_class, policy_version, attestation_id FROM hosts WHERE host_id = $1', [
        hostId,
      ])
    ).rows[0]!;
    assert.deepEqual(
      { ...host },
      { healthy: false, policy_class: 'web-frontend', policy_version: 7, attestation_id: fail.attestationId },
    );

    // A refusal for a host with nothing live (a first attestation that fails).
    const newcomer = await handle(
      verdict({
        hostId: `${hostId}-new`,
        keys: hostKeys(),
        pass: false,
        refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
      }),
    );
    report['fail (nothing live)'] = newcomer.statements.length;

    // An issuer that does not know the host's live certificates (a restart, another replica issued):
    // its first statement writes nothing and returns them, the second revokes exactly those.
    const other = newIssuer(counted.db, recording);
    await handle(verdict({ hostId, keys, pass: true }));
    const unknown = (
      await db.query<{ serial: string }>(
        'SELECT serial FROM certificates WHERE host_id = $1 AND revoked_at IS NULL',
        [hostId],
      )
    ).rows.map((r) => r.serial);
    assert.equal(unknown.length, 1);
    counted.statements.length = 0;
    published.length = 0;
    const failElsewhere = verdict({
      hostId,
      keys,
      pass: false,
      refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
    });
    await other.handleVerdict({ key: hostId, value: encodeVerdict(failElsewhere), headers: {} });
    report['fail (live unknown to this issuer)'] = counted.statements.length;
    assert.deepEqual(
      decodeCertificateEvent(published[0]!.value).revoked.map((r) => r.serial),
      unknown,
    );
    assert.equal(
      await count(
        'SELECT count(*)::int8 AS n FROM outbox WHERE attestation_id = $1',
        failElsewhere.attestationId,
      ),
      3n,
    );
    t.diagnostic(`round trips per verdict (${tier}): ${JSON.stringify(report)}`);
  });
}

test('postgres: a certificate revoked by someone else while a refusal waits on it is not listed by the refusal', {
  skip: postgresMissing(),
}, async (t) => {
  const db = await openDb(t, 'postgres');
  const counted = counting(db);
  const bus = new InProcessBus();
  t.after(() => bus.close());
  const published: Buffer[] = [];
  const recording = recordingBus(bus, (topic, value) => {
    if (topic === 'hostgate.certificates.v1') published.push(value);
  });
  const issuer = newIssuer(counted.db, recording);
  const keys = hostKeys();
  const hostId = 'rt-race';
  for (let i = 0; i < 2; i++) {
    const v = verdict({ hostId, keys, pass: true });
    await issuer.handleVerdict({ key: hostId, value: encodeVerdict(v), headers: {} });
  }
  const [first, second] = published.map((b) => decodeCertificateEvent(b).certificate!.serial);
  assert.ok(first !== undefined && second !== undefined);
  published.length = 0;
  counted.statements.length = 0;

  // Another session revokes `first` and holds the row until told to commit.
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  let operatorPid = 0;
  const operator = db.transaction(async (tx) => {
    operatorPid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await tx.query(
      "UPDATE certificates SET revoked_at = now(), revocation_reason = 'by the other session' WHERE serial = $1",
      [first],
    );
    locked();
    await released;
  });
  await isLocked;
  const fail = verdict({
    hostId,
    keys,
    pass: false,
    refusals: [{ code: 'SECURE_BOOT_OFF', message: 'off', details: {} }],
  });
  const refusing = issuer.handleVerdict({ key: hostId, value: encodeVerdict(fail), headers: {} });
  // Wait until the refusal's statement is blocked on the row lock (its snapshot saw both live).
  for (let i = 0; ; i++) {
    const { rows } = await db.query<{ n: bigint }>(
      'SELECT count(*)::int8 AS n FROM pg_stat_activity WHERE $1::int4 = ANY (pg_blocking_pids(pid))',
      [operatorPid],
    );
    if (rows[0]!.n > 0n) break;
    assert.ok(i < 200, 'the refusal never waited on the lock');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  release();
  await operator;
  await refusing;
  const event = decodeCertificateEvent(published[0]!);
  assert.deepEqual(
    event.revoked.map((r) => r.serial),
    [second],
  );
  const rows = (
    await db.query<{ serial: string; revocation_reason: string }>(
      'SELECT serial, revocation_reason FROM certificates WHERE host_id = $1 ORDER BY serial',
      [hostId],
    )
  ).rows;
  assert.equal(rows.find((r) => r.serial === first)!.revocation_reason, 'by the other session');
  assert.match(rows.find((r) => r.serial === second)!.revocation_reason, /refused: SECURE_BOOT_OFF/);
  // The statement that revoked a set the REFUSED event did not list was rolled back, then retried.
  assert.deepEqual(counted.statements, ['WITH input AS', 'SELECT serial FROM', 'WITH input AS']);
});
