import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const require = createRequire(import.meta.url);

// @bufbuild/buf ships a native binary per platform; its bin/buf wrapper finds it.
function bufPath(): string | undefined {
  try {
    return require.resolve('@bufbuild/buf/bin/buf');
  } catch {
    return undefined;
  }
}
const buf = bufPath();
const probe =
  buf === undefined ? undefined : spawnSync(process.execPath, [buf, '--version'], { encoding: 'utf8' });
const skip =
  buf === undefined
    ? '@bufbuild/buf is not installed'
    : probe?.status !== 0
      ? `buf does not run here: ${probe?.stderr || probe?.error?.message}`
      : false;

function lint(cwd: string) {
  return spawnSync(process.execPath, [buf!, 'lint'], { cwd, encoding: 'utf8', timeout: 60_000 });
}

test('protos/ passes buf lint (STANDARD)', { skip }, () => {
  const r = lint(repoRoot);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('buf lint with the same buf.yaml rejects a violation', { skip }, (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hostgate-buf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(path.join(repoRoot, 'buf.yaml'), path.join(dir, 'buf.yaml'));
  cpSync(path.join(repoRoot, 'protos'), path.join(dir, 'protos'), { recursive: true });
  // An unprefixed enum value outside refusal.proto is not covered by the exception.
  writeFileSync(
    path.join(dir, 'protos/hostgate/v1/extra.proto'),
    'syntax = "proto3";\npackage hostgate.v1;\nenum Extra {\n  EXTRA_UNSPECIFIED = 0;\n  LOOSE = 1;\n}\n',
  );
  const r = lint(dir);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /extra\.proto.*LOOSE/);
});
