// Answers Attest with what health-cert-issuer decided: the collector subscribes to
// hostgate.certificates.v1 (one consumer group for every replica), records each ISSUED / REFUSED
// outcome by attestation id in its store, and wakes the call waiting for it. A call held by another
// replica finds the outcome in the store (polled), so any replica may consume any partition.
import type { Bus, Subscription } from '@hostgate/bus';
import { type CertificateEvent__Output, decodeCertificateEvent, KAFKA_TOPICS } from '@hostgate/protos';
import { Batcher, type Logger } from '@hostgate/service-runtime';
import type { QuoteCollectorStore } from './store.ts';

export const CERTIFICATES_GROUP = 'quote-collector';

/** Waiting calls looked up per poll at most (the rest wait for the next one). */
const MAX_POLLED_IDS = 1000;

/** Outcomes recorded per statement at most (the rest go in the next one). */
const MAX_RECORDED_PER_STATEMENT = 256;

interface OutcomeToRecord {
  attestationId: string;
  outcome: 'ISSUED' | 'REFUSED';
  certificateEvent: Uint8Array;
}

export type WaitOutcome = { kind: 'event'; event: CertificateEvent__Output } | { kind: 'timeout' };

export class CertificateWaiter {
  private readonly store: QuoteCollectorStore;
  private readonly now: () => number;
  private readonly pollMs: number;
  private readonly waiting = new Map<string, { settle: (outcome: WaitOutcome) => void; sinceMs: number }>();
  private subscription: Subscription | undefined;
  /** One poll of the store for every call waiting, not one per call: under a backlog they add up. */
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  /**
   * Outcomes handed in together (the bus runs several handlers at once) are recorded in one
   * statement; one per attestation per statement, so a redelivered one waits for the next, where
   * the first has won. A failed batch is rerun one outcome at a time, so a failure stays its own
   * handler's (and the bus retries just that one).
   */
  readonly recorder: Batcher<OutcomeToRecord, boolean>;

  constructor(opts: { store: QuoteCollectorStore; now?: () => number; pollMs?: number }) {
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    // Only for calls whose answer another replica consumed; the local wake-up is immediate.
    this.pollMs = opts.pollMs ?? 1000;
    this.recorder = new Batcher(
      async (batch) => {
        const recorded = await this.store.completeAttestations(batch, this.now());
        return batch.map((o) => recorded.has(o.attestationId));
      },
      { maxBatch: MAX_RECORDED_PER_STATEMENT, keyOf: (o) => o.attestationId },
    );
  }

  async subscribe(bus: Bus, logger: Logger): Promise<void> {
    this.subscription = await bus.subscribe({
      topic: KAFKA_TOPICS.certificates,
      group: CERTIFICATES_GROUP,
      handler: async (message) => {
        // A record that does not decode throws: the bus retries it, then dead-letters it.
        const event = decodeCertificateEvent(message.value);
        if (event.attestationId === '') return;
        if (event.type !== 'CERTIFICATE_EVENT_TYPE_ISSUED' && event.type !== 'CERTIFICATE_EVENT_TYPE_REFUSED')
          return;
        const outcome = event.type === 'CERTIFICATE_EVENT_TYPE_ISSUED' ? 'ISSUED' : 'REFUSED';
        const recorded = await this.record(event.attestationId, outcome, message.value);
        if (!recorded)
          logger.debug(
            { attestationId: event.attestationId },
            'certificate event for an attestation already answered or not ours',
          );
        this.waiting.get(event.attestationId)?.settle({ kind: 'event', event });
      },
      onError: (error, context) =>
        logger.warn({ err: error, ...context }, 'certificate event handling failed'),
    });
  }

  /** Records an outcome (the first one per attestation wins) and says whether it was recorded now. */
  private record(
    attestationId: string,
    outcome: 'ISSUED' | 'REFUSED',
    certificateEvent: Uint8Array,
  ): Promise<boolean> {
    return this.recorder.call({ attestationId, outcome, certificateEvent });
  }

  /** Waits for the outcome of `attestationId` (registered before the evidence is published). */
  wait(attestationId: string, timeoutMs: number): { promise: Promise<WaitOutcome>; cancel: () => void } {
    let settle: (outcome: WaitOutcome) => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      clearTimeout(timer);
      this.waiting.delete(attestationId);
      if (this.waiting.size === 0) this.stopPolling();
    };
    const promise = new Promise<WaitOutcome>((resolve) => {
      settle = (outcome) => {
        cleanup();
        resolve(outcome);
      };
    });
    this.waiting.set(attestationId, { settle: (outcome) => settle(outcome), sinceMs: performance.now() });
    timer = setTimeout(() => settle({ kind: 'timeout' }), timeoutMs);
    this.poller ??= setInterval(() => this.poll(), this.pollMs);
    return { promise, cancel: () => settle({ kind: 'timeout' }) };
  }

  /** Looks up, in one query, the calls that have waited at least pollMs (their answer may be on another replica). */
  private poll(): void {
    if (this.polling) return;
    const due: string[] = [];
    const cutoff = performance.now() - this.pollMs;
    for (const [id, w] of this.waiting) {
      if (w.sinceMs <= cutoff) due.push(id);
      if (due.length >= MAX_POLLED_IDS) break;
    }
    if (due.length === 0) return;
    this.polling = true;
    void this.store
      .answeredAttestations(due)
      .then((answered) => {
        for (const [id, event] of answered)
          this.waiting.get(id)?.settle({ kind: 'event', event: decodeCertificateEvent(event) });
      })
      // A failed lookup (or an undecodable stored event) is tried again at the next poll.
      .catch(() => {})
      .finally(() => {
        this.polling = false;
      });
  }

  private stopPolling(): void {
    clearInterval(this.poller);
    this.poller = undefined;
  }

  async close(): Promise<void> {
    // Calls still waiting answer TIMEOUT now rather than outlive the service.
    for (const w of [...this.waiting.values()]) w.settle({ kind: 'timeout' });
    this.stopPolling();
    await this.subscription?.close();
    this.subscription = undefined;
  }
}
