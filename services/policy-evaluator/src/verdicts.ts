// The hot path's store side: judge a Measurements record and store its verdict in one statement per
// batch of concurrent handlers. The statement re-reads the host's class and that class's active
// version and stores the verdict only if it was judged against exactly those, so the process keeps
// only hints of which version is active (never trusted) and the immutable sets' contents (cached by
// the store); an activation, deactivation or class assignment by any replica takes effect for the
// next message at once, as when the judgement was read first.
import { randomUUID } from 'node:crypto';
import { evaluate } from '@hostgate/policy';
import { dateFromTimestamp, encodeVerdict, type Measurements__Output, type Verdict } from '@hostgate/protos';
import { Batcher } from '@hostgate/service-runtime';
import { verdictToProto } from './convert.ts';
import { MeasurementsCache, type MeasurementsCacheOptions } from './measurements-cache.ts';
import {
  DEFAULT_HOST_CLASS,
  type PolicyStore,
  type RecordOutcome,
  type StoredVerdict,
  type VerdictToRecord,
} from './store.ts';

export interface VerdictRecorderOptions {
  /** Verdicts in one statement at most (default 64). */
  maxBatch?: number;
  /** Statements running at once (default 1; the next batch gathers meanwhile). */
  maxInFlight?: number;
  /** Hosts outside the default class whose class is remembered as a hint (default 65536). */
  hostHints?: number;
  /** Validated measured contents kept (see MeasurementsCache). */
  measurements?: MeasurementsCacheOptions;
}

/** Judgements in a row found stale (the policy changed under them) before a message is retried. */
const MAX_STALE = 5;

export interface Recorded {
  /** The verdict judged now (the one stored unless the attestation had one). */
  readonly verdict: Verdict;
  /** The verdict stored for the attestation: this one (created) or the first one (redelivery). */
  readonly stored: StoredVerdict & { readonly created: boolean };
}

export class VerdictRecorder {
  readonly #store: PolicyStore;
  readonly #batcher: Batcher<VerdictToRecord, RecordOutcome>;
  /** Hint: the class each host outside "default" was last seen in (bounded, oldest out). */
  readonly #classOf = new Map<string, string>();
  /** Hint: the version last seen active per class (0: none). */
  readonly #versionOf = new Map<string, number>();
  readonly #hostHints: number;
  /** The policy form of each distinct measured content, validated once. */
  readonly measurements: MeasurementsCache;

  constructor(store: PolicyStore, opts: VerdictRecorderOptions = {}) {
    this.#store = store;
    this.#hostHints = opts.hostHints ?? 65_536;
    this.measurements = new MeasurementsCache(opts.measurements);
    this.#batcher = new Batcher((items) => store.recordVerdicts(items), {
      maxBatch: opts.maxBatch ?? 64,
      maxInFlight: opts.maxInFlight ?? 1,
      // One upsert of a host's last measurements per statement.
      keyOf: (v) => v.hostId,
    });
  }

  /** Statements run and verdicts in them (metrics, tests). */
  get batches(): number {
    return this.#batcher.batches;
  }
  get items(): number {
    return this.#batcher.items;
  }

  /**
   * Judges `m` (decoded from the record `bytes`, kept as the host's last measurements when it
   * replayed) and stores the verdict unless the attestation has one. Throws PolicyValidationError
   * for measurements the policy library refuses.
   */
  async record(m: Measurements__Output, bytes: Uint8Array, now: Date): Promise<Recorded> {
    const lib = this.measurements.of(m, bytes);
    const replayed = m.refusals.length === 0 && m.replay?.match === true;
    const measurements = replayed ? { replayedAt: dateFromTimestamp(m.replayedAt) ?? now, bytes } : undefined;
    let hostClass = this.#classOf.get(m.hostId) ?? DEFAULT_HOST_CLASS;
    let version = this.#versionOf.get(hostClass) ?? 0;
    for (let attempt = 1; ; attempt++) {
      const set = version === 0 ? undefined : await this.#store.goldenSet(hostClass, version);
      if (version !== 0 && set === undefined)
        throw new Error(`golden set ${hostClass} v${version} is active but was not found`);
      const verdictId = randomUUID();
      const verdict = verdictToProto(evaluate(set, lib), {
        verdictId,
        hostClass,
        measurements: m,
        evaluatedAt: now,
      });
      const out = await this.#batcher.call({
        attestationId: m.attestationId,
        verdictId,
        hostId: m.hostId,
        pass: verdict.pass === true,
        hostClass,
        policyVersion: version,
        evaluatedAt: now,
        verdict: encodeVerdict(verdict),
        measurements,
      });
      this.#learn(m.hostId, out.current.hostClass, out.current.policyVersion);
      if (out.kind === 'stored') return { verdict, stored: out };
      if (attempt >= MAX_STALE)
        throw new Error(`the policy of host ${m.hostId} changed ${attempt} times while judging it`);
      hostClass = out.current.hostClass;
      version = out.current.policyVersion;
    }
  }

  #learn(hostId: string, hostClass: string, version: number): void {
    if (hostClass === DEFAULT_HOST_CLASS) this.#classOf.delete(hostId);
    else if (this.#classOf.get(hostId) !== hostClass) {
      this.#classOf.delete(hostId);
      this.#classOf.set(hostId, hostClass);
      if (this.#classOf.size > this.#hostHints)
        this.#classOf.delete(this.#classOf.keys().next().value as string);
    }
    if (this.#versionOf.get(hostClass) !== version) {
      this.#versionOf.set(hostClass, version);
      // Classes are few; a flood of them only costs a stale first judgement.
      if (this.#versionOf.size > 4096) this.#versionOf.delete(this.#versionOf.keys().next().value as string);
    }
  }
}
