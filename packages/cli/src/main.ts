// hostgate: one CLI for agents and operators. Each verb lives in its own module under
// commands/, loaded only when called so `hostgate eventlog …` never pays for gRPC.
import { CliUsageError, EXIT_USAGE, type Command } from './command.ts';

const verbs: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  health: { summary: 'gRPC health of the four services', load: () => import('./commands/health.ts') },
  eventlog: { summary: 'replay or show TCG boot event logs', load: () => import('./commands/eventlog.ts') },
  quote: { summary: 'verify a TPM 2.0 quote', load: () => import('./commands/quote.ts') },
  agent: {
    summary: 'enroll the TPM, attest, fetch the health certificate',
    load: () => import('./commands/agent.ts'),
  },
  policy: { summary: 'golden sets, host classes, verdicts', load: () => import('./commands/policy.ts') },
  host: {
    summary: 'is a host healthy? watch the fleet, revoke a host',
    load: () => import('./commands/host.ts'),
  },
  ca: { summary: 'CA bundle and CRL for offline verification', load: () => import('./commands/ca.ts') },
};

function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(10)} ${v.summary}`);
  return `usage: hostgate <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'hostgate <command> --help' for a command's options.`;
}

/**
 * A usage error: its one line, then a one-line hint, both on stderr (stdout carries only
 * results, so scripts reading it never get usage text). Only an explicit help request prints
 * usage, to stdout, with exit 0.
 */
function usageError(prefix: string, message: string, help: string): number {
  // One line even when the reason has several (node:util parseArgs writes some over three).
  const line = message
    .split('\n')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .join(' ');
  process.stderr.write(`${prefix}: ${line}\nrun '${help}' for usage\n`);
  return EXIT_USAGE;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (verb === undefined) return usageError('hostgate', 'a command is required', 'hostgate help');
  const entry = verbs[verb];
  if (entry === undefined) return usageError('hostgate', `unknown command '${verb}'`, 'hostgate help');
  const { command } = await entry.load();
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof CliUsageError)
      return usageError(`hostgate ${verb}`, err.message, `hostgate ${verb} --help`);
    throw err;
  }
}

// A reader that goes away (`hostgate … | head`) is not a failure to report with a stack:
// stop quietly, as Unix tools do, keeping the status decided so far.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  process.stderr.write(`hostgate: stdout: ${err.message}\n`);
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // An unexpected failure: one line for the operator, the stack only when asked for.
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`hostgate: ${message}\n`);
    if (process.env['HOSTGATE_DEBUG'] && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
