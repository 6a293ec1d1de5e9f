// Graceful shutdown: resources are registered as they are opened and closed in reverse
// order (servers stop taking work before the stores they write to go away).
import type { Logger } from './logger.ts';

type Closer = () => Promise<void> | void;

export interface SignalOptions {
  signals?: readonly NodeJS.Signals[];
  /** Called with the exit status once shutdown ends; defaults to process.exit. */
  exit?: (code: number) => void;
  /** Whole-shutdown deadline; past it the process exits 1 (default 30 s). */
  timeoutMs?: number;
}

export class Lifecycle {
  readonly #logger: Logger;
  readonly #closers: { name: string; close: Closer }[] = [];
  #stopping: Promise<boolean> | undefined;
  #signal: NodeJS.Signals | undefined;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Registers `close` to run at shutdown, before everything registered earlier. */
  defer(name: string, close: Closer): void {
    if (this.#stopping !== undefined) throw new Error(`cannot register '${name}': shutdown has begun`);
    this.#closers.push({ name, close });
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** The signal that started the shutdown, when one did. */
  get signal(): NodeJS.Signals | undefined {
    return this.#signal;
  }

  /**
   * Closes everything in reverse registration order; a failing closer is logged and the rest
   * still run. Resolves true when all closed cleanly. Idempotent.
   */
  shutdown(reason = 'shutdown'): Promise<boolean> {
    this.#stopping ??= (async () => {
      this.#logger.info({ reason }, 'shutting down');
      let ok = true;
      for (const { name, close } of this.#closers.toReversed()) {
        try {
          await close();
          this.#logger.debug({ resource: name }, 'closed');
        } catch (err) {
          ok = false;
          this.#logger.error({ resource: name, err }, 'close failed');
        }
      }
      this.#logger.info({ ok }, 'stopped');
      return ok;
    })();
    return this.#stopping;
  }

  /**
   * SIGTERM / SIGINT run shutdown() once and exit 0 (1 when a closer failed or the deadline
   * passed); a second signal while stopping exits 1 at once. Returns a function removing the handlers.
   */
  handleSignals(opts: SignalOptions = {}): () => void {
    const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
    const exit = opts.exit ?? ((code: number) => process.exit(code));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.#stopping !== undefined) {
        this.#logger.warn({ signal }, 'second signal during shutdown; exiting now');
        exit(1);
        return;
      }
      this.#signal = signal;
      const timer = setTimeout(() => {
        this.#logger.error({ timeoutMs }, 'shutdown deadline passed; exiting');
        exit(1);
      }, timeoutMs);
      timer.unref();
      this.shutdown(signal).then(
        (ok) => {
          clearTimeout(timer);
          exit(ok ? 0 : 1);
        },
        () => exit(1),
      );
    };
    for (const s of signals) process.on(s, onSignal);
    return () => {
      for (const s of signals) process.off(s, onSignal);
    };
  }
}
