// Every failure the parser can raise is an EventLogError with a stable code, so callers
// (CLI, replayer service, fuzzer) branch on `code` and never see a RangeError.

/** Stable machine-readable reasons a log is refused. */
export type EventLogErrorCode =
  | 'empty'
  | 'too-large'
  | 'truncated'
  | 'event-too-large'
  | 'too-many-events'
  | 'bad-spec-id'
  | 'unknown-algorithm'
  | 'undeclared-algorithm'
  | 'digest-count-mismatch'
  | 'duplicate-digest'
  | 'pcr-index-out-of-range'
  | 'trailing-bytes'
  | 'not-an-event-log'
  | 'unsupported-algorithm';

/** A log that cannot be parsed or replayed; `offset` is the byte where the fault was found. */
export class EventLogError extends Error {
  override readonly name = 'EventLogError';
  readonly code: EventLogErrorCode;
  /** Byte offset into the log where the fault was found. */
  readonly offset: number;
  /** Index of the record being read (0 = first record), or -1 when not inside a record. */
  readonly eventIndex: number;
  /** The message without the position, for callers that print `offset` and `eventIndex` themselves. */
  readonly reason: string;

  constructor(code: EventLogErrorCode, message: string, offset: number, eventIndex: number) {
    super(
      eventIndex >= 0
        ? `${message} (event ${eventIndex}, offset ${offset})`
        : `${message} (offset ${offset})`,
    );
    this.reason = message;
    this.code = code;
    this.offset = offset;
    this.eventIndex = eventIndex;
  }
}
