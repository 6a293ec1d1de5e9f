// Evaluation cost: a typical host under its captured set, and a worst case at the size caps
// (300k events in one PCR against 512 allowlists and 512 forbidden-digest rules).
// Run: scripts/node packages/policy/bin/bench-evaluate.ts
import { capture, evaluate, type GoldenSet, publish, type Rule, validateGoldenSet } from '../src/index.ts';
import { buildMeasurements, type EventSpec, sha256, typicalMeasurements } from '../test/fixtures.ts';

const m = typicalMeasurements();
const set = publish([], capture('web', m));
const N = 20000;
let t = performance.now();
for (let i = 0; i < N; i++) evaluate(set, m);
let dt = performance.now() - t;
console.log(`typical host, ${set.rules.length} rules: ${((N / dt) * 1000).toFixed(0)} evaluations/s`);

const specs: EventSpec[] = [];
for (let i = 0; i < 300000; i++)
  specs.push({ pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', label: `e${i % 1000}` });
const big = buildMeasurements(specs);
const digests = Array.from({ length: 127 }, (_, i) => sha256(`x${i}`));
const rules: Rule[] = [];
for (let i = 0; i < 1024; i++) {
  rules.push(
    i % 2
      ? { id: `f${i}`, kind: 'forbidden-digests', digests }
      : { id: `a${i}`, kind: 'event-allowlist', pcr: 4, allowed: digests },
  );
}
const sets: [string, GoldenSet][] = [
  ['1024 rules', validateGoldenSet({ class: 'x', version: 1, createdAt: '2026-01-01T00:00:00Z', rules })],
  [
    '20 rules',
    validateGoldenSet({
      class: 'x',
      version: 1,
      createdAt: '2026-01-01T00:00:00Z',
      rules: rules.slice(0, 20),
    }),
  ],
];
for (const [name, g] of sets) {
  t = performance.now();
  const v = evaluate(g, big);
  dt = performance.now() - t;
  console.log(`300000 failing events, ${name}: ${dt.toFixed(0)} ms, ${v.results.length} results`);
}
