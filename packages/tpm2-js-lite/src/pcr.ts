// TPML_PCR_SELECTION and TPML_DIGEST (TPM 2.0 Part 2 §10.6, §10.9), and the quote's PCR digest input.
import { ByteReader, ByteWriter } from './bytes.ts';
import { HASH_BY_ALG, HASH_ALG, type HashName, LIMITS } from './constants.ts';
import { Tpm2Error } from './errors.ts';

/** TPMS_PCR_SELECTION: a bank and its select bitmap (bit n of octet k is PCR 8k+n). */
export interface PcrSelection {
  hashAlg: number;
  select: Uint8Array;
}

export function readPcrSelectionList(r: ByteReader): PcrSelection[] {
  const countAt = r.offset;
  const count = r.u32('TPML_PCR_SELECTION.count');
  if (count > LIMITS.pcrBanks) r.fail(`${count} PCR banks exceed ${LIMITS.pcrBanks}`, countAt);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hashAt = r.offset;
    const hashAlg = r.u16('pcrSelections.hash');
    if (!HASH_BY_ALG.has(hashAlg)) {
      throw new Tpm2Error(
        'UNSUPPORTED_ALGORITHM',
        `${r.what}: PCR bank hash 0x${hashAlg.toString(16)} at byte ${hashAt}`,
        hashAt,
      );
    }
    const sizeAt = r.offset;
    const size = r.u8('sizeofSelect');
    if (size > LIMITS.pcrSelect) r.fail(`sizeofSelect ${size} exceeds ${LIMITS.pcrSelect}`, sizeAt);
    out.push({ hashAlg, select: r.take(size, 'pcrSelect') });
  }
  return out;
}

export function writePcrSelectionList(w: ByteWriter, list: PcrSelection[]): ByteWriter {
  w.u32(list.length);
  for (const s of list) w.u16(s.hashAlg).u8(s.select.length).bytes(s.select);
  return w;
}

export function unmarshalPcrSelectionList(bytes: Uint8Array): PcrSelection[] {
  const r = new ByteReader(bytes, 'TPML_PCR_SELECTION');
  const list = readPcrSelectionList(r);
  r.expectEnd();
  return list;
}

export function marshalPcrSelectionList(list: PcrSelection[]): Uint8Array {
  return writePcrSelectionList(new ByteWriter(), list).finish();
}

export function readDigestList(r: ByteReader): Uint8Array[] {
  const countAt = r.offset;
  const count = r.u32('TPML_DIGEST.count');
  if (count > LIMITS.digests) r.fail(`${count} digests exceed ${LIMITS.digests}`, countAt);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.tpm2b('digests', LIMITS.digest));
  return out;
}

export function unmarshalDigestList(bytes: Uint8Array): Uint8Array[] {
  const r = new ByteReader(bytes, 'TPML_DIGEST');
  const list = readDigestList(r);
  r.expectEnd();
  return list;
}

export function marshalDigestList(list: Uint8Array[]): Uint8Array {
  if (list.length > LIMITS.digests)
    throw new RangeError(`TPML_DIGEST holds at most ${LIMITS.digests} digests`);
  const w = new ByteWriter().u32(list.length);
  for (const d of list) w.tpm2b(d);
  return w.finish();
}

/** PCR indices selected by a bitmap, ascending. */
export function selectedPcrs(select: Uint8Array): number[] {
  const out: number[] = [];
  for (let octet = 0; octet < select.length; octet++) {
    const byte = select[octet]!;
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(octet * 8 + bit);
  }
  return out;
}

/** A selection for `pcrs` in one bank; at least 3 octets (PC Client TPMs have 24 PCRs). */
export function pcrSelection(hash: HashName | number, pcrs: Iterable<number>): PcrSelection {
  const hashAlg = typeof hash === 'number' ? hash : HASH_ALG[hash];
  const list = [...pcrs];
  for (const pcr of list) {
    if (!Number.isInteger(pcr) || pcr < 0 || pcr >= LIMITS.pcrSelect * 8)
      throw new RangeError(`bad PCR index ${pcr}`);
  }
  const select = new Uint8Array(Math.max(3, Math.ceil((Math.max(-1, ...list) + 1) / 8)));
  for (const pcr of list) select[pcr >> 3] = select[pcr >> 3]! | (1 << (pcr & 7));
  return { hashAlg, select };
}

/** PCRs `<bank>:all` stands for: the 24 of a PC Client TPM (tpm2-tools asks the TPM; a verifier cannot). */
export const PC_CLIENT_PCR_COUNT = 24;

/**
 * Parses tpm2-tools' PCR list syntax (`sha256:0,1,2+sha1:7`, `sha256:all`, indices decimal or
 * `0x` hex) into selections. `all` means PCRs 0-23 (PC Client). Throws RangeError on bad syntax.
 */
export function parsePcrList(text: string): PcrSelection[] {
  return text.split('+').map((part) => {
    const m = /^(sha1|sha256|sha384|sha512):(all|(?:[0-9]+|0x[0-9a-f]+)(?:,(?:[0-9]+|0x[0-9a-f]+))*)$/i.exec(
      part.trim(),
    );
    if (m === null) throw new RangeError(`bad PCR list '${part}' (expected e.g. sha256:0,1,2 or sha256:all)`);
    const bank = m[1]!.toLowerCase() as HashName;
    const list = m[2]!.toLowerCase();
    const pcrs =
      list === 'all'
        ? Array.from({ length: PC_CLIENT_PCR_COUNT }, (_, i) => i)
        : list.split(',').map((x) => (x.startsWith('0x') ? Number.parseInt(x.slice(2), 16) : Number(x)));
    return pcrSelection(bank, pcrs);
  });
}

/** PCR values by bank name and index, as the client's PcrValues.values holds them. */
export type PcrValueMap = Map<HashName, Map<number, Uint8Array>>;

export type PcrInput =
  | PcrValueMap
  | Partial<Record<HashName, Map<number, Uint8Array> | Record<number, Uint8Array>>>;

export function normalizePcrs(input: PcrInput): PcrValueMap {
  // Already in the canonical shape (what pcrRead and the tpm2-tools readers return): used as is.
  if (input instanceof Map) {
    let canonical = true;
    for (const [h, b] of input) if (!(h in HASH_ALG && b instanceof Map)) canonical = false;
    if (canonical) return input;
  }
  const out: PcrValueMap = new Map();
  const entries = input instanceof Map ? [...input.entries()] : Object.entries(input);
  for (const [hash, bank] of entries) {
    if (!(hash in HASH_ALG)) throw new Tpm2Error('UNSUPPORTED_ALGORITHM', `PCR bank '${hash}'`);
    if (bank === undefined) continue;
    const values = new Map<number, Uint8Array>();
    const pairs =
      bank instanceof Map
        ? [...bank.entries()]
        : Object.entries(bank).map(([k, v]) => [Number(k), v] as const);
    for (const [pcr, digest] of pairs) values.set(Number(pcr), digest);
    out.set(hash as HashName, values);
  }
  return out;
}
