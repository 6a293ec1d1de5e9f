// Smoke run of the fleet bench: a few software hosts through the four services on the
// in-process bus, so CI exercises enrollment, capture, the load phases and the report.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, parseCli, runFleetBench } from '../src/fleet-bench.ts';

test('fleet bench: a fixed-rate and a flat-out phase issue certificates with no errors', {
  timeout: 120_000,
}, async () => {
  const lines: string[] = [];
  const report = await runFleetBench({
    hosts: 3,
    warmup: { rate: 10, durationS: 1 },
    phases: [
      { rate: 10, durationS: 1 },
      { rate: 'max', durationS: 1 },
    ],
    concurrency: 3,
    deploy: 'in-process',
    bus: 'in-process',
    log: (l) => lines.push(l),
  });
  assert.equal(report.phases.length, 2);
  const warmup = report.warmup;
  assert.ok(warmup !== undefined && warmup.issued > 0 && warmup.errors === 0, JSON.stringify(warmup));
  // Enrollment's NO_POLICY attempt, one warm-up attestation per host, then the timed ones.
  assert.equal(
    report.attestations,
    1 + 3 + warmup.started + report.phases[0]!.started + report.phases[1]!.started,
  );
  for (const p of report.phases) {
    assert.ok(p.issued > 0, `${p.offered}: nothing issued`);
    assert.equal(p.errors, 0);
    assert.equal(p.refused, 0);
    assert.equal(p.started, p.issued);
    assert.ok(p.p50Ms > 0 && p.p50Ms <= p.p99Ms && p.p99Ms <= p.maxMs, JSON.stringify(p));
  }
  // 10/s for 1 s offers 10; each host holds one attestation at a time, so some may be skipped.
  assert.equal(report.phases[0]!.started + report.phases[0]!.skipped, 10);
  const table = formatReport(report);
  assert.match(table, /\| warm-up 10\/s /);
  assert.match(table, /\| 10\/s /);
  assert.match(table, /\| max \(3 at once\) /);
  assert.ok(lines.some((l) => l.startsWith('enrolling 3 software hosts')));
  assert.ok(lines.some((l) => l.startsWith('warm-up 10/s for 1 s (not measured)')));
});

test('fleet bench CLI: --warmup adds an unmeasured phase, off by default; --broker-jvm picks the JVM', () => {
  const d = parseCli([]);
  assert.equal(d.brokerJvm, 'test');
  assert.equal(d.warmup, undefined);
  assert.deepEqual(
    d.phases.map((p) => p.rate),
    [100, 200, 500, 'max'],
  );
  const on = parseCli(['--warmup', '60', '--broker-jvm', 'server']);
  assert.deepEqual(on.warmup, { rate: 100, durationS: 60 });
  assert.equal(on.brokerJvm, 'server');
  assert.deepEqual(parseCli(['--warmup', '5', '--warmup-rate', '30']).warmup, { rate: 30, durationS: 5 });
  assert.equal(parseCli(['--warmup', '0', '--warmup-rate', '30']).warmup, undefined);
  assert.throws(() => parseCli(['--warmup=-1']), /--warmup must be an integer 0\.\.3600/);
  assert.throws(() => parseCli(['--warmup-rate', '0']), /--warmup-rate must be an integer/);
  assert.throws(() => parseCli(['--broker-jvm', 'fast']), /--broker-jvm server\|test/);
});
