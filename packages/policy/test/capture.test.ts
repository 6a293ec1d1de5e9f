// capture(): the draft holds the host's own PCRs, Secure Boot, dbx and boot applications — and refuses
// to vouch for evidence that did not replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureError, capture, evaluate, publish } from '../src/index.ts';
import { buildMeasurements, DBX, replay, sha256, typicalMeasurements, typicalSpecs } from './fixtures.ts';

function captureError(fn: () => unknown, code: string): CaptureError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CaptureError, String(e));
    assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected CaptureError ${code}`);
}

test('capture of a typical Secure Boot host', () => {
  const m = typicalMeasurements();
  const d = capture('web', m);
  const pcr = (n: number, digests: string[]) => ({
    id: `pcr-sha256-${n}`,
    kind: 'pcr-exact',
    bank: 'sha256',
    pcr: n,
    allowed: [replay('sha256', digests)],
  });
  assert.deepEqual(d, {
    class: 'web',
    description: 'captured from host host-a, attestation att-1',
    rules: [
      pcr(0, [sha256('crtm-1.0'), sha256('firmware-1'), sha256('sep')]),
      pcr(1, []),
      pcr(2, []),
      pcr(3, []),
      pcr(4, [sha256('shimx64.efi'), sha256('grubx64.efi')]),
      pcr(5, []),
      pcr(6, []),
      pcr(7, [sha256('SecureBoot=1'), sha256('dbx-contents'), sha256('sep')]),
      { id: 'secure-boot', kind: 'secure-boot-enabled' },
      { id: 'dbx', kind: 'dbx-contains', required: DBX },
      {
        id: 'boot-applications',
        kind: 'event-allowlist',
        pcr: 4,
        eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
        allowed: [sha256('shimx64.efi'), sha256('grubx64.efi')],
        description: 'boot applications: \\EFI\\ubuntu\\shimx64.efi, \\EFI\\ubuntu\\grubx64.efi',
      },
    ],
  });
  const v = evaluate(publish([], d), m);
  assert.equal(v.pass, true, JSON.stringify(v.failed));
  assert.equal(v.results.length, 11);
});

test('Secure Boot off and no dbx: no rule for them', () => {
  const specs = typicalSpecs().filter((s) => s.decoded?.variableName !== 'dbx');
  specs[3] = {
    ...specs[3]!,
    label: 'SecureBoot=0',
    decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: false },
  };
  const d = capture('lab', buildMeasurements(specs));
  assert.deepEqual(
    d.rules.map((r) => r.kind).filter((k) => k !== 'pcr-exact'),
    ['event-allowlist'],
  );
});

test('only the PCRs asked for and quoted; nothing quoted is an error', () => {
  const m = typicalMeasurements();
  const d = capture('web', m, { pcrs: [7, 11] });
  assert.deepEqual(
    d.rules.filter((r) => r.kind === 'pcr-exact').map((r) => r.id),
    ['pcr-sha256-7'],
  );
  captureError(() => capture('web', { ...m, pcrs: { sha1: m.pcrs.sha1! } }), 'NOTHING_TO_CAPTURE');
  const sha1 = capture('web', m, { bank: 'sha1', pcrs: [0] });
  assert.equal(sha1.rules[0]!.id, 'pcr-sha1-0');
});

test('capture refuses unverified evidence and names the event', () => {
  const apps = typicalSpecs();
  apps[7] = { ...apps[7]!, verified: false };
  assert.equal(
    captureError(() => capture('web', buildMeasurements(apps)), 'UNVERIFIED_EVIDENCE').eventIndex,
    7,
  );

  const sb = typicalSpecs();
  sb[3] = { ...sb[3]!, verified: false };
  assert.equal(
    captureError(() => capture('web', buildMeasurements(sb)), 'UNVERIFIED_EVIDENCE').eventIndex,
    3,
  );

  const dbx = typicalSpecs();
  dbx[4] = { ...dbx[4]!, verified: false };
  assert.equal(
    captureError(() => capture('web', buildMeasurements(dbx, { dbx: DBX })), 'UNVERIFIED_EVIDENCE')
      .eventIndex,
    4,
  );
});

test('the captured class name is validated like any draft', () => {
  assert.throws(() => capture('no spaces allowed', typicalMeasurements()), /class name/);
});

test('a log that measures SecureBoot both on and off is not captured', () => {
  const specs = typicalSpecs();
  specs.push({
    pcr: 7,
    type: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
    label: 'SecureBoot=0',
    decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: false },
  });
  const e = captureError(() => capture('web', buildMeasurements(specs)), 'UNVERIFIED_EVIDENCE');
  assert.equal(e.eventIndex, 9);
  assert.match(e.message, /event 9 measured SecureBoot off while the summary says on/);
});
