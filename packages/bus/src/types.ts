/** Message headers: small string values (trace context, error reasons, content type). */
export type BusHeaders = Record<string, string>;

export interface BusMessage {
  topic: string;
  /** Partition the key mapped to; messages of one key share one and keep their order. */
  partition: number;
  /** Position in the partition: unique per (topic, partition). */
  offset: bigint;
  /** The host id the message is about. */
  key: string;
  value: Uint8Array;
  headers: BusHeaders;
  /** 1 on first delivery to this subscription, then 2, 3… while the handler keeps failing. */
  attempt: number;
  /**
   * Aborted when this attempt stopped counting: it ran past `handlerTimeoutMs` (it will be
   * retried), the subscription was closed without draining, or the partition moved to another
   * group member (it will be delivered again, to whoever holds it next). A handler that sees
   * it aborted should stop.
   */
  signal: AbortSignal;
}

export type BusHandler = (message: BusMessage) => Promise<void>;

export interface SubscribeOptions {
  topic: string;
  /** Consumer group: each message is handled by one member of each group. */
  group: string;
  handler: BusHandler;
  /** Deliveries of one message before it goes to the dead-letter topic (default 5). */
  maxAttempts?: number;
  /** Dead-letter topic (default `<topic>.dlq`). */
  dlqTopic?: string;
  /**
   * An attempt that has not settled after this many ms fails with BUS_HANDLER_TIMEOUT and its
   * signal aborts (default 60 s): a hung handler must not hold its partition forever.
   */
  handlerTimeoutMs?: number;
  /** Delay before retry n (1-based) in ms (default 100·2^(n-1), at most 5 s). */
  retryDelayMs?: (attempt: number) => number;
  /** Called after the group's position in a partition moved to `offset` (the next to read). */
  onCommit?: (commit: BusCommit) => void;
  /** Called for failures the bus handles itself (retries, dead-lettering, commit errors). */
  onError?: (error: unknown, context: { topic: string; partition?: number; offset?: bigint }) => void;
}

export interface BusCommit {
  topic: string;
  group: string;
  partition: number;
  /** Next offset the group will read: every message below it is done. */
  offset: bigint;
}

export interface CloseOptions {
  /**
   * true (default): stop taking messages, let running handlers finish and commit them.
   * false: abandon at once; running handlers are aborted and nothing more is committed,
   * so their messages are delivered again to the next member (as after a crash).
   */
  drain?: boolean;
}

export interface Subscription {
  readonly topic: string;
  readonly group: string;
  close(options?: CloseOptions): Promise<void>;
}

/**
 * The message bus every service talks through. At-least-once: a message is committed only
 * after its handler resolved (or after it went to the dead-letter topic), so a crash
 * redelivers it; consumers make handling idempotent (by attestation id).
 */
export interface Bus {
  /**
   * Resolves once the message is stored. Publishes issued without awaiting in between keep their
   * call order per topic and key (both implementations queue them in call order), so a caller may
   * hand several messages over at once and await them together. Accepted while close() drains
   * the subscriptions; refused with BusError BUS_CLOSED once they have drained.
   */
  publish(topic: string, key: string, value: Uint8Array, headers?: BusHeaders): Promise<void>;
  /** Refused with BusError BUS_CLOSED from the moment close() is called. */
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /**
   * Closes every subscription (draining) and the connections. subscribe() is refused from the
   * start; publish() stays open while the subscriptions drain, so a handler that finishes during
   * the drain publishes its output and its message is committed (neither retried nor redelivered).
   * Once every subscription drained, publish() is refused, what was published is sent, and the
   * connections close. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Headers the bus adds to a dead-lettered message (its own headers are kept). */
export const DLQ_HEADERS = {
  reason: 'hostgate-dlq-reason',
  errorName: 'hostgate-dlq-error',
  errorCode: 'hostgate-dlq-code',
  attempts: 'hostgate-dlq-attempts',
  topic: 'hostgate-dlq-topic',
  partition: 'hostgate-dlq-partition',
  offset: 'hostgate-dlq-offset',
  group: 'hostgate-dlq-group',
  failedAt: 'hostgate-dlq-failed-at',
  /** Set (to the original size) when the value was too large for the DLQ and was dropped. */
  valueDropped: 'hostgate-dlq-value-dropped',
} as const;

export class BusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
  }
}

/**
 * Thrown by a handler for a message no retry can fix (undecodable, missing ids, keyed wrongly):
 * the bus stops retrying and dead-letters it at once, with `code` in the dead-letter headers.
 */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
