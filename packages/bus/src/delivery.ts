import { type Context, context } from '@opentelemetry/api';
import { traceContextOf } from './trace.ts';
import {
  BusError,
  type BusHeaders,
  type BusMessage,
  DLQ_HEADERS,
  PoisonMessageError,
  type SubscribeOptions,
} from './types.ts';

export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_HANDLER_TIMEOUT_MS = 60_000;
const MAX_REASON_LENGTH = 1024;

export function defaultRetryDelayMs(attempt: number): number {
  return Math.min(5000, 100 * 2 ** (attempt - 1));
}

/** Resolves after `ms`, or at once when `cancel` is (or becomes) aborted. */
export function sleep(ms: number, cancel: AbortSignal | Cancellation): Promise<void> {
  return new Promise((resolve) => {
    if (cancel.aborted || ms <= 0) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    const unsubscribe = onAbort(cancel, done);
    function done() {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    }
  });
}

/** Calls `listener` once when `cancel` aborts; returns what stops listening. */
function onAbort(cancel: AbortSignal | Cancellation, listener: () => void): () => void {
  if (cancel instanceof Cancellation) return cancel.subscribe(listener);
  cancel.addEventListener('abort', listener, { once: true });
  return () => cancel.removeEventListener('abort', listener);
}

/**
 * An abort that many deliveries follow (a partition's current owner, a subscription): what an
 * AbortSignal does for them at a Set insertion and deletion per delivery, where following an
 * AbortSignal (an event listener, or AbortSignal.any) cost several microseconds per message.
 */
export class Cancellation {
  #reason: unknown;
  #aborted = false;
  readonly #listeners = new Set<() => void>();

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Calls `listener` once on abort (at once if aborted already); returns what stops listening. */
  subscribe(listener: () => void): () => void {
    if (this.#aborted) {
      listener();
      return () => undefined;
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) listener();
  }
}

/**
 * Handler timeouts of one subscription: every attempt gets the same time, so deadlines expire in
 * the order attempts started, and one timer (for the earliest) serves them all, where a timer
 * per attempt was set and cleared for every message.
 */
export class Watchdog {
  readonly timeoutMs: number;
  /** Armed attempts in start order, which is deadline order. */
  readonly #armed = new Set<WatchEntry>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** `onTimeout` runs once `timeoutMs` passed, unless disarmed first. */
  arm(onTimeout: () => void): WatchEntry {
    const entry: WatchEntry = { deadline: performance.now() + this.timeoutMs, onTimeout };
    this.#armed.add(entry);
    if (this.#timer === undefined) this.#schedule(this.timeoutMs);
    return entry;
  }

  disarm(entry: WatchEntry): void {
    this.#armed.delete(entry);
  }

  /** Drops every armed attempt and the timer (their owner closed). */
  stop(): void {
    this.#armed.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
    // The watchdog alone must not keep a process alive.
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const entry of this.#armed) {
      if (entry.deadline > now) {
        this.#schedule(entry.deadline - now);
        return;
      }
      this.#armed.delete(entry);
      entry.onTimeout();
    }
  }
}

export interface WatchEntry {
  readonly deadline: number;
  readonly onTimeout: () => void;
}

export type DeliveryOutcome =
  | { kind: 'handled' }
  | { kind: 'failed'; error: unknown; attempts: number }
  | { kind: 'aborted' };

const HANDLED: DeliveryOutcome = { kind: 'handled' };
const ABORTED: DeliveryOutcome = { kind: 'aborted' };

type Delivery = Omit<BusMessage, 'attempt' | 'signal'>;

