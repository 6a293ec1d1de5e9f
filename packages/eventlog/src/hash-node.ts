// HashProvider on node:crypto (OpenSSL); it also covers SM3, which @noble/hashes lacks.
// PCR extends hash under 130 bytes, so the one-shot crypto.hash() (no Hash object per
// call) is used when present; createHash is the fallback for older Node.
import * as crypto from 'node:crypto';
import { type HashProvider, latin1Digests } from './hash.ts';

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
const available = new Set(crypto.getHashes());
type OneShot = (algorithm: string, data: Uint8Array, encoding: 'binary') => string;
const oneShot = (crypto as { hash?: OneShot }).hash;

function join(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function toView(d: Uint8Array): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

// A digest-sized Uint8Array lives on the V8 heap; a Buffer from crypto.hash has its own backing
// store, which made the call ~2.5x slower for the short inputs of PCR extends.
function bytesOfBinary(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** HashProvider backed by node:crypto. */
export const nodeHash: HashProvider = {
  supports(bank) {
    const n = NODE_NAMES[bank];
    return n !== undefined && available.has(n);
  },
  digest(bank, ...parts) {
    const name = NODE_NAMES[bank]!;
    if (oneShot !== undefined) return bytesOfBinary(oneShot(name, join(parts), 'binary'));
    const h = crypto.createHash(name);
    for (const p of parts) h.update(p);
    return toView(h.digest());
  },
};

// A string result lives on the JS heap: no Buffer and backing store per PCR extend.
if (oneShot !== undefined)
  latin1Digests.set(nodeHash, (bank, data) => oneShot(NODE_NAMES[bank]!, data, 'binary'));

export { nodeHash as defaultHash };
