// The package hashes through this interface so it runs in browsers (pure JS) and uses
// OpenSSL in Node; `#default-hash` picks one by package.json import conditions.
import type { BankName } from './algorithms.ts';

/** Synchronous hashing for the banks a log carries. */
export interface HashProvider {
  /** Whether `bank` can be hashed. */
  supports(bank: BankName): boolean;
  /** Digest of the concatenation of `parts`. Only called for supported banks. */
  digest(bank: BankName, ...parts: Uint8Array[]): Uint8Array;
}
