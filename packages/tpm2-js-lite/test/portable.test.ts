// The structures entry point must bundle for browsers: nothing it reaches may import node:* modules.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
}

test('@hostgate/tpm2-js-lite/structures reaches no node:* module and no Buffer', () => {
  const root = path.resolve(import.meta.dirname, '../src/structures.ts');
  const seen = new Set<string>();
  const pending = [root];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of imports(file)) {
      assert.ok(!spec.startsWith('node:'), `${path.basename(file)} imports ${spec}`);
      assert.ok(spec.startsWith('.'), `${path.basename(file)} imports package ${spec}`);
      pending.push(path.resolve(path.dirname(file), spec));
    }
    assert.doesNotMatch(readFileSync(file, 'utf8'), /\bBuffer\./, `${path.basename(file)} uses Buffer`);
  }
  // The walk really followed the graph: attest.ts pulls pcr.ts, public.ts pulls bytes.ts, etc.
  assert.ok(seen.size >= 9, `only ${seen.size} modules reached`);
});

test('the crypto-using modules are the ones expected (guards the walk itself)', () => {
  const crypto = path.resolve(import.meta.dirname, '../src/crypto.ts');
  assert.ok(imports(crypto).includes('node:crypto'));
});