/** What a handler receives: its signal is made only if the handler reads it (most never do). */
class Attempt implements BusMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key: string;
  readonly value: Uint8Array;
  readonly headers: BusHeaders;
  readonly attempt: number;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  constructor(message: Delivery, attempt: number) {
    this.topic = message.topic;
    this.partition = message.partition;
    this.offset = message.offset;
    this.key = message.key;
    this.value = message.value;
    // A copy per attempt: a handler changing it changes neither the retry's nor the dead letter's.
    this.headers = { ...message.headers };
    this.attempt = attempt;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * Runs the handler in the message's trace context until it resolves, attempts run out, or the
 * delivery is aborted (at once: a handler that ignores its signal does not hold the caller).
 * `watchdog` times the attempts (default: one of the subscription's handlerTimeoutMs for this
 * delivery alone).
 */
export async function deliver(
  message: Delivery,
  options: SubscribeOptions,
  cancel: AbortSignal | Cancellation,
  watchdog: Watchdog = new Watchdog(options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS),
): Promise<DeliveryOutcome> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const delay = options.retryDelayMs ?? defaultRetryDelayMs;
  const trace = traceContextOf(message.headers);
  let lastError: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (cancel.aborted) return ABORTED;
    try {
      const outcome = await runAttempt(new Attempt(message, attempt), options, cancel, watchdog, trace);
      if (outcome === ABORTED || cancel.aborted) return ABORTED;
      return HANDLED;
    } catch (error) {
      lastError = error;
      if (cancel.aborted) return ABORTED;
      options.onError?.(error, {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
      });
      // Retrying cannot help a poison message: dead-letter it now.
      if (error instanceof PoisonMessageError) return { kind: 'failed', error, attempts: attempt };
      if (attempt < maxAttempts) await sleep(delay(attempt), cancel);
    }
  }
  return { kind: 'failed', error: lastError, attempts: maxAttempts };
}

/**
 * One attempt: resolves HANDLED when the handler does, ABORTED as soon as `cancel` aborts, and
 * rejects with the handler's error or BUS_HANDLER_TIMEOUT; the attempt's signal aborts on either
 * of the last two.
 */
function runAttempt(
  attempt: Attempt,
  options: SubscribeOptions,
  cancel: AbortSignal | Cancellation,
  watchdog: Watchdog,
  trace: Context,
): Promise<DeliveryOutcome> {
  return new Promise<DeliveryOutcome>((resolve, reject) => {
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      watchdog.disarm(entry);
      unsubscribe?.();
      return true;
    };
    const entry = watchdog.arm(() => {
      const error = new BusError(
        'BUS_HANDLER_TIMEOUT',
        `handler did not settle within ${watchdog.timeoutMs} ms`,
      );
      attempt.abort(error);
      if (settle()) reject(error);
    });
    let unsubscribe: (() => void) | undefined;
    unsubscribe = onAbort(cancel, () => {
      attempt.abort(cancel.reason);
      if (settle()) resolve(ABORTED);
    });
    if (settled) return;
    let running: Promise<void>;
    try {
      running = context.with(trace, options.handler, options, attempt);
    } catch (error) {
      if (settle()) reject(error);
      return;
    }
    Promise.resolve(running).then(
      () => {
        if (settle()) resolve(HANDLED);
      },
      (error: unknown) => {
        if (settle()) reject(error);
      },
    );
  });
}

/** The original headers plus why and where the message failed, for the dead-letter topic. */
export function deadLetterHeaders(
  message: Delivery,
  group: string,
  error: unknown,
  attempts: number,
): BusHeaders {
  const name = error instanceof Error ? error.name : typeof error;
  const reason = (error instanceof Error ? error.message : String(error)).slice(0, MAX_REASON_LENGTH);
  const code =
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error as { code: unknown }).code != null
      ? String((error as { code: unknown }).code)
      : undefined;
  const headers: BusHeaders = {
    ...message.headers,
    [DLQ_HEADERS.reason]: reason,
    [DLQ_HEADERS.errorName]: name,
    [DLQ_HEADERS.attempts]: String(attempts),
    [DLQ_HEADERS.topic]: message.topic,
    [DLQ_HEADERS.partition]: String(message.partition),
    [DLQ_HEADERS.offset]: message.offset.toString(),
    [DLQ_HEADERS.group]: group,
    [DLQ_HEADERS.failedAt]: new Date().toISOString(),
  };
  if (code !== undefined) headers[DLQ_HEADERS.errorCode] = code.slice(0, 128);
  return headers;
}

export function dlqTopicOf(options: SubscribeOptions): string {
  return options.dlqTopic ?? `${options.topic}.dlq`;
}
