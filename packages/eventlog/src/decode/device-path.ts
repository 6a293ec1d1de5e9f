// EFI_DEVICE_PATH_PROTOCOL (UEFI spec 10.3) into nodes and the EDK2-style text form
// (PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,…)/\EFI\BOOT\BOOTX64.EFI).
import { guidName, guidText } from './guid.ts';
import { ucs2z } from './text.ts';

export interface DevicePathNode {
  readonly type: number;
  readonly subType: number;
  /** Node payload after the 4-byte header. */
  readonly data: Uint8Array;
  readonly text: string;
}

export interface DevicePath {
  readonly nodes: readonly DevicePathNode[];
  /** Instances joined by ',', nodes by '/'. */
  readonly text: string;
  /** Set when the path was cut short by a malformed node; `nodes` holds what came before. */
  readonly error?: { readonly offset: number; readonly message: string };
}

/** Most nodes decoded from one path, so a hostile path cannot cost unbounded work. */
const MAX_NODES = 512;

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}
function hexBytes(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
function guidLabel(d: Uint8Array, o: number): string {
  const g = guidText(d, o);
  return guidName(g) ?? g;
}

/** EISA PNP id as in ACPI _HID: compressed 3-letter vendor + product. */
function eisaId(hid: number): string {
  if ((hid & 0xffff) !== 0x41d0) return hex(hid);
  return `PNP${(hid >>> 16).toString(16).padStart(4, '0').toUpperCase()}`;
}

function ipv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** Text of one node; `d` is the payload. Every read is guarded by the length test before it. */
export function nodeText(type: number, sub: number, d: Uint8Array): string {
  const n = d.length;
  const generic = () =>
    `Path(${type},${sub}${n > 0 ? `,${hexBytes(d.subarray(0, 64))}${n > 64 ? '…' : ''}` : ''})`;
  switch (type) {
    case 1: // hardware
      if (sub === 1 && n >= 2) return `Pci(${hex(d[1]!)},${hex(d[0]!)})`;
      if (sub === 3 && n >= 20) return `MemoryMapped(${hex(u32(d, 0))},${hex(u64(d, 4))},${hex(u64(d, 12))})`;
      if (sub === 4 && n >= 16)
        return `VenHw(${guidLabel(d, 0)}${n > 16 ? `,${hexBytes(d.subarray(16, 48))}` : ''})`;
      if (sub === 5 && n >= 4) return `Ctrl(${hex(u32(d, 0))})`;
      return generic();
    case 2: // ACPI
      if (sub === 1 && n >= 8) {
        const hid = u32(d, 0);
        const uid = u32(d, 4);
        if (hid === 0x0a0341d0) return `PciRoot(${hex(uid)})`;
        if (hid === 0x0a0841d0) return `PcieRoot(${hex(uid)})`;
        return `Acpi(${eisaId(hid)},${hex(uid)})`;
      }
      if (sub === 2 && n >= 12) return `AcpiEx(${eisaId(u32(d, 0))},${eisaId(u32(d, 8))},${hex(u32(d, 4))})`;
      if (sub === 3 && n >= 4) return `AcpiAdr(${hex(u32(d, 0))})`;
      return generic();
    case 3: // messaging
      switch (sub) {
        case 1:
          if (n >= 4)
            return `Ata(${d[0] ? 'Secondary' : 'Primary'},${d[1] ? 'Slave' : 'Master'},${hex(u16(d, 2))})`;
          break;
        case 2:
          if (n >= 4) return `Scsi(${hex(u16(d, 0))},${hex(u16(d, 2))})`;
          break;
        case 5:
          if (n >= 2) return `USB(${hex(d[0]!)},${hex(d[1]!)})`;
          break;
        case 10:
          if (n >= 16) return `VenMsg(${guidLabel(d, 0)})`;
          break;
        case 11:
          if (n >= 33) {
            const ifType = d[32]!;
            // Ethernet-like interface types carry a 6-byte address in the 32-byte field.
            const len = ifType === 0 || ifType === 1 ? 6 : 32;
            return `MAC(${hexBytes(d.subarray(0, len))},${hex(ifType)})`;
          }
          break;
        case 12:
          if (n >= 15)
            return `IPv4(${ipv4(d, 4)},${u16(d, 12) === 6 ? 'TCP' : u16(d, 12) === 17 ? 'UDP' : hex(u16(d, 12))},${d[14] ? 'Static' : 'DHCP'},${ipv4(d, 0)})`;
          break;
        case 13:
          if (n >= 16) return `IPv6(${hexBytes(d.subarray(16, 32)) || hexBytes(d.subarray(0, 16))})`;
          break;
        case 15:
          if (n >= 7)
            return `UsbClass(${hex(u16(d, 0))},${hex(u16(d, 2))},${hex(d[4]!)},${hex(d[5]!)},${hex(d[6]!)})`;
          break;
        case 17:
          if (n >= 1) return `Unit(${hex(d[0]!)})`;
          break;
        case 18:
          if (n >= 6) return `Sata(${hex(u16(d, 0))},${hex(u16(d, 2))},${hex(u16(d, 4))})`;
          break;
        case 20:
          if (n >= 2) return `Vlan(${u16(d, 0)})`;
          break;
        case 23:
          if (n >= 12) return `NVMe(${hex(u32(d, 0))},${hexBytes(d.subarray(4, 12))})`;
          break;
        case 24:
          return `Uri(${new TextDecoder('latin1').decode(d)})`;
        case 26:
          if (n >= 1) return `SD(${d[0]})`;
          break;
        case 29:
          if (n >= 1) return `eMMC(${d[0]})`;
          break;
      }
      return generic();
    case 4: // media
      switch (sub) {
        case 1:
          if (n >= 38) {
            const part = u32(d, 0);
            const start = u64(d, 4);
            const size = u64(d, 12);
            const mbrType = d[36]!;
            const sigType = d[37]!;
            const sig = sigType === 2 ? guidText(d, 20) : sigType === 1 ? hex(u32(d, 20)) : '0';
            const fmt = mbrType === 2 ? 'GPT' : mbrType === 1 ? 'MBR' : hex(mbrType);
            return `HD(${part},${fmt},${sig},${hex(start)},${hex(size)})`;
          }
          break;
        case 2:
          if (n >= 20) return `CDROM(${hex(u32(d, 0))},${hex(u64(d, 4))},${hex(u64(d, 12))})`;
          break;
        case 3:
          if (n >= 16) return `VenMedia(${guidLabel(d, 0)})`;
          break;
        case 4:
          return ucs2z(d);
        case 5:
          if (n >= 16) return `Media(${guidLabel(d, 0)})`;
          break;
        case 6:
          if (n >= 16) return `FvFile(${guidLabel(d, 0)})`;
          break;
        case 7:
          if (n >= 16) return `Fv(${guidLabel(d, 0)})`;
          break;
        case 8:
          if (n >= 20) return `Offset(${hex(u64(d, 4))},${hex(u64(d, 12))})`;
          break;
        case 9:
          if (n >= 34) return `RamDisk(${hex(u64(d, 0))},${hex(u64(d, 8))},${guidLabel(d, 16)})`;
          break;
      }
      return generic();
    case 5: // BIOS boot specification
      if (sub === 1 && n >= 4)
        return `BBS(${hex(u16(d, 0))},${new TextDecoder('latin1').decode(d.subarray(4)).replace(/\0.*$/s, '')})`;
      return generic();
    default:
      return generic();
  }
}

/** Decode a device path list. Never throws: a malformed node ends the path with `error` set. */
export function decodeDevicePath(b: Uint8Array, baseOffset = 0): DevicePath {
  const nodes: DevicePathNode[] = [];
  const instances: string[][] = [[]];
  let o = 0;
  let error: DevicePath['error'];
  while (o < b.length) {
    if (nodes.length >= MAX_NODES) {
      error = { offset: baseOffset + o, message: `more than ${MAX_NODES} nodes` };
      break;
    }
    if (b.length - o < 4) {
      error = { offset: baseOffset + o, message: `node header needs 4 bytes, ${b.length - o} left` };
      break;
    }
    const type = b[o]!;
    const sub = b[o + 1]!;
    const len = u16(b, o + 2);
    if (len < 4 || len > b.length - o) {
      error = { offset: baseOffset + o, message: `node length ${len} outside 4..${b.length - o}` };
      break;
    }
    const data = b.subarray(o + 4, o + len);
    o += len;
    if (type === 0x7f) {
      nodes.push({ type, subType: sub, data, text: sub === 1 ? ',' : '' });
      if (sub === 0xff) break; // end of entire path
      instances.push([]);
      continue;
    }
    const text = nodeText(type, sub, data);
    nodes.push({ type, subType: sub, data, text });
    instances[instances.length - 1]!.push(text);
  }
  const text = instances
    .filter((i) => i.length > 0)
    .map((i) => i.join('/'))
    .join(',');
  return error ? { nodes, text: `${text}${text ? '/' : ''}<malformed>`, error } : { nodes, text };
}
