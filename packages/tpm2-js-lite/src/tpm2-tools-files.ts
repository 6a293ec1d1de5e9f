// The files tpm2-tools reads and writes around quotes: `tpm2_quote -o` PCR files (its default "serialized"
// form and `-F values`), AK public files (TPM2B_PUBLIC or PEM). Hostile input raises Tpm2Error(MALFORMED).
import { HASH_BY_ALG, type HashName } from './constants.ts';
import { Tpm2Error } from './errors.ts';
import type { PcrSelection, PcrValueMap } from './pcr.ts';
import { selectedPcrs } from './pcr.ts';

// The serialized form is tpm2-tools' in-memory C structures written as they are (lib/pcr.c), in host byte
// order: TPML_PCR_SELECTION (u32 count + 16 × {u16 hash, u8 sizeofSelect, u8[4] select, pad}), a u32 count
// of TPML_DIGEST that follow, each u32 count + 8 × {u16 size, u8[64] buffer}.
const SELECTION_SIZE = 4 + 16 * 8;
const DIGEST_LIST_SIZE = 4 + 8 * 66;
const MAX_DIGEST_LISTS = 64;

function fail(message: string, offset: number): never {
  throw new Tpm2Error('MALFORMED', `tpm2-tools PCR file: ${message} at byte ${offset}`, offset);
}

function hashNameOf(alg: number, offset: number): HashName {
  const info = HASH_BY_ALG.get(alg);
  if (info === undefined) {
    throw new Tpm2Error(
      'UNSUPPORTED_ALGORITHM',
      `tpm2-tools PCR file: hash 0x${alg.toString(16)} at byte ${offset}`,
      offset,
    );
  }
  return info.name;
}

/** Reads a `tpm2_quote -o FILE` / `tpm2_pcrread -o FILE` file in the default serialized form. */
export function parseSerializedPcrs(bytes: Uint8Array): { selection: PcrSelection[]; pcrs: PcrValueMap } {
  if (bytes.length < SELECTION_SIZE + 4)
    fail(`${bytes.length} bytes is shorter than the header`, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Host byte order: little-endian on every platform tpm2-tools ships for; a big-endian writer is detected by the count.
  let le = true;
  const countLe = view.getUint32(0, true);
  if (countLe > 16) {
    if (view.getUint32(0, false) > 16) fail(`${countLe} PCR banks`, 0);
    le = false;
  }
  const u16 = (at: number) => view.getUint16(at, le);
  const u32 = (at: number) => view.getUint32(at, le);
  const count = u32(0);
  const selection: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 8;
    const hashAlg = u16(at);
    hashNameOf(hashAlg, at);
    const size = bytes[at + 2]!;
    if (size > 4) fail(`sizeofSelect ${size} exceeds 4`, at + 2);
    selection.push({ hashAlg, select: bytes.slice(at + 3, at + 3 + size) });
  }
  const lists = u32(SELECTION_SIZE);
  if (lists > MAX_DIGEST_LISTS) fail(`${lists} digest lists`, SELECTION_SIZE);
  const expectedSize = SELECTION_SIZE + 4 + lists * DIGEST_LIST_SIZE;
  if (bytes.length !== expectedSize)
    fail(`file is ${bytes.length} bytes, ${expectedSize} expected`, Math.min(bytes.length, expectedSize));
  const digests: { at: number; value: Uint8Array }[] = [];
  for (let l = 0; l < lists; l++) {
    const base = SELECTION_SIZE + 4 + l * DIGEST_LIST_SIZE;
    const n = u32(base);
    if (n > 8) fail(`TPML_DIGEST of ${n} digests`, base);
    for (let d = 0; d < n; d++) {
      const at = base + 4 + d * 66;
      const size = u16(at);
      if (size > 64) fail(`digest of ${size} bytes`, at);
      digests.push({ at, value: bytes.slice(at + 2, at + 2 + size) });
    }
  }
  const pcrs: PcrValueMap = new Map();
  let next = 0;
  for (let i = 0; i < selection.length; i++) {
    const sel = selection[i]!;
    const hash = hashNameOf(sel.hashAlg, 4 + i * 8);
    const size = HASH_BY_ALG.get(sel.hashAlg)!.size;
    const bank = pcrs.get(hash) ?? new Map<number, Uint8Array>();
    for (const pcr of selectedPcrs(sel.select)) {
      const d = digests[next++];
      if (d === undefined) fail(`no digest for ${hash} PCR ${pcr}`, bytes.length);
      if (d.value.length !== size) fail(`${hash} PCR ${pcr} digest of ${d.value.length} bytes`, d.at);
      bank.set(pcr, d.value);
    }
    pcrs.set(hash, bank);
  }
  if (next !== digests.length) fail(`${digests.length - next} digests beyond the selection`, SELECTION_SIZE);
  return { selection, pcrs };
}

