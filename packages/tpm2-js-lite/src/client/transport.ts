import { open } from 'node:fs/promises';
import net from 'node:net';
import { TpmTransportError } from './errors.ts';

/** Carries one TPM command to the TPM and brings back its raw response. */
export interface Transport {
  send(command: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

// TPM 2.0 Part 2: TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS; a TPM 1.2 / pre-startup reply may use TPM_ST_RSP_COMMAND.
const TAG_NO_SESSIONS = 0x8001;
const TAG_SESSIONS = 0x8002;
const TAG_RSP_COMMAND = 0x00c4;
const HEADER_SIZE = 10;
/** Far above any TPM's MAX_RESPONSE_SIZE (typically 4096), low enough that a hostile peer cannot make us buffer much. */
export const MAX_RESPONSE_SIZE = 65_536;

/**
 * Checks a response frame's header against its bytes: known tag, declared size equal to the bytes
 * received, within bounds. Returns the response code.
 */
export function checkResponseFrame(response: Uint8Array): number {
  if (response.length < HEADER_SIZE) {
    throw new TpmTransportError(
      'RESPONSE_SHORT',
      `response of ${response.length} bytes is shorter than the 10-byte header`,
      response.length,
    );
  }
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  const tag = view.getUint16(0);
  if (tag !== TAG_NO_SESSIONS && tag !== TAG_SESSIONS && tag !== TAG_RSP_COMMAND) {
    throw new TpmTransportError('RESPONSE_TAG', `unknown response tag 0x${tag.toString(16)}`, 0);
  }
  const size = view.getUint32(2);
  if (size > MAX_RESPONSE_SIZE) {
    throw new TpmTransportError('RESPONSE_TOO_LARGE', `response declares ${size} bytes`, 2);
  }
  if (size !== response.length) {
    throw new TpmTransportError(
      'RESPONSE_SIZE',
      `response declares ${size} bytes but ${response.length} arrived`,
      2,
    );
  }
  return view.getUint32(6);
}

export interface TransportOptions {
  /** Per-command deadline in milliseconds (default 30 s; key generation on real TPMs is slow). */
  timeoutMs?: number;
  /** Locality byte sent with each command on simulator transports (default 0). */
  locality?: number;
}

// MS TPM simulator TCP protocol (also spoken by swtpm's --server port): command codes on the command port.
const TPM_SEND_COMMAND = 8;
const TPM_SESSION_END = 20;

/**
 * TPM simulator over TCP (Microsoft/IBM simulator or swtpm): each command is
 * u32 TPM_SEND_COMMAND, u8 locality, u32 length, bytes; each reply is u32 length, bytes, u32 status (0).
 */
export class SimulatorTransport implements Transport {
  readonly host: string;
  readonly port: number;
  private readonly timeoutMs: number;
  private readonly locality: number;
  private socket: net.Socket | undefined;
  private connecting: Promise<net.Socket> | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failure: TpmTransportError | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(host: string, port: number, opts: TransportOptions = {}) {
    this.host = host;
    this.port = port;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.locality = opts.locality ?? 0;
  }

  private connect(): Promise<net.Socket> {
    if (this.socket !== undefined && this.failure === undefined) return Promise.resolve(this.socket);
    if (this.connecting !== undefined) return this.connecting;
    this.failure = undefined;
    this.buffered = Buffer.alloc(0);
    this.connecting = new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      const onConnectError = (err: Error) => {
        reject(
          new TpmTransportError(
            'TRANSPORT_IO',
            `cannot connect to ${this.host}:${this.port}: ${err.message}`,
            0,
            {
              cause: err,
            },
          ),
        );
      };
      socket.once('error', onConnectError);
      socket.once('connect', () => {
        socket.off('error', onConnectError);
        // Events from a connection already dropped must not touch the state of its successor.
        socket.on('data', (chunk: Buffer) => {
          if (this.socket !== socket) return;
          this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
          this.wake();
        });
        socket.on('error', (err) => {
          if (this.socket !== socket) return;
          this.failure ??= new TpmTransportError('TRANSPORT_IO', `simulator connection: ${err.message}`, 0, {
            cause: err,
          });
          this.wake();
        });
        socket.on('close', () => {
          if (this.socket !== socket) return;
          this.failure ??= new TpmTransportError('TRANSPORT_CLOSED', 'simulator closed the connection');
          this.wake();
        });
        this.socket = socket;
        resolve(socket);
      });
    }).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Waits until `n` bytes are buffered, then takes them. */
  private async take(n: number, deadline: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.failure !== undefined) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new TpmTransportError('TRANSPORT_TIMEOUT', `no complete response within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    // One command in flight at a time: the protocol has no request ids.
    const result = this.queue.then(() => this.sendNow(command));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async sendNow(command: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new TpmTransportError('TRANSPORT_CLOSED', 'transport is closed');
    const socket = await this.connect();
    const deadline = Date.now() + this.timeoutMs;
    const frame = Buffer.alloc(9 + command.length);
    frame.writeUInt32BE(TPM_SEND_COMMAND, 0);
    frame.writeUInt8(this.locality, 4);
    frame.writeUInt32BE(command.length, 5);
    frame.set(command, 9);
    socket.write(frame);
    try {
      const length = (await this.take(4, deadline)).readUInt32BE(0);
      if (length > MAX_RESPONSE_SIZE) {
        throw new TpmTransportError('RESPONSE_TOO_LARGE', `simulator announces a ${length}-byte response`, 0);
      }
      const response = new Uint8Array(await this.take(length, deadline));
      const status = (await this.take(4, deadline)).readUInt32BE(0);
      if (status !== 0) {
        throw new TpmTransportError(
          'TRANSPORT_FRAMING',
          `simulator acknowledged with status ${status}`,
          4 + length,
        );
      }
      if (this.buffered.length > 0) {
        throw new TpmTransportError(
          'RESPONSE_TRAILING',
          `${this.buffered.length} unexpected bytes after the response`,
        );
      }
      checkResponseFrame(response);
      return response;
    } catch (err) {
      // After a framing error the stream position is unknown: never reuse this connection.
      this.dropConnection();
      throw err;
    }
  }

  private dropConnection(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.buffered = Buffer.alloc(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const end = Buffer.alloc(4);
      end.writeUInt32BE(TPM_SESSION_END, 0);
      socket.once('close', () => resolve());
      socket.end(end);
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

/** A Linux TPM character device (`/dev/tpmrm0` with the kernel resource manager, or `/dev/tpm0`). */
export class DeviceTransport implements Transport {
  readonly path: string;
  private handle: Awaited<ReturnType<typeof open>> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(path: string) {
    this.path = path;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    const result = this.queue.then(() => this.sendNow(command));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async sendNow(command: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new TpmTransportError('TRANSPORT_CLOSED', 'transport is closed');
    try {
      this.handle ??= await open(this.path, 'r+');
      // The driver takes a whole command per write and returns the whole response on the next read.
      await this.handle.write(command, 0, command.length, null);
      const buffer = new Uint8Array(MAX_RESPONSE_SIZE + 1);
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, null);
      if (bytesRead > MAX_RESPONSE_SIZE) {
        throw new TpmTransportError(
          'RESPONSE_TOO_LARGE',
          `device returned more than ${MAX_RESPONSE_SIZE} bytes`,
        );
      }
      const response = buffer.slice(0, bytesRead);
      checkResponseFrame(response);
      return response;
    } catch (err) {
      if (err instanceof TpmTransportError) throw err;
      throw new TpmTransportError('TRANSPORT_IO', `${this.path}: ${(err as Error).message}`, 0, {
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.handle?.close();
    this.handle = undefined;
  }
}

/**
 * Opens a transport from an address: `swtpm:HOST:PORT` or `mssim:HOST:PORT` (simulator TCP protocol),
 * `device:/dev/tpmrm0`, or a bare `/dev/...` path.
 */
export function openTransport(address: string, opts: TransportOptions = {}): Transport {
  const sim = /^(?:swtpm|mssim):(.+):(\d{1,5})$/.exec(address);
  if (sim !== null) {
    const host = sim[1]!.replace(/^\[(.*)\]$/, '$1');
    const port = Number(sim[2]);
    if (port < 1 || port > 65535) throw new TpmTransportError('TRANSPORT_ADDRESS', `bad port in ${address}`);
    return new SimulatorTransport(host, port, opts);
  }
  if (address.startsWith('device:')) return new DeviceTransport(address.slice('device:'.length));
  if (address.startsWith('/dev/')) return new DeviceTransport(address);
  throw new TpmTransportError(
    'TRANSPORT_ADDRESS',
    `unsupported TPM address ${JSON.stringify(address)}: use swtpm:HOST:PORT, mssim:HOST:PORT or /dev/tpmrm0`,
  );
}
