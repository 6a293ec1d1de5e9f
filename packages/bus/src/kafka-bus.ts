import {
  Admin,
  Consumer,
  ConfigResourceTypes,
  compatibilityPartitioner,
  IncrementalAlterConfigOperationTypes,
  type Message,
  type MessagesStream,
  Producer,
  ProduceAcks,
  stringDeserializer,
  stringSerializer,
} from '@platformatic/kafka';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Cancellation,
  DEFAULT_HANDLER_TIMEOUT_MS,
  deadLetterHeaders,
  deliver,
  dlqTopicOf,
  sleep,
  Watchdog,
} from './delivery.ts';
import { withTraceHeaders } from './trace.ts';
import {
  type Bus,
  BusError,
  type BusHeaders,
  type CloseOptions,
  type SubscribeOptions,
  type Subscription,
} from './types.ts';

export interface KafkaBusOptions {
  /** `host:port` bootstrap brokers. */
  brokers: string[];
  clientId?: string;
  /**
   * Create missing topics (and their `.dlq`) on first use with these settings (default
   * 6 partitions, replication 1); false where topics are provisioned by deployment.
   */
  createTopics?: { partitions: number; replicationFactor: number } | false;
  /** Group session timeout: how long a crashed member holds its partitions (default 10 s; brokers allow ≥ 6 s). */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Messages fetched but not yet handled, per subscription, before fetching pauses (default 1000). */
  maxBuffered?: number;
  /**
   * Handlers running at once per partition (default 1: strictly one message at a time). Above 1,
   * each runs on a different key: a key's messages are handled one after another in offset order,
   * handlers start in offset order, and the group's position only moves past a message once it
   * and everything before it are done. Services use SERVICE_HANDLER_CONCURRENCY.
   */
  handlerConcurrency?: number;
  /**
   * How long the group's position may lag behind the handled messages, in ms (default 0: each
   * partition's position is committed as soon as it moves). Above 0, a partition's position is
   * committed at most once per interval, and at a draining close; a crash or a partition moving
   * away redelivers at most that much more handled work (at-least-once either way: consumers
   * are idempotent). Each commit is a request and a log append on the broker: at one message per
   * commit they were ~30 % of the broker's CPU per message. Services use SERVICE_COMMIT_INTERVAL_MS.
   */
  commitIntervalMs?: number;
  /**
   * Largest value publish() accepts, in bytes (default 16 MiB, the protos' payload cap). Topics the
   * bus creates get `max.message.bytes` = this + RECORD_OVERHEAD_BYTES, and consumers fetch at
   * least that much per partition. Brokers must allow it for topics provisioned elsewhere
   * (`message.max.bytes`); see docs/bus.md, "Message size".
   */
  maxMessageBytes?: number;
}

/** Default largest value: @hostgate/protos' DEFAULT_MAX_PAYLOAD_BYTES (an evidence message with an 8 MiB event log fits). */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Room above the value for what else a one-record batch carries: the batch header (61 bytes),
 * the record's framing, the key and the headers (trace context, dead-letter reasons ≤ 1 KiB).
 */
export const RECORD_OVERHEAD_BYTES = 64 * 1024;

/**
 * On a dead-lettered message whose value was too large for the dead-letter topic: the dropped
 * value's size in bytes (the value itself is empty; the original stays in its topic at its offset).
 */
export const DLQ_VALUE_DROPPED_HEADER = 'hostgate-dlq-value-dropped';

const DEFAULT_HANDLER_CONCURRENCY = 1;

/**
 * Handlers per partition at once (distinct keys) for the services. A handler mostly waits on
 * round trips to the store and the broker; one at a time per partition capped a service at
 * partitions / round trip (6 / 50 ms ≈ 120 messages/s on a loaded 2-core machine), whatever CPU
 * was left.
 */
export const SERVICE_HANDLER_CONCURRENCY = 16;

/** The services' commitIntervalMs: a few commits a second per partition instead of one per message. */
export const SERVICE_COMMIT_INTERVAL_MS = 200;

/** Consumers fetch at most this much per request in all (several partitions' worth). */
const FETCH_MAX_BYTES = 64 * 1024 * 1024;

/** Upper bound of a one-record batch (format v2) holding this record: varints counted at their 5-byte maximum. */
function recordBatchBytes(key: string, valueBytes: number, headers: BusHeaders): number {
  const BATCH_HEADER = 61;
  const RECORD_FIXED = 5 + 1 + 10 + 5 + 5 + 5 + 5; // length, attributes, timestamp/offset deltas, key/value lengths, header count
  let bytes = BATCH_HEADER + RECORD_FIXED + Buffer.byteLength(key, 'utf8') + valueBytes;
  for (const name in headers) {
    bytes += 10 + Buffer.byteLength(name, 'utf8') + Buffer.byteLength(headers[name]!, 'utf8');
  }
  return bytes;
}

