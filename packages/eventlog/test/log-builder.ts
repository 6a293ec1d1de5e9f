// Builds synthetic TCG event logs byte by byte, and replays them with node:crypto, so tests
// never take expected values from the code under test.
import { createHash } from 'node:crypto';

export const ALG = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d, sm3_256: 0x0012 } as const;
export type Bank = keyof typeof ALG;
export const SIZE: Record<Bank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64, sm3_256: 32 };
const NODE_NAME: Record<Bank, string> = {
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sm3_256: 'sm3',
};

export const EV = {
  POST_CODE: 0x1,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  S_CRTM_VERSION: 0x8,
  IPL: 0xd,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_ACTION: 0x80000007,
  EFI_HCRTM_EVENT: 0x80000010,
} as const;

export function hash(bank: Bank, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(NODE_NAME[bank]);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

export function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** A measured or informational event to put in a log. */
export interface SynthEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Digests per bank; defaults to the hash of `data` in every bank (zeros for EV_NO_ACTION). */
  digests?: Partial<Record<Bank, Uint8Array>>;
  /** Banks to leave out of this record (crypto-agile only). */
  omit?: Bank[];
}

function digestOf(e: SynthEvent, bank: Bank): Uint8Array {
  const given = e.digests?.[bank];
  if (given !== undefined) return given;
  return e.type === EV.NO_ACTION ? new Uint8Array(SIZE[bank]) : hash(bank, e.data);
}

/** TCG_PCR_EVENT (SHA-1 legacy record). */
export function legacyRecord(pcr: number, type: number, digest: Uint8Array, data: Uint8Array): Uint8Array {
  return concat(u32(pcr), u32(type), digest, u32(data.length), data);
}

/** TCG_EfiSpecIdEvent body (PFP 10.4.5.1). */
export function specIdData(
  banks: { algId: number; size: number }[],
  vendorInfo = new Uint8Array(0),
): Uint8Array {
  return concat(
    ascii('Spec ID Event03\0'),
    u32(0), // platformClass
    new Uint8Array([0, 2, 0, 2]), // minor, major, errata, uintnSize
    u32(banks.length),
    ...banks.map((b) => concat(u16(b.algId), u16(b.size))),
    new Uint8Array([vendorInfo.length]),
    vendorInfo,
  );
}

/** TCG_PCR_EVENT2 (crypto-agile record). */
export function agileRecord(
  pcr: number,
  type: number,
  digests: { algId: number; digest: Uint8Array }[],
  data: Uint8Array,
): Uint8Array {
  return concat(
    u32(pcr),
    u32(type),
    u32(digests.length),
    ...digests.map((d) => concat(u16(d.algId), d.digest)),
    u32(data.length),
    data,
  );
}

export function buildLegacyLog(events: SynthEvent[]): Uint8Array {
  return concat(...events.map((e) => legacyRecord(e.pcr, e.type, digestOf(e, 'sha1'), e.data)));
}

export function buildAgileLog(banks: Bank[], events: SynthEvent[]): Uint8Array {
  const header = legacyRecord(
    0,
    EV.NO_ACTION,
    new Uint8Array(20),
    specIdData(banks.map((b) => ({ algId: ALG[b], size: SIZE[b] }))),
  );
  const records = events.map((e) =>
    agileRecord(
      e.pcr,
      e.type,
      banks.filter((b) => !e.omit?.includes(b)).map((b) => ({ algId: ALG[b], digest: digestOf(e, b) })),
      e.data,
    ),
  );
  return concat(header, ...records);
}

export function startupLocality(locality: number): SynthEvent {
  return { pcr: 0, type: EV.NO_ACTION, data: concat(ascii('StartupLocality\0'), new Uint8Array([locality])) };
}

/**
 * Reference replay written from the PC Client PFP text, independent of src/: returns
 * bank → pcr → hex for PCRs that at least one event extended.
 */
export function referenceReplay(banks: Bank[], events: SynthEvent[]): Record<string, Record<string, string>> {
  let locality = 0;
  let seenPcr0 = false;
  for (const e of events) {
    const sig = new TextDecoder('latin1').decode(e.data.subarray(0, 16));
    if (e.pcr === 0 && e.type === EV.NO_ACTION && sig === 'StartupLocality\0' && !seenPcr0)
      locality = e.data[16] ?? 0;
    if (e.pcr === 0 && e.type !== EV.NO_ACTION) seenPcr0 = true;
  }
  if (events.some((e) => e.pcr === 0 && e.type === EV.EFI_HCRTM_EVENT)) locality = 4;
  const out: Record<string, Record<string, string>> = {};
  for (const bank of banks) {
    const pcrs = new Map<number, Uint8Array>();
    for (const e of events) {
      if (e.type === EV.NO_ACTION || e.omit?.includes(bank)) continue;
      let v = pcrs.get(e.pcr);
      if (v === undefined) {
        v = new Uint8Array(SIZE[bank]);
        if (e.pcr >= 17 && e.pcr <= 22) v.fill(0xff);
        if (e.pcr === 0) v[v.length - 1] = locality;
      }
      pcrs.set(e.pcr, hash(bank, v, digestOf(e, bank)));
    }
    if (pcrs.size === 0) continue;
    out[bank] = {};
    for (const pcr of [...pcrs.keys()].sort((a, b) => a - b)) out[bank][String(pcr)] = hex(pcrs.get(pcr)!);
  }
  return out;
}

/** A typical boot: CRTM version, firmware, variables, separators, boot app, IPL, DRTM PCRs. */
export function typicalBoot(): SynthEvent[] {
  const sep = u32(0);
  return [
    { pcr: 0, type: EV.S_CRTM_VERSION, data: ascii('1.0\0') },
    { pcr: 0, type: EV.POST_CODE, data: ascii('POST CODE') },
    { pcr: 7, type: EV.EFI_VARIABLE_DRIVER_CONFIG, data: ascii('SecureBoot=1') },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: EV.SEPARATOR, data: sep })),
    { pcr: 4, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: ascii('\\EFI\\BOOT\\BOOTX64.EFI') },
    { pcr: 4, type: EV.EFI_ACTION, data: ascii('Calling EFI Application from Boot Option') },
    { pcr: 8, type: EV.IPL, data: ascii('grub_cmd: linux /vmlinuz\0') },
    { pcr: 9, type: EV.IPL, data: ascii('/boot/vmlinuz\0') },
    { pcr: 17, type: EV.IPL, data: ascii('DRTM') },
    { pcr: 22, type: EV.IPL, data: ascii('DRTM 22') },
    { pcr: 23, type: EV.IPL, data: ascii('app 23') },
    { pcr: 16, type: EV.IPL, data: ascii('debug 16') },
  ];
}
