import assert from 'node:assert/strict';

/**
 * The usage-error contract: exit 2, nothing on stdout (scripts read only results there), and on
 * stderr exactly the one-line error, prefixed `hostgate VERB:`, then a one-line hint, no usage
 * text and no stack trace.
 */
export function assertUsageError(
  r: { status?: number | null; code?: number; stdout: string | Buffer; stderr: string },
  verb: string | undefined,
  what: string,
): void {
  const status = r.status ?? r.code;
  assert.equal(status, 2, `${what}: exit ${status}: ${r.stderr}`);
  assert.equal(
    r.stdout.length,
    0,
    `${what}: stdout must stay empty, got ${JSON.stringify(String(r.stdout))}`,
  );
  const lines = r.stderr.split('\n');
  assert.equal(lines.length, 3, `${what}: two stderr lines, got ${JSON.stringify(r.stderr)}`);
  assert.equal(lines[2], '', `${what}: stderr ends with a newline`);
  const prefix = verb === undefined ? 'hostgate' : `hostgate ${verb}`;
  assert.ok(lines[0]!.startsWith(`${prefix}: `), `${what}: ${JSON.stringify(lines[0])}`);
  assert.equal(
    lines[1],
    `run '${verb === undefined ? 'hostgate help' : `hostgate ${verb} --help`}' for usage`,
  );
}
