// Quote verifications per second on one core (ECC P-256, RSA-2048), beside `openssl speed` verify rates
// measured in the same run. Keys and quotes are made in-process and marshaled as a TPM marshals them.
// Usage: node bench/src/quote-bench.ts [--seconds N] [--json]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs, promisify } from 'node:util';
import { verifyQuote } from '@hostgate/tpm2-js-lite';
import { type SoftwareKeyKind, samplePcrs, softwareAk, softwareQuote } from '@hostgate/tpm2-js-lite/testing';

const execP = promisify(execFile);

interface Row {
  key: string;
  hostgatePerSecond: number;
  opensslPerSecond: number | undefined;
  ratio: number | undefined;
}

/** Verifies `count` distinct quotes round-robin for `seconds` of this process's CPU time (user), like openssl speed. */
function measure(kind: SoftwareKeyKind, seconds: number): number {
  const ak = softwareAk(kind);
  const pcrs = samplePcrs('sha256', [0, 1, 2, 3, 4, 5, 6, 7]);
  const quotes = Array.from({ length: 64 }, () => {
    const nonce = new Uint8Array(randomBytes(32));
    return { nonce, ...softwareQuote({ ak, nonce, pcrs }) };
  });
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const q = quotes[i % quotes.length]!;
      verifyQuote({
        akPublic: ak.publicBytes,
        attest: q.attest,
        signature: q.signature,
        nonce: q.nonce,
        pcrs,
      });
    }
  };
  run(500); // warm-up: JIT and the AK cache
  let done = 0;
  const start = process.cpuUsage();
  let used = 0;
  while (used < seconds * 1e6) {
    run(200);
    done += 200;
    const u = process.cpuUsage(start);
    used = u.user;
  }
  return done / (used / 1e6);
}

async function opensslSpeed(
  seconds: number,
): Promise<{ ecdsap256?: number; rsa2048?: number; version?: string }> {
  try {
    const { stdout } = await execP(
      'openssl',
      ['speed', '-seconds', String(seconds), 'ecdsap256', 'rsa2048'],
      {
        timeout: (seconds * 6 + 30) * 1000,
      },
    );
    const rsa = /^rsa 2048 bits\s+\S+\s+\S+\s+\S+\s+(\S+)/m.exec(stdout);
    const ec = /^\s*256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+\S+\s+(\S+)/m.exec(stdout);
    const { stdout: version } = await execP('openssl', ['version']);
    const out: { ecdsap256?: number; rsa2048?: number; version?: string } = { version: version.trim() };
    if (rsa) out.rsa2048 = Number(rsa[1]);
    if (ec) out.ecdsap256 = Number(ec[1]);
    return out;
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '2' }, json: { type: 'boolean', default: false } },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('--seconds must be positive');
  const ossl = await opensslSpeed(seconds);
  const rows: Row[] = [];
  for (const [key, kind, osslRate] of [
    ['ECC P-256 (ECDSA-SHA256)', 'p256', ossl.ecdsap256],
    ['RSA-2048 (RSASSA-SHA256)', 'rsa2048', ossl.rsa2048],
  ] as const) {
    const rate = measure(kind, seconds);
    rows.push({
      key,
      hostgatePerSecond: Math.round(rate),
      opensslPerSecond: osslRate,
      ratio: osslRate ? rate / osslRate : undefined,
    });
  }
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ node: process.version, openssl: ossl.version, seconds, rows })}\n`,
    );
    return;
  }
  process.stdout.write(
    `verifyQuote vs openssl speed verify, one core, ${seconds} s CPU each (node ${process.version}, ${ossl.version ?? 'openssl absent'})\n`,
  );
  process.stdout.write(
    `${'key'.padEnd(28)}${'verifyQuote/s'.padStart(15)}${'openssl verify/s'.padStart(18)}${'ratio'.padStart(9)}\n`,
  );
  for (const r of rows) {
    const ratio = r.ratio === undefined ? 'n/a' : `${(r.ratio * 100).toFixed(1)} %`;
    process.stdout.write(
      `${r.key.padEnd(28)}${String(r.hostgatePerSecond).padStart(15)}${String(r.opensslPerSecond ?? 'n/a').padStart(18)}${ratio.padStart(9)}\n`,
    );
  }
  process.stdout.write('target: ratio >= 60 %\n');
}

await main();