/** Reads `tpm2_quote -F values -o FILE`: the selected digests back to back, in selection order. */
export function parsePcrValues(bytes: Uint8Array, selection: PcrSelection[]): PcrValueMap {
  const pcrs: PcrValueMap = new Map();
  let at = 0;
  for (const sel of selection) {
    const hash = hashNameOf(sel.hashAlg, 0);
    const size = HASH_BY_ALG.get(sel.hashAlg)!.size;
    const bank = pcrs.get(hash) ?? new Map<number, Uint8Array>();
    for (const pcr of selectedPcrs(sel.select)) {
      if (bytes.length - at < size) fail(`values end before ${hash} PCR ${pcr}`, at);
      bank.set(pcr, bytes.slice(at, at + size));
      at += size;
    }
    pcrs.set(hash, bank);
  }
  if (at !== bytes.length) fail(`${bytes.length - at} bytes beyond the selected PCRs`, at);
  return pcrs;
}

/** Writes the serialized form (little-endian) so `tpm2_checkquote -f` can read PCRs this library collected. */
export function serializePcrs(selection: PcrSelection[], pcrs: PcrValueMap): Uint8Array {
  if (selection.length > 16) throw new RangeError('at most 16 banks');
  const values: Uint8Array[] = [];
  for (const sel of selection) {
    if (sel.select.length > 4) throw new RangeError('tpm2-tools holds at most 4 select octets');
    const hash = hashNameOf(sel.hashAlg, 0);
    for (const pcr of selectedPcrs(sel.select)) {
      const v = pcrs.get(hash)?.get(pcr);
      if (v === undefined) throw new RangeError(`no value for ${hash} PCR ${pcr}`);
      values.push(v);
    }
  }
  const lists = Math.ceil(values.length / 8);
  const out = new Uint8Array(SELECTION_SIZE + 4 + lists * DIGEST_LIST_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, selection.length, true);
  selection.forEach((sel, i) => {
    view.setUint16(4 + i * 8, sel.hashAlg, true);
    out[4 + i * 8 + 2] = sel.select.length;
    out.set(sel.select, 4 + i * 8 + 3);
  });
  view.setUint32(SELECTION_SIZE, lists, true);
  for (let l = 0; l < lists; l++) {
    const base = SELECTION_SIZE + 4 + l * DIGEST_LIST_SIZE;
    const chunk = values.slice(l * 8, l * 8 + 8);
    view.setUint32(base, chunk.length, true);
    chunk.forEach((v, d) => {
      view.setUint16(base + 4 + d * 66, v.length, true);
      out.set(v, base + 4 + d * 66 + 2);
    });
  }
  return out;
}

/** Tells the PCR file forms apart: the serialized form has a fixed size pattern. */
export function isSerializedPcrs(bytes: Uint8Array): boolean {
  return bytes.length >= SELECTION_SIZE + 4 && (bytes.length - SELECTION_SIZE - 4) % DIGEST_LIST_SIZE === 0;
}

/** An AK file: PEM (`tpm2_createak -f pem`) stays a string, anything else is TPM2B_PUBLIC / TPMT_PUBLIC bytes. */
export function readAkFile(bytes: Uint8Array): Uint8Array | string {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (head.trimStart().startsWith('-----BEGIN')) return new TextDecoder().decode(bytes);
  return bytes;
}
