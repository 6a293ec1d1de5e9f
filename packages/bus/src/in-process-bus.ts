import { deadLetterHeaders, deliver, dlqTopicOf, type DeliveryOutcome } from './delivery.ts';
import { partitionForKey } from './partition.ts';
import { withTraceHeaders } from './trace.ts';
import {
  type Bus,
  BusError,
  type BusHeaders,
  type CloseOptions,
  type SubscribeOptions,
  type Subscription,
} from './types.ts';

export interface InProcessBusOptions {
  /** Partitions per topic (default 8): keys spread over them, one handler at a time per partition. */
  partitions?: number;
  /** Messages kept per partition of a topic no group reads (default 10,000). */
  retainPerPartition?: number;
}

interface Entry {
  key: string;
  value: Uint8Array;
  headers: BusHeaders;
}

class PartitionLog {
  /** Offset of entries[0]: everything below was read by every group, or aged out. */
  base = 0n;
  readonly entries: Entry[] = [];
  private waiters: Array<() => void> = [];

  get end(): bigint {
    return this.base + BigInt(this.entries.length);
  }

  append(entry: Entry): bigint {
    this.entries.push(entry);
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
    return this.end - 1n;
  }

  at(offset: bigint): Entry | undefined {
    return this.entries[Number(offset - this.base)];
  }

  trimBelow(offset: bigint): void {
    const drop = Number(offset - this.base);
    if (drop <= 0) return;
    this.entries.splice(0, drop);
    this.base = offset;
  }

  /** Resolves on the next append or when `signal` fires. */
  waitForAppend(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const wake = () => {
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.push(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }
}

interface Group {
  name: string;
  topic: string;
  /** Next offset to read, per partition. */
  committed: bigint[];
  members: Member[];
  /** Per partition: settles when the worker that last held it has let go. */
  handoff: Promise<void>[];
}

interface Worker {
  partition: number;
  /** Set when the partition moves away: finish the message in hand, commit it, stop. */
  release: AbortController;
  done: Promise<void>;
}

class Member implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly options: SubscribeOptions;
  /** Aborts every delivery at once (close without draining). */
  readonly abort = new AbortController();
  readonly workers = new Map<number, Worker>();
  closed = false;
  private readonly bus: InProcessBus;

  constructor(bus: InProcessBus, options: SubscribeOptions) {
    this.bus = bus;
    this.options = options;
    this.topic = options.topic;
    this.group = options.group;
  }

  close(options: CloseOptions = {}): Promise<void> {
    return this.bus.leave(this, options.drain ?? true);
  }
}

/**
 * The embedded bus: Kafka's semantics in one process. Topics are partitioned logs; a key
 * always maps to the same partition (Kafka's murmur2); each group reads each partition
 * through one member at a time, in order; the group's position moves past a message only
 * after its handler resolved or it was dead-lettered. Nothing survives the process.
 */
export class InProcessBus implements Bus {
  private readonly partitions: number;
  private readonly retain: number;
  private readonly topics = new Map<string, PartitionLog[]>();
  private readonly groups = new Map<string, Group>();
  /** Set when close() starts: subscribe() is refused from then on. */
  private closing: Promise<void> | undefined;
  /** Set once every subscription drained: publish() is refused from then on. */
  private publishClosed = false;

  constructor(options: InProcessBusOptions = {}) {
    this.partitions = options.partitions ?? 8;
    this.retain = options.retainPerPartition ?? 10_000;
    if (!Number.isInteger(this.partitions) || this.partitions < 1 || this.partitions > 1024) {
      throw new BusError('BUS_CONFIG', `partitions must be an integer in 1..1024, got ${this.partitions}`);
    }
  }

  private log(topic: string): PartitionLog[] {
    let logs = this.topics.get(topic);
    if (!logs) {
      logs = Array.from({ length: this.partitions }, () => new PartitionLog());
      this.topics.set(topic, logs);
    }
    return logs;
  }

