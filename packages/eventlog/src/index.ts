// Public API of @hostgate/eventlog: parse (grants no trust), replay, compare with a quote.
export { type BankInfo, type BankName, KNOWN_ALGORITHMS } from './algorithms.ts';
export { bytesEqual, fromHex, toHex } from './bytes.ts';
export { EventLogError, type EventLogErrorCode } from './errors.ts';
export * from './event-types.ts';
export type { HashProvider } from './hash.ts';
export { defaultHash } from '#default-hash';
// Pure JS, so safe in browsers too; in Node, defaultHash is the node:crypto provider.
export { nobleHash } from './hash-noble.ts';
export {
  type EventDigest,
  type EventLog,
  type EventLogFormat,
  type ParseOptions,
  type ParseWarning,
  parseEventLog,
  type SpecIdEvent,
  type UntrustedEvent,
} from './parse.ts';
export {
  isHcrtmEvent,
  isStartupLocalityEvent,
  type PcrValues,
  pcrStartValue,
  type Replay,
  type ReplayOptions,
  type ReplayWarning,
  replay,
  startLocality,
} from './replay.ts';
export {
  compareWithQuote,
  type PcrMatch,
  type PcrMismatch,
  type QuoteComparison,
  type QuotedPcrs,
  type VerifiedEvent,
} from './compare.ts';
export { pcrsToJson } from './json.ts';
export { summarizeEvent } from './summary.ts';
export * from './decode/index.ts';
