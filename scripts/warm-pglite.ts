// Builds the embedded PostgreSQL template once (setup runs this), so the first `npm start` copies
// a ready data folder instead of paying PGlite's initdb (seconds of WebAssembly on 2 cores).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultCacheDir, seedFromTemplate } from '@hostgate/service-runtime';

const scratch = await mkdtemp(path.join(tmpdir(), 'hostgate-warm-'));
try {
  const seeded = await seedFromTemplate(path.join(scratch, 'data'));
  process.stdout.write(
    seeded
      ? `setup: embedded PostgreSQL template ready in ${defaultCacheDir()}\n`
      : 'setup: embedded PostgreSQL template unavailable; the first npm start runs initdb\n',
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
