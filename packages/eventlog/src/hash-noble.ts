// HashProvider on @noble/hashes (pure JS) for browsers; SM3 is not available there.
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { sha3_256, sha3_384, sha3_512 } from '@noble/hashes/sha3.js';
import type { HashProvider } from './hash.ts';

type Create = () => { update(data: Uint8Array): unknown; digest(): Uint8Array };
const CREATE: Record<string, Create> = {
  sha1: sha1.create,
  sha256: sha256.create,
  sha384: sha384.create,
  sha512: sha512.create,
  sha3_256: sha3_256.create,
  sha3_384: sha3_384.create,
  sha3_512: sha3_512.create,
};

/** HashProvider backed by @noble/hashes. */
export const nobleHash: HashProvider = {
  supports(bank) {
    return CREATE[bank] !== undefined;
  },
  digest(bank, ...parts) {
    const h = CREATE[bank]!();
    for (const p of parts) h.update(p);
    return h.digest();
  },
};

export { nobleHash as defaultHash };
