// Platform firmware events: S-CRTM version, POST codes, firmware blobs, handoff tables, image loads
// (PC Client PFP 10.2 and 10.4).
import { type DevicePath, decodeDevicePath } from './device-path.ts';
import { guidName, guidText } from './guid.ts';
import { DecodeFault, Reader } from './reader.ts';
import { asciiz, isPrintableAscii, isPrintableUcs2, ucs2z } from './text.ts';

/** UEFI_PLATFORM_FIRMWARE_BLOB(2). */
export interface FirmwareBlob {
  readonly base: bigint;
  readonly length: bigint;
  /** BLOB2 only. */
  readonly description?: string;
}

export interface HandoffTable {
  readonly guid: string;
  readonly name: string | undefined;
  readonly address: bigint;
}

/** UEFI_IMAGE_LOAD_EVENT. */
export interface ImageLoad {
  readonly location: bigint;
  readonly length: bigint;
  readonly linkTimeAddress: bigint;
  readonly devicePath: DevicePath;
  /** Bytes after the device path: shim logs the C struct's padding (8 or 9 bytes) after an empty path. */
  readonly trailingBytes: number;
}

export function trailing(r: Reader, what: string): void {
  if (r.remaining > 0)
    throw new DecodeFault('trailing-bytes', `${r.remaining} bytes after ${what}`, r.offset);
}

/** EV_S_CRTM_VERSION: a UCS-2 version string, or a GUID naming the version; other forms are vendor-defined (neither set). */
export function crtmVersion(data: Uint8Array): { version?: string; guid?: string } {
  if (isPrintableUcs2(data)) return { version: ucs2z(data) };
  if (data.length === 16) return { guid: guidText(data) };
  if (isPrintableAscii(data)) return { version: asciiz(data) };
  // An all-NUL UCS-2 string (seen on several real machines) is an empty version.
  if (data.length >= 2 && data.length % 2 === 0 && data.every((x) => x === 0)) return { version: '' };
  // Vendor binaries (a 280-byte structure on some Windows machines) are kept as bytes.
  return {};
}

export function firmwareBlob(data: Uint8Array): FirmwareBlob {
  const r = new Reader(data);
  const base = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  trailing(r, 'UEFI_PLATFORM_FIRMWARE_BLOB');
  return { base, length };
}

export function firmwareBlob2(data: Uint8Array): FirmwareBlob {
  const r = new Reader(data);
  const n = r.u8('BlobDescriptionSize');
  const description = asciiz(r.bytesN(n, 'BlobDescription'));
  const base = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  trailing(r, 'UEFI_PLATFORM_FIRMWARE_BLOB2');
  return { description, base, length };
}

/** EV_POST_CODE: an ASCII label ("ACPI DATA", "SMM CODE"…) or a UEFI_PLATFORM_FIRMWARE_BLOB. */
export function postCode(data: Uint8Array): { text?: string; blob?: FirmwareBlob } {
  if (data.length === 16 && !isPrintableAscii(data)) return { blob: firmwareBlob(data) };
  if (isPrintableAscii(data)) return { text: asciiz(data) };
  throw new DecodeFault('bad-value', 'POST code is neither ASCII text nor a 16-byte firmware blob', 0);
}

/** Most configuration tables read from one event. */
const MAX_TABLES = 4096;

function tables(r: Reader): HandoffTable[] {
  const n = r.length64('NumberOfTables', 24);
  if (n > MAX_TABLES)
    throw new DecodeFault('too-many-items', `${n} tables (limit ${MAX_TABLES})`, r.offset - 8);
  const out: HandoffTable[] = [];
  for (let i = 0; i < n; i++) {
    const guid = guidText(r.bytesN(16, 'VendorGuid'));
    out.push({ guid, name: guidName(guid), address: r.u64('VendorTable') });
  }
  trailing(r, 'the table list');
  return out;
}

/** UEFI_HANDOFF_TABLE_POINTERS. */
export function handoffTables(data: Uint8Array): { tables: HandoffTable[] } {
  return { tables: tables(new Reader(data)) };
}

/** UEFI_HANDOFF_TABLE_POINTERS2. */
export function handoffTables2(data: Uint8Array): { description: string; tables: HandoffTable[] } {
  const r = new Reader(data);
  const n = r.u8('TableDescriptionSize');
  const description = asciiz(r.bytesN(n, 'TableDescription'));
  return { description, tables: tables(r) };
}

/** UEFI_IMAGE_LOAD_EVENT. */
export function imageLoad(data: Uint8Array): ImageLoad {
  const r = new Reader(data);
  const location = r.u64('ImageLocationInMemory');
  const length = r.u64('ImageLengthInMemory');
  const linkTimeAddress = r.u64('ImageLinkTimeAddress');
  const pathLen = r.length64('LengthOfDevicePath');
  const at = r.offset;
  const devicePath = decodeDevicePath(r.bytesN(pathLen, 'DevicePath'), at);
  return { location, length, linkTimeAddress, devicePath, trailingBytes: r.remaining };
}

/** TCG_PCClientTaggedEvent: taggedEventID, taggedEventDataSize, taggedEventData filling the event. */
export function taggedEvent(data: Uint8Array): { eventId: number; eventData: Uint8Array } {
  const r = new Reader(data);
  const eventId = r.u32('taggedEventID');
  const n = r.length32('taggedEventDataSize');
  const eventData = r.bytesN(n, 'taggedEventData');
  trailing(r, 'TCG_PCClientTaggedEvent');
  return { eventId, eventData };
}
