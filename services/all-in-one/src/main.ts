// `npm start`: the four HostGate services in one process on embedded defaults.
import { ConfigError, type Lifecycle } from '@hostgate/service-runtime';
import { startAllInOne } from './all-in-one.ts';

let lifecycle: Lifecycle | undefined;
try {
  // Signals are handled from the start: Ctrl-C while the store opens still closes it cleanly.
  const app = await startAllInOne({
    onLifecycle: (l) => {
      lifecycle = l;
      l.handleSignals();
    },
  });
  const width = Math.max(...app.services.map((s) => s.name.length));
  const store =
    app.store === 'pglite' ? `embedded PostgreSQL in ${app.dataDir}` : 'PostgreSQL at DATABASE_URL';
  const lines = [
    '',
    `HostGate is running: four services in one process (${store}; ${app.bus} bus).`,
    ...[...app.services].reverse().map((s) => `  ${s.name.padEnd(width)}  ${s.address}`),
    'Check them with `npx hostgate health`; stop with Ctrl-C.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (err) {
  // Interrupted while starting: the signal handler is finishing the shutdown and will exit.
  if (lifecycle?.signal === undefined) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hostgate: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`hostgate: startup failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
