// Synthetic UEFI boot event logs (crypto-agile, SHA-1 + SHA-256) built byte by byte from the TCG
// PC Client PFP and UEFI structures, with PCR values computed here by plain hashing — so the
// expected PCRs never come from the code under test. swtpm has no firmware: an agent extends
// these digests into its PCRs (`--extend-from`) so the quote and the log agree.
import { createHash } from 'node:crypto';

export type Bank = 'sha1' | 'sha256';
const ALG: Record<Bank, number> = { sha1: 0x0004, sha256: 0x000b };
const SIZE: Record<Bank, number> = { sha1: 20, sha256: 32 };
export const BANKS: readonly Bank[] = ['sha1', 'sha256'];

export const EV = {
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  S_CRTM_VERSION: 0x8,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_ACTION: 0x80000007,
} as const;

const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
const OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

export interface LogEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Per-bank digests; default the hash of `data` (what firmware logs for most events). */
  digests?: Record<Bank, Uint8Array>;
}

export function hashOf(bank: Bank, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(bank);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const utf16 = (s: string) => new Uint8Array(Buffer.from(s, 'utf16le'));
function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}
function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/** EFI_GUID in its mixed-endian memory layout. */
export function guid(text: string): Uint8Array {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  return concat(
    Uint8Array.from(b.subarray(0, 4)).reverse(),
    Uint8Array.from(b.subarray(4, 6)).reverse(),
    Uint8Array.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  );
}

/** UEFI_VARIABLE_DATA (PFP 10.4.4). */
export function variableData(vendor: string, name: string, data: Uint8Array): Uint8Array {
  return concat(guid(vendor), u64(name.length), u64(data.length), utf16(name), data);
}

/** An EFI_SIGNATURE_LIST of SHA-256 hashes. */
export function sha256SignatureList(hashes: Uint8Array[]): Uint8Array {
  const entrySize = 16 + 32;
  return concat(
    guid(EFI_CERT_SHA256),
    u32(28 + hashes.length * entrySize),
    u32(0),
    u32(entrySize),
    ...hashes.map((h) => concat(guid(OWNER), h)),
  );
}

/** UEFI_IMAGE_LOAD_EVENT with a media file-path device path. */
export function imageLoadEvent(filePath: string): Uint8Array {
  const pathNode = concat(Uint8Array.of(4, 4), u16(4 + (filePath.length + 1) * 2), utf16(`${filePath}\0`));
  const devicePath = concat(pathNode, Uint8Array.of(0x7f, 0xff, 4, 0));
  return concat(u64(0x7e000000), u64(0x100000), u64(0), u64(devicePath.length), devicePath);
}

/** The Authenticode digest a boot application would have, here a label's hash per bank. */
export function appDigests(label: string): Record<Bank, Uint8Array> {
  return { sha1: hashOf('sha1', ascii(`app:${label}`)), sha256: hashOf('sha256', ascii(`app:${label}`)) };
}

export interface BootOptions {
  /** Value of the SecureBoot variable (default on). */
  secureBoot?: boolean;
  /** Boot applications measured into PCR 4 (default shim and grub). */
  bootApps?: string[];
  /** SHA-256 hashes in dbx (default two fixed ones). */
  dbx?: Uint8Array[];
  /** Firmware version string in the S-CRTM event (changes PCR 0). */
  firmware?: string;
}

export const DEFAULT_BOOT_APPS = ['\\EFI\\BOOT\\shimx64.efi', '\\EFI\\ubuntu\\grubx64.efi'];
export const DEFAULT_DBX = [hashOf('sha256', ascii('revoked-1')), hashOf('sha256', ascii('revoked-2'))];

/** A UEFI boot over PCRs 0–7 as a Secure Boot machine logs it. */
export function uefiBoot(opts: BootOptions = {}): LogEvent[] {
  const sb = opts.secureBoot ?? true;
  const apps = opts.bootApps ?? DEFAULT_BOOT_APPS;
  const sep = u32(0);
  const events: LogEvent[] = [
    { pcr: 0, type: EV.S_CRTM_VERSION, data: utf16(`${opts.firmware ?? '1.0.0'}\0`) },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(sb ? 1 : 0)),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_GLOBAL_VARIABLE, 'PK', new Uint8Array(0)),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_GLOBAL_VARIABLE, 'KEK', new Uint8Array(0)),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_IMAGE_SECURITY_DATABASE, 'db', new Uint8Array(0)),
    },
    {
      pcr: 7,
      type: EV.EFI_VARIABLE_DRIVER_CONFIG,
      data: variableData(EFI_IMAGE_SECURITY_DATABASE, 'dbx', sha256SignatureList(opts.dbx ?? DEFAULT_DBX)),
    },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: EV.SEPARATOR, data: sep })),
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('Calling EFI Application from Boot Option') },
  ];
  for (const app of apps)
    events.push({
      pcr: 4,
      type: EV.EFI_BOOT_SERVICES_APPLICATION,
      data: imageLoadEvent(app),
      digests: appDigests(app),
    });
  return events;
}

function digestOf(e: LogEvent, bank: Bank): Uint8Array {
  return e.digests?.[bank] ?? hashOf(bank, e.data);
}

/** The crypto-agile log (Spec ID header + TCG_PCR_EVENT2 records). */
export function buildLog(events: LogEvent[]): Uint8Array {
  const specId = concat(
    ascii('Spec ID Event03\0'),
    u32(0),
    Uint8Array.of(0, 2, 0, 2),
    u32(BANKS.length),
    ...BANKS.map((b) => concat(u16(ALG[b]), u16(SIZE[b]))),
    Uint8Array.of(0),
  );
  const header = concat(u32(0), u32(EV.NO_ACTION), new Uint8Array(20), u32(specId.length), specId);
  const records = events.map((e) =>
    concat(
      u32(e.pcr),
      u32(e.type),
      u32(BANKS.length),
      ...BANKS.map((b) => concat(u16(ALG[b]), digestOf(e, b))),
      u32(e.data.length),
      e.data,
    ),
  );
  return concat(header, ...records);
}

/** What the PCRs hold after `events` were extended from reset (locality 0): bank → pcr → value. */
export function expectedPcrs(events: LogEvent[], pcrs: number[] = [0, 1, 2, 3, 4, 5, 6, 7]) {
  const out = new Map<Bank, Map<number, Uint8Array>>();
  for (const bank of BANKS) {
    const values = new Map<number, Uint8Array>(pcrs.map((p) => [p, new Uint8Array(SIZE[bank])]));
    for (const e of events) {
      if (e.type === EV.NO_ACTION || !values.has(e.pcr)) continue;
      values.set(e.pcr, hashOf(bank, values.get(e.pcr)!, digestOf(e, bank)));
    }
    out.set(bank, values);
  }
  return out;
}

/** Extends into the TPM: each event's digests, in log order (what `--extend-from` does). */
export function extendOperations(
  events: LogEvent[],
): { pcr: number; digests: { hash: Bank; digest: Uint8Array }[] }[] {
  return events
    .filter((e) => e.type !== EV.NO_ACTION)
    .map((e) => ({ pcr: e.pcr, digests: BANKS.map((b) => ({ hash: b, digest: digestOf(e, b) })) }));
}