type KafkaMessage = Message<string, Buffer, string, string>;

interface OutgoingRecord {
  topic: string;
  key: string;
  value: Buffer;
  headers: BusHeaders;
}

interface QueuedRecord {
  record: OutgoingRecord;
  recordBytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One produce request carries at most this many records, and this many bytes unless a single record is bigger. */
const MAX_BATCH_RECORDS = 500;
const MAX_BATCH_BYTES = 1024 * 1024;

const DRAIN_TIMEOUT_MS = 30_000;

/**
 * The value as a Uint8Array of its own: the client's is a view into the whole fetch response,
 * which it would keep alive. Buffer.copyBytesFrom takes small values from Node's buffer pool
 * (about a third of the CPU of `new Uint8Array(value)`, which allocates an ArrayBuffer each).
 */
function copyOf(value: Buffer | null | undefined): Uint8Array {
  if (value === null || value === undefined || value.byteLength === 0) return new Uint8Array(0);
  const copy = Buffer.copyBytesFrom(value);
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}

function headersOf(message: KafkaMessage): BusHeaders {
  const out: BusHeaders = {};
  for (const [key, value] of message.headers) {
    if (typeof key === 'string' && typeof value === 'string') out[key] = value;
  }
  return out;
}

/** A Kafka protocol error code anywhere in the client's nested aggregate errors. */
function hasApiCode(error: unknown, code: number, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const { apiCode, errors } = error as { apiCode?: unknown; errors?: unknown };
  if (apiCode === code) return true;
  return Array.isArray(errors) && errors.some((inner) => hasApiCode(inner, code, depth + 1));
}

/** TOPIC_ALREADY_EXISTS: someone else created it first. */
const TOPIC_ALREADY_EXISTS = 36;
/** MESSAGE_TOO_LARGE: the topic (or broker) allows less than this record (a topic made elsewhere). */
const MESSAGE_TOO_LARGE = 10;

/** Apache Kafka through @platformatic/kafka; see docs/bus.md for the guarantees. */
export class KafkaBus implements Bus {
  private readonly options: KafkaBusOptions;
  private readonly clientId: string;
  /** Largest value publish() accepts. */
  readonly maxMessageBytes: number;
  /** Largest record batch: the topics' `max.message.bytes` and the consumers' per-partition fetch. */
  readonly maxRecordBytes: number;
  private readonly producer: Producer<string, Buffer, string, string>;
  private readonly admin: Admin;
  private readonly knownTopics = new Map<string, Promise<void>>();
  /** Topics ensureTopics() settled for: publishing to them needs no await. */
  private readonly readyTopics = new Set<string>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private readonly handlerConcurrency: number;
  private readonly commitIntervalMs: number;
  /** Published, waiting for the produce request in flight to finish. */
  private readonly queued: QueuedRecord[] = [];
  private sending = false;
  /** A flush is due at the end of this turn of the event loop. */
  private flushScheduled = false;
  /** Set when close() starts: subscribe() is refused from then on. */
  private closing: Promise<void> | undefined;
  /**
   * Set once every subscription drained: publish() is refused from then on. Until then a handler
   * finishing during the drain publishes its output like any other (see Bus.close()).
   */
  private publishClosed = false;
  /** Set once what was published has been sent and the producer is closing: nothing more is sent. */
  private producerClosed = false;
  /** send() calls waiting for their topic, not yet queued. */
  private sendsInFlight = 0;

