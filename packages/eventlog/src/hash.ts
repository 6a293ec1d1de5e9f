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

/** Digest of `data` as a Latin-1 string, one character per byte. */
export type Latin1Digest = (bank: BankName, data: Uint8Array) => string;

/**
 * Providers that can also return digests as Latin-1 strings. Replay uses this when present:
 * node:crypto allocates a Buffer (with its own backing store) per digest, which cost more than
 * the hash itself on PCR extends (~0.7 µs against ~0.25 µs per sha256 extend on Node 24).
 * Kept out of HashProvider so the public interface stays as it is.
 */
export const latin1Digests: WeakMap<HashProvider, Latin1Digest> = new WeakMap();
