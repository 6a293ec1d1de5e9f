import { runInTraceContext } from './trace.ts';
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

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export type DeliveryOutcome =
  | { kind: 'handled' }
  | { kind: 'failed'; error: unknown; attempts: number }
  | { kind: 'aborted' };

type Delivery = Omit<BusMessage, 'attempt' | 'signal'>;

/** Runs the handler in the message's trace context until it resolves, attempts run out, or the delivery is aborted. */
export async function deliver(
  message: Delivery,
  options: SubscribeOptions,
  signal: AbortSignal,
): Promise<DeliveryOutcome> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const delay = options.retryDelayMs ?? defaultRetryDelayMs;
  const timeoutMs = options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
  let lastError: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (signal.aborted) return { kind: 'aborted' };
    const timedOut = new AbortController();
    const attemptSignal = AbortSignal.any([signal, timedOut.signal]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new BusError('BUS_HANDLER_TIMEOUT', `handler did not settle within ${timeoutMs} ms`);
        timedOut.abort(error);
        reject(error);
      }, timeoutMs);
      // The watchdog alone must not keep a process alive.
      timer.unref();
    });
    try {
      await Promise.race([
        runInTraceContext(message.headers, () =>
          options.handler({ ...message, headers: { ...message.headers }, attempt, signal: attemptSignal }),
        ),
        timeout,
      ]);
      return signal.aborted ? { kind: 'aborted' } : { kind: 'handled' };
    } catch (error) {
      lastError = error;
      if (signal.aborted) return { kind: 'aborted' };
      options.onError?.(error, {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
      });
      // Retrying cannot help a poison message: dead-letter it now.
      if (error instanceof PoisonMessageError) return { kind: 'failed', error, attempts: attempt };
      if (attempt < maxAttempts) await sleep(delay(attempt), signal);
    } finally {
      clearTimeout(timer);
    }
  }
  return { kind: 'failed', error: lastError, attempts: maxAttempts };
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