  constructor(options: KafkaBusOptions) {
    if (options.brokers.length === 0) throw new BusError('BUS_CONFIG', 'KafkaBus needs at least one broker');
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    // Kafka's int32 sizes bound it; a fetch must still hold one whole record.
    if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1 || maxMessageBytes > FETCH_MAX_BYTES)
      throw new BusError('BUS_CONFIG', `maxMessageBytes must be an integer in 1..${FETCH_MAX_BYTES}`);
    const handlerConcurrency = options.handlerConcurrency ?? DEFAULT_HANDLER_CONCURRENCY;
    if (!Number.isSafeInteger(handlerConcurrency) || handlerConcurrency < 1 || handlerConcurrency > 1024)
      throw new BusError('BUS_CONFIG', 'handlerConcurrency must be an integer in 1..1024');
    this.handlerConcurrency = handlerConcurrency;
    const commitIntervalMs = options.commitIntervalMs ?? 0;
    if (!Number.isSafeInteger(commitIntervalMs) || commitIntervalMs < 0 || commitIntervalMs > 60_000)
      throw new BusError('BUS_CONFIG', 'commitIntervalMs must be an integer in 0..60000');
    this.commitIntervalMs = commitIntervalMs;
    this.options = options;
    this.clientId = options.clientId ?? 'hostgate';
    this.maxMessageBytes = maxMessageBytes;
    this.maxRecordBytes = maxMessageBytes + RECORD_OVERHEAD_BYTES;
    this.producer = new Producer({
      clientId: `${this.clientId}-producer`,
      bootstrapBrokers: options.brokers,
      // Idempotent with acks=all: a retried send cannot duplicate or reorder a key's messages.
      idempotent: true,
      acks: ProduceAcks.ALL,
      // Java-compatible murmur2, the same mapping as InProcessBus and Kafka's own clients.
      partitioner: compatibilityPartitioner,
      serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
      autocreateTopics: false,
    });
    this.admin = new Admin({ clientId: `${this.clientId}-admin`, bootstrapBrokers: options.brokers });
  }

  /** Creates `topics` when missing (once per bus), if the bus is allowed to. */
  ensureTopics(topics: string[]): Promise<void> {
    const create = this.options.createTopics ?? { partitions: 6, replicationFactor: 1 };
    if (create === false) return Promise.resolve();
    return Promise.all(
      topics.map((topic) => {
        let known = this.knownTopics.get(topic);
        if (!known) {
          known = this.createTopic(topic, create.partitions, create.replicationFactor);
          known.catch(() => this.knownTopics.delete(topic));
          this.knownTopics.set(topic, known);
        }
        return known;
      }),
    ).then(() => undefined);
  }

  private async createTopic(topic: string, partitions: number, replicas: number): Promise<void> {
    const existing = await this.admin.listTopics();
    if (existing.includes(topic)) {
      await this.raiseMessageLimit(topic);
      return;
    }
    try {
      await this.admin.createTopics({
        topics: [topic],
        partitions,
        replicas,
        configs: [{ name: 'max.message.bytes', value: String(this.maxRecordBytes) }],
      });
    } catch (error) {
      if (!hasApiCode(error, TOPIC_ALREADY_EXISTS))
        throw new BusError('BUS_TOPIC', `cannot create topic ${topic}`, { cause: error });
    }
  }

