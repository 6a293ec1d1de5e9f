// hostgate health: asks each of the four services for its grpc.health.v1 status.
// Exit 0 when all are SERVING, 1 otherwise, 2 for bad usage.
import { parseArgs } from 'node:util';
import { checkHealth } from '@hostgate/service-runtime/health-client';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';

/** The services and their default endpoints (the same defaults and env names the services use). */
export const SERVICES = [
  { name: 'quote-collector', address: '127.0.0.1:50051', env: 'HOSTGATE_QUOTE_COLLECTOR_ADDRESS' },
  { name: 'eventlog-replayer', address: '127.0.0.1:50052', env: 'HOSTGATE_EVENTLOG_REPLAYER_ADDRESS' },
  { name: 'policy-evaluator', address: '127.0.0.1:50053', env: 'HOSTGATE_POLICY_EVALUATOR_ADDRESS' },
  { name: 'health-cert-issuer', address: '127.0.0.1:50054', env: 'HOSTGATE_HEALTH_CERT_ISSUER_ADDRESS' },
] as const;

const USAGE = `usage: hostgate health [--json] [--timeout-ms MS] [--only SERVICE[,SERVICE]] [--server-<service> HOST:PORT]...

  Calls grpc.health.v1 Check on each service and prints its status; exit 0 when every
  one is SERVING, 1 otherwise.

  --json                 one object: {"services":[{"name","address","status"}],"ok":bool}
  --timeout-ms MS        per-service deadline (default 2000)
  --only LIST            check only these services (comma-separated names), e.g. in a
                         container's own health probe
${SERVICES.map((s) => `  --server-${s.name.padEnd(19)} default ${s.address}, or $${s.env}`).join('\n')}

  A listening address of 0.0.0.0 / [::] is checked on the matching loopback address.`;

const ADDRESS_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

function checkAddress(raw: string, source: string): string {
  const m = ADDRESS_RE.exec(raw);
  if (m === null || Number(m[2]) > 65535 || Number(m[2]) === 0)
    throw new CliUsageError(`${source}: expected HOST:PORT, got ${JSON.stringify(raw.slice(0, 100))}`);
  // A service told to listen on every interface is reached on loopback.
  if (m[1] === '0.0.0.0') return `127.0.0.1:${m[2]}`;
  if (m[1] === '[::]') return `[::1]:${m[2]}`;
  return raw;
}

export const command: Command = async (argv) => {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    json: { type: 'boolean' },
    'timeout-ms': { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const s of SERVICES) options[`server-${s.name}`] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true }));
  } catch (err) {
    throw new CliUsageError(err instanceof Error ? err.message : String(err));
  }
  if (values['help'] === true) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  let timeoutMs = 2000;
  const rawTimeout = values['timeout-ms'];
  if (typeof rawTimeout === 'string') {
    if (!/^\d{1,6}$/.test(rawTimeout) || Number(rawTimeout) < 1)
      throw new CliUsageError(
        `--timeout-ms: expected milliseconds (1..999999), got ${JSON.stringify(rawTimeout)}`,
      );
    timeoutMs = Number(rawTimeout);
  }
  let selected: readonly (typeof SERVICES)[number][] = SERVICES;
  const only = values['only'];
  if (typeof only === 'string') {
    const names = only.split(',').map((n) => n.trim());
    const unknown = names.filter((n) => !SERVICES.some((s) => s.name === n));
    if (unknown.length > 0 || names.length === 0)
      throw new CliUsageError(
        `--only: unknown service ${JSON.stringify(unknown.join(',').slice(0, 100))} (known: ${SERVICES.map((s) => s.name).join(', ')})`,
      );
    selected = SERVICES.filter((s) => names.includes(s.name));
  }
  const targets = selected.map((s) => {
    const flag = values[`server-${s.name}`];
    if (typeof flag === 'string') return { name: s.name, address: checkAddress(flag, `--server-${s.name}`) };
    const fromEnv = process.env[s.env];
    if (fromEnv !== undefined && fromEnv !== '')
      return { name: s.name, address: checkAddress(fromEnv, s.env) };
    return { name: s.name, address: s.address };
  });

  const results = await Promise.all(
    targets.map(async (t) => ({ ...t, ...(await checkHealth(t.address, { timeoutMs })) })),
  );
  const ok = results.every((r) => r.status === 'SERVING');
  if (values['json'] === true) {
    const services = results.map(({ name, address, status }) => ({ name, address, status }));
    process.stdout.write(`${JSON.stringify({ services, ok })}\n`);
  } else {
    const nameWidth = Math.max(7, ...results.map((r) => r.name.length));
    const addrWidth = Math.max(7, ...results.map((r) => r.address.length));
    const rows = results.map((r) => {
      const detail = r.detail === undefined ? '' : `  (${r.detail.slice(0, 120)})`;
      return `${r.name.padEnd(nameWidth)}  ${r.address.padEnd(addrWidth)}  ${r.status}${detail}`;
    });
    process.stdout.write(
      `${['SERVICE'.padEnd(nameWidth), 'ADDRESS'.padEnd(addrWidth), 'STATUS'].join('  ')}\n`,
    );
    process.stdout.write(`${rows.join('\n')}\n`);
  }
  return ok ? EXIT_OK : EXIT_REFUSED;
};
