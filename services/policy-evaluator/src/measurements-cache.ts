// The policy form of Measurements (measurementsForPolicy: converted, validated, frozen) is most of
// what the evaluator spends per message after decoding, and hosts of one image send the same
// measured content every time: only the attestation and host ids differ. So the validated content
// is kept by a SHA-256 of its wire bytes (Measurements fields 5-10), and a record with the same
// bytes reuses it with its own ids (checked by the same validator).
import { createHash } from 'node:crypto';
import { type Measurements as LibMeasurements, validateMeasurements } from '@hostgate/policy';
import type { Measurements__Output } from '@hostgate/protos';
import { measurementsForPolicy } from './convert.ts';

/** Measurements fields measurementsForPolicy reads besides the ids: pcr_banks … boot_applications. */
const FIRST_CONTENT_FIELD = 5;
const LAST_CONTENT_FIELD = 10;

/**
 * SHA-256 of the top-level content fields' bytes (tags included, in wire order), or undefined when
 * the record is not plain wire format (it is then judged without the cache). Identical bytes decode
 * to identical content.
 */
export function measuredContentKey(bytes: Uint8Array): { key: string; size: number } | undefined {
  const end = bytes.byteLength;
  let pos = 0;
  const varint = (): number | undefined => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && pos < end; i++) {
      const b = bytes[pos++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value <= Number.MAX_SAFE_INTEGER ? value : undefined;
      scale *= 128;
    }
    return undefined;
  };
  const hash = createHash('sha256');
  let size = 0;
  // Adjacent content fields are hashed as one run.
  let runStart = 0;
  let runEnd = 0;
  while (pos < end) {
    const start = pos;
    const tag = varint();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        if (varint() === undefined) return undefined;
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (len === undefined) return undefined;
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return undefined;
    }
    if (pos > end || field === 0) return undefined;
    if (field >= FIRST_CONTENT_FIELD && field <= LAST_CONTENT_FIELD) {
      if (start !== runEnd || runEnd === 0) {
        if (runEnd > runStart) hash.update(bytes.subarray(runStart, runEnd));
        runStart = start;
      }
      runEnd = pos;
      size += pos - start;
    }
  }
  if (runEnd > runStart) hash.update(bytes.subarray(runStart, runEnd));
  return { key: hash.digest('base64'), size };
}

export interface MeasurementsCacheOptions {
  /** Contents kept at most (default 1024). */
  maxEntries?: number;
  /** Wire bytes of the contents kept at most (default 8 MiB; the parsed form is a few times more). */
  maxBytes?: number;
}

interface Entry {
  readonly lib: LibMeasurements;
  readonly size: number;
}

export class MeasurementsCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(opts: MeasurementsCacheOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 1024;
    this.#maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1)
      throw new RangeError('maxEntries must be an integer ≥ 1');
    if (!Number.isSafeInteger(this.#maxBytes) || this.#maxBytes < 1)
      throw new RangeError('maxBytes must be an integer ≥ 1');
  }

  /** Contents held now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * measurementsForPolicy(m) for the record `bytes` decoded to `m`, the content validated once per
   * distinct content. Throws PolicyValidationError as measurementsForPolicy does.
   */
  of(m: Measurements__Output, bytes: Uint8Array): LibMeasurements {
    const content = measuredContentKey(bytes);
    const cached = content === undefined ? undefined : this.#entries.get(content.key);
    if (content === undefined || cached === undefined) {
      this.misses++;
      const lib = measurementsForPolicy(m);
      if (content !== undefined) this.#keep(content.key, { lib, size: content.size });
      return lib;
    }
    this.hits++;
    this.#entries.delete(content.key);
    this.#entries.set(content.key, cached);
    // The ids go through the same validator, with nothing else to check.
    const ids = validateMeasurements({
      hostId: m.hostId,
      attestationId: m.attestationId,
      pcrs: {},
      events: [],
      secureBoot: {},
      dbx: [],
      bootApplications: [],
    });
    return Object.freeze({ ...cached.lib, hostId: ids.hostId, attestationId: ids.attestationId });
  }

  #keep(key: string, entry: Entry): void {
    if (entry.size > this.#maxBytes) return;
    this.#entries.set(key, entry);
    this.#bytes += entry.size;
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const [oldest, e] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldest);
      this.#bytes -= e.size;
    }
  }
}