  /**
   * A topic made before (by an older version, or on a broker with Kafka's ~1 MiB default) may
   * allow less than this bus: raise its `max.message.bytes`, never lower it. Best effort: without
   * the right to alter configs, publishing an oversized record fails with BUS_MESSAGE_TOO_LARGE.
   */
  private async raiseMessageLimit(topic: string): Promise<void> {
    try {
      const [described] = await this.admin.describeConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: topic,
            configurationKeys: ['max.message.bytes'],
          },
        ],
      });
      const current = Number(described?.configs.find((c) => c.name === 'max.message.bytes')?.value);
      if (!Number.isFinite(current) || current >= this.maxRecordBytes) return;
      await this.admin.incrementalAlterConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: topic,
            configs: [
              {
                name: 'max.message.bytes',
                configOperation: IncrementalAlterConfigOperationTypes.SET,
                value: String(this.maxRecordBytes),
              },
            ],
          },
        ],
      });
    } catch {
      // Left as it is; see above.
    }
  }

  publish(topic: string, key: string, value: Uint8Array, headers?: BusHeaders): Promise<void> {
    if (this.publishClosed) return Promise.reject(new BusError('BUS_CLOSED', 'the bus is closed'));
    return this.send(topic, key, value, headers);
  }

  /**
   * @internal A subscription's dead-letter write: still accepted while close() drains the
   * subscriptions (the producer closes only after them), else a last attempt failing during the
   * drain would be retried until the drain bound and stall the close.
   */
  publishDeadLetter(topic: string, key: string, value: Uint8Array, headers: BusHeaders): Promise<void> {
    return this.send(topic, key, value, headers);
  }

  /**
   * Checks and queues a record. A topic already made (or not this bus's to make) is queued in
   * this call, with no await: what close() waits for is then already in the queue.
   */
  private send(topic: string, key: string, value: Uint8Array, headers?: BusHeaders): Promise<void> {
    if (this.producerClosed) return Promise.reject(new BusError('BUS_CLOSED', 'the bus is closed'));
    // Refused here rather than by the broker: no round trip, and a clear code for the caller.
    if (value.byteLength > this.maxMessageBytes)
      return Promise.reject(
        new BusError(
          'BUS_MESSAGE_TOO_LARGE',
          `${topic}: value of ${value.byteLength} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`,
        ),
      );
    const allHeaders = withTraceHeaders(headers);
    const recordBytes = recordBatchBytes(key, value.byteLength, allHeaders);
    if (recordBytes > this.maxRecordBytes)
      return Promise.reject(
        new BusError(
          'BUS_MESSAGE_TOO_LARGE',
          `${topic}: record of up to ${recordBytes} bytes (key and headers included) exceeds ${this.maxRecordBytes}`,
        ),
      );
    // Copies: a publisher reusing its buffer must not change what is sent (copyBytesFrom: about
    // half the CPU of Buffer.from for a few KiB).
    const record: OutgoingRecord = { topic, key, value: Buffer.copyBytesFrom(value), headers: allHeaders };
    // Not while an earlier send waits for its topic: it would be overtaken (call order is kept).
    if (this.sendsInFlight === 0 && this.readyTopics.has(topic)) return this.enqueue(record, recordBytes);
    return this.sendOnceCreated(record, recordBytes);
  }

  private async sendOnceCreated(record: OutgoingRecord, recordBytes: number): Promise<void> {
    // Counted until queued: close() waits for these, not only for what is already queued.
    this.sendsInFlight++;
    let sent: Promise<void>;
    try {
      await this.ensureTopics([record.topic]);
      this.readyTopics.add(record.topic);
      if (this.producerClosed) throw new BusError('BUS_CLOSED', 'the bus is closed');
      sent = this.enqueue(record, recordBytes);
    } finally {
      this.sendsInFlight--;
    }
    return sent;
  }

  private enqueue(record: OutgoingRecord, recordBytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ record, recordBytes, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * With no request in flight, the queue is sent once the current turn of the event loop is done
   * (setImmediate: no timer, nothing lingers), so that publishes made together — a handler's
   * outputs handed over at once, or several handlers resumed by one database reply — go out in
   * one produce request rather than the first alone and the others in the next.
   */
  private scheduleFlush(): void {
    if (this.sending || this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /**
   * The idempotent producer keeps one produce request in flight: publishes made meanwhile are
   * sent together in the next one (Nagle-style: no wait at low load, one request and one
   * broker round trip for many records under load), in the order they were made.
   */
  private flush(): void {
    if (this.sending || this.queued.length === 0) return;
    const batch: QueuedRecord[] = [];
    let bytes = 0;
    while (this.queued.length > 0 && batch.length < MAX_BATCH_RECORDS) {
      const next = this.queued[0]!;
      if (batch.length > 0 && bytes + next.recordBytes > MAX_BATCH_BYTES) break;
      batch.push(next);
      bytes += next.recordBytes;
      this.queued.shift();
    }
    this.sending = true;
    // sendBatch settles every record itself and never rejects.
    void this.sendBatch(batch).then(() => {
      this.sending = false;
      this.flush();
    });
  }

  private async sendBatch(batch: QueuedRecord[]): Promise<void> {
    try {
      await this.producer.send({ messages: batch.map((q) => q.record) });
      for (const q of batch) q.resolve();
      return;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(this.sendError(batch[0]!, error));
        return;
      }
    }
    // One record may have spoiled the batch (a topic that allows less): each gets its own
    // outcome. Records that did land are sent again — at-least-once, consumers are idempotent.
    for (const q of batch) {
      try {
        await this.producer.send({ messages: [q.record] });
        q.resolve();
      } catch (error) {
        q.reject(this.sendError(q, error));
      }
    }
  }

  private sendError(q: QueuedRecord, error: unknown): unknown {
    // A topic provisioned elsewhere, or a broker, that allows less than this bus.
    if (hasApiCode(error, MESSAGE_TOO_LARGE))
      return new BusError(
        'BUS_MESSAGE_TOO_LARGE',
        `${q.record.topic}: the broker refused a record of up to ${q.recordBytes} bytes (the topic's max.message.bytes or the broker's message.max.bytes is lower)`,
        { cause: error },
      );
    return error;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closing !== undefined) throw new BusError('BUS_CLOSED', 'the bus is closed');
    await this.ensureTopics([options.topic, dlqTopicOf(options)]);
    // close() began meanwhile: it would not wait for this subscription.
    if (this.closing !== undefined) throw new BusError('BUS_CLOSED', 'the bus is closed');
    const subscription = new KafkaSubscription(this, options, {
      clientId: this.clientId,
      brokers: this.options.brokers,
      sessionTimeoutMs: this.options.sessionTimeoutMs ?? 10_000,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 1000,
      maxBuffered: this.options.maxBuffered ?? 1000,
      handlerConcurrency: this.handlerConcurrency,
      commitIntervalMs: this.commitIntervalMs,
      maxRecordBytes: this.maxRecordBytes,
    });
    this.subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      this.subscriptions.delete(subscription);
      await subscription.close({ drain: false }).catch(() => undefined);
      throw error;
    }
    return subscription;
  }

  /** @internal */
  forget(subscription: KafkaSubscription): void {
    this.subscriptions.delete(subscription);
  }

  /**
   * Refuses subscribe() at once, drains every subscription while publish() stays open (a handler
   * finishing in the drain publishes its output, so its message is committed rather than retried
   * until the drain bound and redelivered), then refuses publish(), sends what was published and
   * closes the connections. Calls after the first return the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.publishClosed = true;
    // Publishes made before and during the drain, and dead letters written while the
    // subscriptions drained, still go out (the producer retries while the broker is away).
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (
      (this.sendsInFlight > 0 || this.sending || this.flushScheduled || this.queued.length > 0) &&
      Date.now() < deadline
    )
      await delay(5);
    this.producerClosed = true;
    await this.producer.close();
    await this.admin.close();
  }
}

/** A fetched message of one partition, from acceptance until the group's position passes it. */
interface Pending {
  readonly message: KafkaMessage;
  done: boolean;
  /** The handling, once started (what state.running holds). */
  run?: Promise<void>;
}

