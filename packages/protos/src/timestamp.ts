// google.protobuf.Timestamp <-> Date, with seconds as decimal strings (longs: String).
import type { Timestamp, Timestamp__Output } from './gen/google/protobuf/Timestamp.ts';

/** The Timestamp of a Date (millisecond precision). */
export function timestampFromDate(date: Date): Timestamp__Output {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('timestampFromDate: invalid Date');
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** The Date of a Timestamp (sub-millisecond precision dropped); undefined when unset. */
export function dateFromTimestamp(ts: Timestamp | Timestamp__Output | null | undefined): Date | undefined {
  if (ts === null || ts === undefined) return undefined;
  const seconds = Number(
    typeof ts.seconds === 'object' && ts.seconds !== null ? ts.seconds.toString() : (ts.seconds ?? 0),
  );
  const nanos = ts.nanos ?? 0;
  if (!Number.isFinite(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) {
    throw new RangeError('dateFromTimestamp: invalid Timestamp');
  }
  return new Date(seconds * 1000 + Math.floor(nanos / 1_000_000));
}
