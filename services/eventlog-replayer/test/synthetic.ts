// Synthetic UEFI boot logs for the replayer tests, built byte by byte (UEFI_VARIABLE_DATA,
// EFI_SIGNATURE_LIST, UEFI_IMAGE_LOAD_EVENT with a file-path device path) on top of the event-log
// package's test builder, whose reference replay is written from the PFP text, not from src/.
import {
  ascii,
  type Bank,
  concat,
  EV,
  hash,
  referenceReplay,
  type SynthEvent,
  u16,
  u32,
} from '../../../packages/eventlog/test/log-builder.ts';
import type { PcrBank } from '@hostgate/protos';

export {
  buildAgileLog,
  hash,
  referenceReplay,
  type SynthEvent,
} from '../../../packages/eventlog/test/log-builder.ts';

export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
const OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

export function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** EFI_GUID in its mixed-endian byte layout. */
export function guid(text: string): Uint8Array {
  const h = text.replace(/-/g, '');
  const b = Uint8Array.from({ length: 16 }, (_, i) => Number.parseInt(h.slice(i * 2, i * 2 + 2), 16));
  return Uint8Array.from([3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15].map((i) => b[i]!));
}

export function ucs2(s: string, nul: boolean): Uint8Array {
  const b = new Uint8Array((s.length + (nul ? 1 : 0)) * 2);
  for (let i = 0; i < s.length; i++) b[i * 2] = s.charCodeAt(i);
  return b;
}

/** UEFI_VARIABLE_DATA (PFP 10.2.6). */
export function variableData(vendor: string, name: string, data: Uint8Array): Uint8Array {
  return concat(guid(vendor), u64(name.length), u64(data.length), ucs2(name, false), data);
}

/** One EFI_SIGNATURE_LIST of EFI_CERT_SHA256 entries. */
export function sha256SignatureList(entries: Uint8Array[]): Uint8Array {
  const body = concat(...entries.map((e) => concat(guid(OWNER), e)));
  return concat(guid(EFI_CERT_SHA256), u32(28 + body.length), u32(0), u32(48), body);
}

/** UEFI_IMAGE_LOAD_EVENT whose device path is one file-path node and the end node. */
export function imageLoad(path: string): Uint8Array {
  const name = ucs2(path, true);
  const devicePath = concat(
    new Uint8Array([4, 4]),
    u16(4 + name.length),
    name,
    new Uint8Array([0x7f, 0xff, 4, 0]),
  );
  return concat(u64(0x7e000000), u64(0x1b000), u64(0), u64(devicePath.length), devicePath);
}

export interface SyntheticBoot {
  events: SynthEvent[];
  /** Index in the log of each named event (the Spec ID header is index 0). */
  index: { secureBoot: number; dbx: number; shim: number; grub: number };
  dbx: Uint8Array[];
  shimDigest: Uint8Array;
  grubDigest: Uint8Array;
}

export const SHIM_PATH = '\\EFI\\BOOT\\BOOTX64.EFI';
export const GRUB_PATH = '\\EFI\\BOOT\\grubx64.efi';

/** A UEFI boot with Secure Boot on or off, a dbx of two entries and two boot applications. */
export function syntheticBoot(opts: { secureBoot?: boolean; shimDigest?: Uint8Array } = {}): SyntheticBoot {
  const dbx = [hash('sha256', ascii('revoked-1')), hash('sha256', ascii('revoked-2'))];
  // Authenticode digests are not hashes of the event data: give them explicitly in every bank.
  const shimDigest = opts.shimDigest ?? hash('sha256', ascii('shim authenticode'));
  const grubDigest = hash('sha256', ascii('grub authenticode'));
  const app = (path: string, digest: Uint8Array): SynthEvent => ({
    pcr: 4,
    type: EV.EFI_BOOT_SERVICES_APPLICATION,
    data: imageLoad(path),
    digests: { sha1: hash('sha1', digest), sha256: digest },
  });
  const events: SynthEvent[] = [
    { pcr: 0, type: EV.S_CRTM_VERSION, data: ucs2('1.0', true) },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(
        EFI_GLOBAL_VARIABLE,
        'SecureBoot',
        new Uint8Array([opts.secureBoot === false ? 0 : 1]),
      ),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_IMAGE_SECURITY_DATABASE, 'dbx', sha256SignatureList(dbx)),
    },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: EV.SEPARATOR, data: u32(0) })),
    app(SHIM_PATH, shimDigest),
    app(GRUB_PATH, grubDigest),
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('Exit Boot Services Invocation') },
  ];
  return { events, index: { secureBoot: 2, dbx: 3, shim: 12, grub: 13 }, dbx, shimDigest, grubDigest };
}

const ALGORITHM: Record<string, string> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
};

/** Quoted PCR values (proto PcrBank) of PCRs 0–7 from the reference replay. */
export function quoteOf(banks: Bank[], events: SynthEvent[], pcrs = [0, 1, 2, 3, 4, 5, 6, 7]): PcrBank[] {
  const ref = referenceReplay(banks, events);
  return banks.map((bank) => ({
    hashAlgorithm: ALGORITHM[bank] as PcrBank['hashAlgorithm'],
    pcrs: pcrs.map((index) => ({ index, digest: Buffer.from(ref[bank]?.[String(index)] ?? '', 'hex') })),
  }));
}
