import net from 'node:net';

const HOST = '127.0.0.1';

/** Resolves true when `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A port the kernel considers free on 127.0.0.1 (it may be taken again before use: callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * Two consecutive free ports P, P+1 — swtpm and the MS simulator put the control
 * channel next to the command channel, and tpm2-tools' swtpm TCTI assumes it.
 */
export async function freePortPair(attempts = 50): Promise<[number, number]> {
  for (let i = 0; i < attempts; i++) {
    const port = await freePort();
    if (port >= 65535) continue;
    if (await isPortFree(port + 1)) return [port, port + 1];
  }
  throw new Error(`no pair of consecutive free ports on ${HOST} after ${attempts} attempts`);
}