interface PartitionState {
  /** Bumped when the partition is taken away: queued work of an older epoch is dropped uncommitted. */
  epoch: number;
  /** Next offset to accept; lower ones are re-fetches of messages already queued or done here. */
  next: bigint | undefined;
  /** Accepted, not yet started, in offset order. */
  waiting: Pending[];
  /** Accepted in this epoch and not yet committed past, in offset order (started or not). */
  pending: Pending[];
  /** Keys with a handler running: a key's next message waits for it. */
  busyKeys: Set<string>;
  /** Handlers running (any epoch). */
  running: Set<Promise<void>>;
  /** Aborted when the partition moves away (this epoch) or the subscription closes without draining. */
  cancel: Cancellation;
  /** The last message the position may pass, not yet committed (held until the subscription's commit pass). */
  uncommitted: KafkaMessage | undefined;
}

interface SubscriptionSettings {
  clientId: string;
  brokers: string[];
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxBuffered: number;
  handlerConcurrency: number;
  commitIntervalMs: number;
  maxRecordBytes: number;
}

class KafkaSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  private readonly bus: KafkaBus;
  private readonly options: SubscribeOptions;
  private readonly settings: SubscriptionSettings;
  private readonly consumer: Consumer<string, Buffer, string, string>;
  private stream: MessagesStream<string, Buffer, string, string> | undefined;
  private readonly partitions = new Map<number, PartitionState>();
  /** Aborts everything in hand (close without draining). */
  private readonly abortAll = new AbortController();
  /** Set by a draining close: finish what is in hand, start nothing new. */
  private stopping = false;
  private closing: Promise<void> | undefined;
  private buffered = 0;
  private pausedForBuffer = false;
  /** With a commit interval: the next commit pass, for every partition whose position moved since the last. */
  private commitTimer: NodeJS.Timeout | undefined;
  /** Times every handler attempt of the subscription (one timer for all). */
  private readonly watchdog: Watchdog;
  private assignedFrom: unknown = null;
  private assignedSet = new Set<number>();

  constructor(bus: KafkaBus, options: SubscribeOptions, settings: SubscriptionSettings) {
    this.bus = bus;
    this.options = options;
    this.settings = settings;
    this.topic = options.topic;
    this.group = options.group;
    this.watchdog = new Watchdog(options.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS);
    this.consumer = new Consumer({
      clientId: `${settings.clientId}-${options.group}`,
      groupId: options.group,
      bootstrapBrokers: settings.brokers,
      sessionTimeout: settings.sessionTimeoutMs,
      rebalanceTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      autocommit: false,
      deserializers: {
        key: stringDeserializer,
        headerKey: stringDeserializer,
        headerValue: stringDeserializer,
      },
    });
    this.consumer.on('consumer:group:join', () => this.onAssignment());
  }

  async start(): Promise<void> {
    const stream = await this.consumer.consume({
      topics: [this.topic],
      // Resume at the group's committed position; a new group starts at the oldest message.
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
      maxWaitTime: 500,
      // A partition's fetch holds at least one whole record of the largest size; brokers return
      // a first record bigger than these anyway, but nothing else depends on that.
      maxBytesPerPartition: this.settings.maxRecordBytes,
      maxBytes: Math.max(FETCH_MAX_BYTES, this.settings.maxRecordBytes),
      sessionTimeout: this.settings.sessionTimeoutMs,
      rebalanceTimeout: this.settings.sessionTimeoutMs,
      heartbeatInterval: this.settings.heartbeatIntervalMs,
    });
    this.stream = stream;
    this.onAssignment();
    stream.on('data', (message) => this.accept(message));
    stream.on('error', (error) => this.onStreamError(stream, error));
    // Every commit flush the client made for this stream, whoever asked for it: what landed is
    // reported per partition, a failure once (its offsets stay queued in the client for the next flush).
    stream.on('autocommit', (error, offsets) => this.onFlushed(error, offsets));
  }

  /**
   * This member's partitions of the topic. The client replaces its assignments array whenever
   * they change (never edits it in place), so the set is rebuilt only then, not per message.
   */
  private assigned(): Set<number> {
    const assignments = this.consumer.assignments;
    if (assignments !== this.assignedFrom) {
      const mine = assignments?.find((a) => a.topic === this.topic);
      this.assignedSet = new Set(mine?.partitions ?? []);
      this.assignedFrom = assignments;
    }
    return this.assignedSet;
  }

  /** A partition epoch's cancellation, aborted already when the subscription was. */
  private newCancellation(): Cancellation {
    const cancel = new Cancellation();
    if (this.abortAll.signal.aborted) cancel.abort(this.abortAll.signal.reason);
    return cancel;
  }

  private state(partition: number): PartitionState {
    let state = this.partitions.get(partition);
    if (!state) {
      state = {
        epoch: 0,
        next: undefined,
        waiting: [],
        pending: [],
        busyKeys: new Set(),
        running: new Set(),
        cancel: this.newCancellation(),
        uncommitted: undefined,
      };
      this.partitions.set(partition, state);
    }
    return state;
  }

  /** Partitions that moved away drop their queued work: the new owner reads it from the committed offset. */
  private onAssignment(): void {
    const assigned = this.assigned();
    for (const [partition, state] of this.partitions) {
      if (!assigned.has(partition)) this.revoke(state);
    }
    // The client flushes queued commits right after a join, with the new generation, and the
    // broker does not check who owns a partition: a commit queued for one that moved away
    // would land after its new owner started reading and skip it past work in progress there.
    // This listener runs before the stream's own, so drop those commits now.
    const queued = this.stream?.offsetsToCommit;
    if (queued) {
      for (const [key, pending] of queued) {
        if (pending.topic === this.topic && !assigned.has(pending.partition)) queued.delete(key);
      }
    }
  }

  private revoke(state: PartitionState): void {
    state.epoch++;
    state.next = undefined;
    // Running handlers are aborted below and leave on their own; what waits is dropped now.
    this.released(state.waiting.length);
    state.waiting = [];
    state.pending = [];
    // Its new owner starts from the last commit: a position held back here is not committed.
    state.uncommitted = undefined;
    state.cancel.abort(new BusError('BUS_REVOKED', 'partition moved to another group member'));
    state.cancel = this.newCancellation();
  }

  private accept(message: KafkaMessage): void {
    if (this.stopping || this.abortAll.signal.aborted) return;
    const partition = message.partition;
    if (!this.assigned().has(partition)) return;
    const state = this.state(partition);
    if (state.next !== undefined && message.offset < state.next) return;
    state.next = message.offset + 1n;
    this.buffered++;
    if (this.buffered >= this.settings.maxBuffered && !this.pausedForBuffer) {
      this.pausedForBuffer = true;
      this.stream?.pause();
    }
    const entry: Pending = { message, done: false };
    state.waiting.push(entry);
    state.pending.push(entry);
    this.startWaiting(state);
  }

  /** `count` accepted messages left the subscription (handled or dropped). */
  private released(count: number): void {
    this.buffered -= count;
    if (this.pausedForBuffer && this.buffered <= Math.floor(this.settings.maxBuffered / 2)) {
      this.pausedForBuffer = false;
      if (!this.stopping) this.stream?.resume();
    }
  }

  /**
   * Starts waiting messages in offset order while the partition has room, stopping at the first
   * whose key is busy: a key's messages never overtake each other, and handlers start in order.
   */
  private startWaiting(state: PartitionState): void {
    while (state.waiting.length > 0 && state.running.size < this.settings.handlerConcurrency) {
      if (this.stopping || this.abortAll.signal.aborted) return;
      const entry = state.waiting[0]!;
      const key = entry.message.key ?? '';
      if (state.busyKeys.has(key)) return;
      state.waiting.shift();
      state.busyKeys.add(key);
      // run() finds its own promise here: it reaches its first await before this assignment's turn ends.
      entry.run = this.run(entry, key, state, state.epoch);
      state.running.add(entry.run);
    }
  }

  /** One message from start to the partition's bookkeeping; never rejects. */
  private async run(entry: Pending, key: string, state: PartitionState, epoch: number): Promise<void> {
    let finished: boolean;
    try {
      finished = await this.process(entry.message, state, epoch);
    } catch (error) {
      const { message } = entry;
      this.options.onError?.(error, {
        topic: this.topic,
        partition: message.partition,
        offset: message.offset,
      });
      // As before: a failure here does not hold the partition; later commits pass it.
      finished = true;
    }
    state.running.delete(entry.run!);
    state.busyKeys.delete(key);
    this.released(1);
    if (finished && this.current(state, epoch)) this.finished(state, entry);
    this.startWaiting(state);
  }

  /** Marks `entry` done and moves the group's position past every done message at the front. */
  private finished(state: PartitionState, entry: Pending): void {
    entry.done = true;
    let last: KafkaMessage | undefined;
    while (state.pending.length > 0 && state.pending[0]!.done) last = state.pending.shift()!.message;
    if (last === undefined) return;
    state.uncommitted = last;
    if (this.settings.commitIntervalMs === 0) {
      void this.commitHeld();
      return;
    }
    // One timer per subscription, not per partition: a pass commits every partition's held
    // position in one request, and a position waits at most one interval for it.
    this.commitTimer ??= setTimeout(() => {
      this.commitTimer = undefined;
      if (!this.abortAll.signal.aborted) void this.commitHeld();
    }, this.settings.commitIntervalMs);
  }

  /** Commits every partition's held-back position now (a draining close). */
  private flushCommits(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    return this.commitHeld();
  }

  /**
   * Moves the group's position past every partition's held message, in one OffsetCommit request
   * when the client allows it; resolves once that request settled (failures are reported through
   * onFlushed, and the client keeps the offsets queued for its next flush).
   *
   * The client commits through message.commit() alone: it merges queued offsets per partition
   * (never lowering one) and keeps one commit request in flight, but the first call flushes at
   * once with only its own partition. So the other partitions' offsets are queued in the
   * stream's own commit map first, merged by the client's rule (a higher offset only), and the
   * last message's commit() then flushes them all together, or, with a request in flight, the
   * follow-up flush its pending commit triggers does. A raw consumer.commit() would bypass that
   * bookkeeping and could land a lower offset after a higher one.
   */
  private commitHeld(): Promise<void> {
    const held: KafkaMessage[] = [];
    for (const state of this.partitions.values()) {
      if (state.uncommitted === undefined) continue;
      held.push(state.uncommitted);
      state.uncommitted = undefined;
    }
    const trigger = held.pop();
    if (trigger === undefined) return Promise.resolve();
    const commits: Array<Promise<void>> = [];
    const queued = this.stream?.offsetsToCommit;
    const fetching = this.stream?.offsetsToFetch;
    for (const message of held) {
      // The client's own key for the partition (`topic:partition`, as its fetch offsets use);
      // should a client version spell it otherwise, that partition gets its own commit() call.
      const key = `${message.topic}:${message.partition}`;
      const next = message.offset + 1n;
      if (queued === undefined || fetching?.has(key) !== true) {
        commits.push(this.commitOne(message));
        continue;
      }
      const current = queued.get(key);
      if (current === undefined || current.offset < next)
        queued.set(key, {
          topic: message.topic,
          partition: message.partition,
          offset: next,
          leaderEpoch: message.leaderEpoch,
        });
    }
    commits.push(this.commitOne(trigger));
    return Promise.all(commits).then(() => undefined);
  }

  /** message.commit(), its outcome reported by onFlushed: a later commit covers a failed one. */
  private commitOne(message: KafkaMessage): Promise<void> {
    // Not awaited by handlers: the client keeps one commit request in flight and merges what is
    // queued meanwhile, so the next message need not wait a round trip.
    return Promise.resolve(message.commit()).then(
      () => undefined,
      () => undefined,
    );
  }

  /** A commit flush of the client settled: report what landed, per partition, or the failure. */
  private onFlushed(
    error: Error | null,
    offsets: Array<{ topic: string; partition: number; offset: bigint }> | undefined,
  ): void {
    if (error) {
      this.options.onError?.(error, { topic: this.topic });
      return;
    }
    for (const { topic, partition, offset } of offsets ?? []) {
      if (topic === this.topic) this.options.onCommit?.({ topic, group: this.group, partition, offset });
    }
  }

  private current(state: PartitionState, epoch: number): boolean {
    return state.epoch === epoch && !this.abortAll.signal.aborted;
  }

  /** Handles (or dead-letters) one message; true when the group's position may pass it. */
  private async process(message: KafkaMessage, state: PartitionState, epoch: number): Promise<boolean> {
    if (this.stopping || !this.current(state, epoch)) return false;
    // This epoch's: aborted when the partition moves away or the subscription closes without draining.
    const cancel = state.cancel;
    const delivery = {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: message.key ?? '',
      value: copyOf(message.value),
      headers: headersOf(message),
    };
    // Settles as soon as `cancel` aborts: a handler that ignores its signal must not keep a
    // closing subscription open.
    const outcome = await deliver(delivery, this.options, cancel, this.watchdog);
    if (outcome.kind === 'aborted' || !this.current(state, epoch)) return false;
    if (outcome.kind === 'failed') {
      let headers = deadLetterHeaders(delivery, this.group, outcome.error, outcome.attempts);
      let value = delivery.value;
      // Never commit past a message that is neither handled nor dead-lettered.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.bus.publishDeadLetter(dlqTopicOf(this.options), delivery.key, value, headers);
          break;
        } catch (error) {
          // Larger than this bus or its dead-letter topic allows (written by a bus with a higher
          // limit): retrying cannot help, so dead-letter it without its value, its size noted.
          if (error instanceof BusError && error.code === 'BUS_MESSAGE_TOO_LARGE' && value.byteLength > 0) {
            headers = { ...headers, [DLQ_VALUE_DROPPED_HEADER]: String(value.byteLength) };
            value = new Uint8Array(0);
          }
          this.options.onError?.(error, {
            topic: this.topic,
            partition: delivery.partition,
            offset: delivery.offset,
          });
          await sleep(Math.min(5000, 100 * 2 ** attempt), cancel);
          if (!this.current(state, epoch)) return false;
        }
      }
    }
    return this.current(state, epoch);
  }

  /** The client tears the stream down when the group needs a rejoin it could not do in place: start over from the commits. */
  private onStreamError(stream: MessagesStream<string, Buffer, string, string>, error: Error): void {
    if (this.closing || stream !== this.stream) return;
    this.options.onError?.(error, { topic: this.topic });
    for (const state of this.partitions.values()) this.revoke(state);
    this.stream = undefined;
    const restart = async () => {
      for (let attempt = 1; !this.closing; attempt++) {
        try {
          await this.start();
          return;
        } catch (startError) {
          this.options.onError?.(startError, { topic: this.topic });
          await sleep(Math.min(5000, 200 * attempt), this.abortAll.signal);
        }
      }
    };
    void restart();
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drain ?? true);
    return this.closing;
  }

  private async shutdown(drain: boolean): Promise<void> {
    this.stopping = true;
    this.stream?.pause();
    if (drain) {
      // Handlers in hand finish and commit; queued messages are skipped (uncommitted). A drain
      // stuck on a dead broker (a dead-letter write retrying) gives up after a bound.
      const drained = Promise.all([...this.partitions.values()].flatMap((state) => [...state.running]));
      const bound = new AbortController();
      await Promise.race([drained, sleep(DRAIN_TIMEOUT_MS, bound.signal)]);
      bound.abort();
      // What was handled is committed before the consumer leaves (bounded like the drain).
      const flushBound = new AbortController();
      await Promise.race([this.flushCommits(), sleep(5000, flushBound.signal)]);
      flushBound.abort();
    }
    clearTimeout(this.commitTimer);
    // Whatever is still running now is abandoned uncommitted.
    const reason = new BusError('BUS_ABORTED', 'subscription closed without draining');
    this.abortAll.abort(reason);
    for (const state of this.partitions.values()) state.cancel.abort(reason);
    this.watchdog.stop();
    try {
      await this.stream?.close();
    } finally {
      await this.consumer.close(true);
      this.bus.forget(this);
    }
  }
}
