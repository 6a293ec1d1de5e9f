import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePortPair } from './ports.ts';

const HOST = '127.0.0.1';
const REQUIRED_TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_getrandom'] as const;

function onPath(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/** Why swtpm-based tests cannot run here, or undefined when swtpm, swtpm_setup and tpm2-tools are all present. */
export function swtpmMissing(): string | undefined {
  const missing = REQUIRED_TOOLS.filter((tool) => !onPath(tool));
  if (missing.length === 0) return undefined;
  return `not on PATH: ${missing.join(', ')} (install the swtpm, swtpm-tools and tpm2-tools packages)`;
}

export interface SwtpmOptions {
  /** Provision RSA + ECC EKs with certificates from a throw-away local CA (swtpm_setup + swtpm_localca). */
  ekCert?: boolean;
  /** Use (and keep) this state directory instead of a temporary one. */
  stateDir?: string;
  /** Milliseconds to wait for the TPM to accept connections. */
  readyTimeoutMs?: number;
}

export interface SwtpmCa {
  /** Self-signed root of the local CA: the EK certificate trust anchor. */
  rootCertPath: string;
  /** Intermediate that signed the EK and platform certificates. */
  issuerCertPath: string;
  rootCertPem: string;
  issuerCertPem: string;
}

export interface Swtpm {
  /** TCTI configuration for tpm2-tools (`-T` / TPM2TOOLS_TCTI). */
  tcti: string;
  /** Address for `@hostgate/tpm2-js-lite/client` (`swtpm:HOST:PORT`). */
  address: string;
  host: string;
  port: number;
  ctrlPort: number;
  stateDir: string;
  /** Present when started with `ekCert: true`. */
  ca?: SwtpmCa;
  /** Environment for spawning tpm2-tools against this TPM. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} exited with ${code ?? signal}: ${output.trim().slice(-2000)}`));
    });
  });
}

/** Writes swtpm_setup and swtpm_localca configs into `dir`, so provisioning never touches /etc or $HOME. */
async function writeLocalCaConfig(dir: string): Promise<{ setupConf: string; caDir: string }> {
  const caDir = path.join(dir, 'localca');
  await mkdir(caDir, { recursive: true });
  const localcaConf = path.join(dir, 'swtpm-localca.conf');
  const localcaOptions = path.join(dir, 'swtpm-localca.options');
  const setupConf = path.join(dir, 'swtpm_setup.conf');
  await writeFile(
    localcaConf,
    [
      `statedir = ${caDir}`,
      `signingkey = ${path.join(caDir, 'signkey.pem')}`,
      `issuercert = ${path.join(caDir, 'issuercert.pem')}`,
      `certserial = ${path.join(caDir, 'certserial')}`,
      '',
    ].join('\n'),
  );
  await writeFile(
    localcaOptions,
    ['--platform-manufacturer HostGate', '--platform-version 2.1', '--platform-model swtpm', ''].join('\n'),
  );
  await writeFile(
    setupConf,
    [
      'create_certs_tool = swtpm_localca',
      `create_certs_tool_config = ${localcaConf}`,
      `create_certs_tool_options = ${localcaOptions}`,
      'active_pcr_banks = sha1,sha256',
      '',
    ].join('\n'),
  );
  return { setupConf, caDir };
}

function connectOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, 3000))) {
    child.kill('SIGKILL');
    await waitExit(child, 3000);
  }
}

/**
 * Starts a TPM 2.0 simulator on 127.0.0.1 (command port P, control port P+1) with Startup(CLEAR)
 * already sent. The caller must `stop()` it; stop also removes the temporary directory.
 */
export async function startSwtpm(opts: SwtpmOptions = {}): Promise<Swtpm> {
  const reason = swtpmMissing();
  if (reason !== undefined) throw new Error(`swtpm unavailable: ${reason}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'hostgate-swtpm-'));
  // swtpm_setup and swtpm_localca read per-user config under $HOME/XDG dirs; point them into tmp.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp, XDG_CONFIG_HOME: tmp };
  const stateDir = opts.stateDir ?? path.join(tmp, 'state');
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(stateDir, { recursive: true });
    let ca: SwtpmCa | undefined;
    if (opts.ekCert) {
      const { setupConf, caDir } = await writeLocalCaConfig(tmp);
      await run(
        'swtpm_setup',
        [
          '--tpm2',
          '--create-ek-cert',
          '--create-platform-cert',
          '--tpmstate',
          stateDir,
          '--config',
          setupConf,
          '--logfile',
          path.join(tmp, 'swtpm_setup.log'),
          '--overwrite',
        ],
        env,
        60_000,
      );
      const rootCertPath = path.join(caDir, 'swtpm-localca-rootca-cert.pem');
      const issuerCertPath = path.join(caDir, 'issuercert.pem');
      ca = {
        rootCertPath,
        issuerCertPath,
        rootCertPem: await readFile(rootCertPath, 'utf8'),
        issuerCertPem: await readFile(issuerCertPath, 'utf8'),
      };
    }

    const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
    let lastError = '';
    // Another process may grab the ports between probing and swtpm's bind: retry on a new pair.
    for (let attempt = 0; attempt < 5; attempt++) {
      const [port, ctrlPort] = await freePortPair();
      const child = spawn(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--server',
          `type=tcp,port=${port},bindaddr=${HOST}`,
          '--ctrl',
          `type=tcp,port=${ctrlPort},bindaddr=${HOST}`,
          '--tpmstate',
          `dir=${stateDir}`,
          '--flags',
          'not-need-init,startup-clear',
          '--log',
          `file=${path.join(tmp, 'swtpm.log')}`,
        ],
        { env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.once('error', (err) => {
        stderr += String(err);
      });
      const deadline = Date.now() + readyTimeoutMs;
      let ready = false;
      while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
        // The control port is probed so the command channel's single connection stays free for the test.
        if (await connectOnce(ctrlPort)) {
          ready = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (ready) {
        let stopped = false;
        const stop = async () => {
          if (stopped) return;
          stopped = true;
          await killChild(child);
          await cleanup();
        };
        const swtpm: Swtpm = {
          tcti: `swtpm:host=${HOST},port=${port}`,
          address: `swtpm:${HOST}:${port}`,
          host: HOST,
          port,
          ctrlPort,
          stateDir,
          env: { ...env, TPM2TOOLS_TCTI: `swtpm:host=${HOST},port=${port}` },
          stop,
        };
        if (ca !== undefined) swtpm.ca = ca;
        return swtpm;
      }
      await killChild(child);
      lastError = stderr.trim() || `not ready within ${readyTimeoutMs} ms`;
    }
    throw new Error(`swtpm did not start: ${lastError}`);
  } catch (err) {
    await cleanup();
    throw err;
  }
}
