// Smoke run of the fleet bench: a few software hosts through the four services on the
// in-process bus, so CI exercises enrollment, capture, the load phases and the report.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runFleetBench } from '../src/fleet-bench.ts';

test('fleet bench: a fixed-rate and a flat-out phase issue certificates with no errors', {
  timeout: 120_000,
}, async () => {
  const lines: string[] = [];
  const report = await runFleetBench({
    hosts: 3,
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
  assert.match(table, /\| 10\/s /);
  assert.match(table, /\| max \(3 at once\) /);
  assert.ok(lines.some((l) => l.startsWith('enrolling 3 software hosts')));
});
