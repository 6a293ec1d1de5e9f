// A new PGlite data folder costs an initdb: 3–9 s of WebAssembly on a busy 2-core machine,
// most of `npm start`'s first-run time. An initialised, never-used folder is kept once per
// user and PGlite version (under the user's cache directory) and copied into each new data
// folder instead: a copy of ~40 MB takes well under a second.
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

function pgliteVersion(): string {
  // dist/index.js -> package.json
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const pkg = JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version.replace(/[^0-9A-Za-z.-]/g, '_') : 'unknown';
}

/** `$XDG_CACHE_HOME/hostgate` or `~/.cache/hostgate`: per user, so nobody else can plant a template. */
export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'hostgate');
}

/** True when `dir` is missing or empty: PGlite would run initdb there. */
export async function needsInitdb(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return true;
  return (await readdir(dir)).length === 0;
}

async function buildTemplate(target: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  const building = await mkdtemp(`${target}.building-`);
  try {
    const pg = await PGlite.create(building);
    await pg.close();
    // Atomic publish: a template either exists complete or not at all. Losing a race to
    // another process building the same template is fine: theirs is as good.
    await rename(building, target).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}

/**
 * Fills an empty `dataDir` from the cached template (building it on first use). Returns false,
 * leaving `dataDir` empty for PGlite's own initdb, when the cache is unusable.
 */
export async function seedFromTemplate(dataDir: string, cacheDir = defaultCacheDir()): Promise<boolean> {
  if (!(await needsInitdb(dataDir))) return false;
  const template = path.join(cacheDir, `pglite-${pgliteVersion()}-template`);
  await mkdir(path.dirname(dataDir), { recursive: true });
  // Copied beside the target and renamed into place, so a crash never leaves half a data folder.
  let staging: string | undefined;
  try {
    if (!existsSync(template)) await buildTemplate(template);
    const info = await stat(template);
    const uid = process.getuid?.();
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) return false;
    // A copy interrupted by a kill (Ctrl-C during a first start) leaves a staging folder behind.
    const prefix = `${path.basename(dataDir)}.seeding-`;
    for (const entry of await readdir(path.dirname(dataDir)))
      if (entry.startsWith(prefix))
        await rm(path.join(path.dirname(dataDir), entry), { recursive: true, force: true });
    staging = await mkdtemp(`${dataDir}.seeding-`);
    await cp(template, staging, { recursive: true, force: true });
    // Only an empty folder is replaced (rmdir refuses anything else).
    if (existsSync(dataDir)) await rmdir(dataDir);
    await rename(staging, dataDir);
    staging = undefined;
    return true;
  } catch {
    return false;
  } finally {
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
  }
}
