// HashProvider on node:crypto (OpenSSL): measured faster than @noble/hashes on the replay
// hot path (see bench/src/eventlog-bench.ts), and it also covers SM3.
import { createHash, getHashes } from 'node:crypto';
import type { HashProvider } from './hash.ts';

const NODE_NAMES: Record<string, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sm3_256: 'sm3',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
};
const available = new Set(getHashes());

/** HashProvider backed by node:crypto. */
export const nodeHash: HashProvider = {
  supports(bank) {
    const n = NODE_NAMES[bank];
    return n !== undefined && available.has(n);
  },
  digest(bank, ...parts) {
    const h = createHash(NODE_NAMES[bank]!);
    for (const p of parts) h.update(p);
    const d = h.digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  },
};

export { nodeHash as defaultHash };
