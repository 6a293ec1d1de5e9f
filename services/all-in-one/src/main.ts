// `npm start`: the four HostGate services in one process on embedded defaults.
import { ConfigError } from '@hostgate/service-runtime';
import { startAllInOne } from './all-in-one.ts';

try {
  const app = await startAllInOne();
  app.lifecycle.handleSignals();
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
  if (err instanceof ConfigError) {
    process.stderr.write(`hostgate: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`hostgate: startup failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