  async publish(topic: string, key: string, value: Uint8Array, headers?: BusHeaders): Promise<void> {
    if (this.publishClosed) throw new BusError('BUS_CLOSED', 'the bus is closed');
    const partition = partitionForKey(key, this.partitions);
    const log = this.log(topic)[partition]!;
    // Copies: a publisher reusing its buffer must not change what consumers read.
    log.append({ key, value: value.slice(), headers: withTraceHeaders(headers) });
    if (!this.groupsOf(topic).length && log.entries.length > this.retain) {
      log.trimBelow(log.end - BigInt(this.retain));
    }
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closing !== undefined) throw new BusError('BUS_CLOSED', 'the bus is closed');
    const id = `${options.group}\u0000${options.topic}`;
    let group = this.groups.get(id);
    if (!group) {
      const logs = this.log(options.topic);
      group = {
        name: options.group,
        topic: options.topic,
        // A new group starts at the oldest message still held, like Kafka's "earliest".
        committed: logs.map((log) => log.base),
        members: [],
        handoff: logs.map(() => Promise.resolve()),
      };
      this.groups.set(id, group);
    }
    const member = new Member(this, options);
    group.members.push(member);
    this.rebalance(group);
    return member;
  }

  /**
   * Refuses subscribe() at once, drains every subscription while publish() stays open (a handler
   * finishing in the drain publishes its output and its message is committed), then refuses
   * publish(). Calls after the first return the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const members = [...this.groups.values()].flatMap((group) => group.members);
    await Promise.all(members.map((member) => member.close()));
    this.publishClosed = true;
  }

  /** @internal */
  async leave(member: Member, drain: boolean): Promise<void> {
    if (member.closed) return;
    member.closed = true;
    if (!drain) member.abort.abort(new BusError('BUS_ABORTED', 'subscription closed without draining'));
    const group = this.groups.get(`${member.group}\u0000${member.topic}`)!;
    group.members = group.members.filter((m) => m !== member);
    const workers = [...member.workers.values()];
    for (const worker of workers) worker.release.abort();
    member.workers.clear();
    this.rebalance(group);
    await Promise.all(workers.map((worker) => worker.done));
  }

  private groupsOf(topic: string): Group[] {
    return [...this.groups.values()].filter((group) => group.topic === topic);
  }

  /** Round-robin partitions over members in join order; a moved partition waits for its old worker to let go. */
  private rebalance(group: Group): void {
    const count = group.members.length;
    for (let partition = 0; partition < this.partitions; partition++) {
      const owner = count > 0 ? group.members[partition % count]! : undefined;
      for (const member of group.members) {
        const worker = member.workers.get(partition);
        if (worker && member !== owner) {
          worker.release.abort();
          member.workers.delete(partition);
        }
      }
      if (owner && !owner.workers.has(partition)) {
        const release = new AbortController();
        const previous = group.handoff[partition]!;
        const done = previous.then(() => this.work(group, owner, partition, release.signal));
        group.handoff[partition] = done;
        owner.workers.set(partition, { partition, release, done });
      }
    }
  }

  private async work(group: Group, member: Member, partition: number, release: AbortSignal): Promise<void> {
    const log = this.log(group.topic)[partition]!;
    const stop = AbortSignal.any([release, member.abort.signal]);
    const aborted = new Promise<DeliveryOutcome>((resolve) => {
      const onAbort = () => resolve({ kind: 'aborted' });
      if (member.abort.signal.aborted) onAbort();
      else member.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
    const { options } = member;
    while (!stop.aborted) {
      let offset = group.committed[partition]!;
      if (offset < log.base) offset = log.base;
      const entry = log.at(offset);
      if (!entry) {
        await log.waitForAppend(stop);
        continue;
      }
      const message = {
        topic: group.topic,
        partition,
        offset,
        key: entry.key,
        value: entry.value,
        headers: entry.headers,
      };
      // A handler that ignores the abort signal must not hold up the partition's next owner.
      const outcome = await Promise.race([deliver(message, options, member.abort.signal), aborted]);
      if (outcome.kind === 'aborted') return;
      if (outcome.kind === 'failed') {
        const headers = deadLetterHeaders(message, group.name, outcome.error, outcome.attempts);
        const dlq = this.log(dlqTopicOf(options))[partitionForKey(entry.key, this.partitions)]!;
        dlq.append({ key: entry.key, value: entry.value, headers });
      }
      group.committed[partition] = offset + 1n;
      options.onCommit?.({ topic: group.topic, group: group.name, partition, offset: offset + 1n });
      this.trim(group.topic, partition);
    }
  }

  /** Drops what every group has read. */
  private trim(topic: string, partition: number): void {
    let min: bigint | undefined;
    for (const group of this.groupsOf(topic)) {
      const committed = group.committed[partition]!;
      if (min === undefined || committed < min) min = committed;
    }
    if (min !== undefined) this.log(topic)[partition]!.trimBelow(min);
  }
}
