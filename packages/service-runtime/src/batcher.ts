// Merges concurrent calls into one batch call: many handlers' statements become one statement (one
// round trip, one commit). Measured on the 2-core machine, a statement's fixed cost — the client's
// socket write and result parsing (≈150 µs) and the server's execute and commit — was most of what
// the store cost per attestation, and the bus runs 16 handlers per partition at once.

export interface BatcherOptions<I> {
  /** Items in one batch at most (default 64). */
  maxBatch?: number;
  /**
   * Batches running at once (default 1). While they all run, new calls wait and go together in
   * the next batch (Nagle-style: nothing waits at low load, batches grow with the load).
   */
  maxInFlight?: number;
  /**
   * Items with the same key never share a batch (a later one waits for the next batch, in call
   * order): a statement that upserts one row per key cannot touch a row twice.
   */
  keyOf?: (item: I) => string;
}

/** A batch function answered with a different number of results than items. */
export class BatcherError extends Error {
  readonly code = 'BATCH_RESULT_COUNT';
  constructor(message: string) {
    super(message);
    this.name = 'BatcherError';
  }
}

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/**
 * `call(item)` resolves with `run`'s result at the item's index. A batch starts on the next turn
 * of the event loop after a call (so calls made by handlers started together go together), or as
 * soon as a running batch settles. When a batch of several items fails, each item is run again
 * alone, so one bad item fails only its own call.
 */
export class Batcher<I, O> {
  readonly #run: (items: readonly I[]) => Promise<readonly O[]>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  readonly #keyOf: ((item: I) => string) | undefined;
  #queue: Waiting<I, O>[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** Batches run and items in them, for metrics and tests. */
  batches = 0;
  items = 0;

  constructor(run: (items: readonly I[]) => Promise<readonly O[]>, options: BatcherOptions<I> = {}) {
    const maxBatch = options.maxBatch ?? 64;
    const maxInFlight = options.maxInFlight ?? 1;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1)
      throw new RangeError('maxBatch must be an integer ≥ 1');
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1)
      throw new RangeError('maxInFlight must be an integer ≥ 1');
    this.#run = run;
    this.#maxBatch = maxBatch;
    this.#maxInFlight = maxInFlight;
    this.#keyOf = options.keyOf;
  }

  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  #start(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#take();
      this.#inFlight++;
      this.batches++;
      this.items += batch.length;
      void this.#settle(batch).finally(() => {
        this.#inFlight--;
        this.#schedule();
      });
    }
  }

  /** The next batch in call order: at most maxBatch items, one per key. */
  #take(): Waiting<I, O>[] {
    if (this.#keyOf === undefined) return this.#queue.splice(0, this.#maxBatch);
    const keys = new Set<string>();
    const batch: Waiting<I, O>[] = [];
    const rest: Waiting<I, O>[] = [];
    for (const w of this.#queue) {
      const key = this.#keyOf(w.item);
      if (batch.length < this.#maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(w);
      } else rest.push(w);
    }
    this.#queue = rest;
    return batch;
  }

  async #settle(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await this.#runChecked(batch.map((w) => w.item));
      for (const [i, w] of batch.entries()) w.resolve(results[i] as O);
      return;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
    }
    // One item may have spoiled the batch: each gets its own outcome.
    await Promise.all(
      batch.map((w) =>
        this.#runChecked([w.item]).then(
          (results) => w.resolve(results[0] as O),
          (error: unknown) => w.reject(error),
        ),
      ),
    );
  }

  async #runChecked(items: I[]): Promise<readonly O[]> {
    const results = await this.#run(items);
    if (results.length !== items.length)
      throw new BatcherError(`batch of ${items.length} items answered with ${results.length} results`);
    return results;
  }
}
