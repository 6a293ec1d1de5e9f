// UEFI_VARIABLE_DATA (PC Client PFP 10.2.6) and what the well-known variables hold:
// Secure Boot state, signature databases, BootOrder, Boot#### load options, shim's SbatLevel.
import type { CertificateInspector } from './certificate.ts';
import { type DevicePath, decodeDevicePath } from './device-path.ts';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE, guidName, guidText, SHIM_LOCK } from './guid.ts';
import { DecodeFault, type DecodeError, Reader } from './reader.ts';
import {
  parseSignatureData,
  parseSignatureLists,
  type SignatureEntry,
  type SignatureList,
} from './signature-list.ts';
import { asciiz, ucs2z } from './text.ts';

export interface LoadOption {
  readonly attributes: number;
  /** LOAD_OPTION_ACTIVE. */
  readonly active: boolean;
  readonly description: string;
  readonly devicePath: DevicePath;
  readonly optionalData: Uint8Array;
}

export interface SbatEntry {
  readonly component: string;
  readonly generation: string;
  readonly rest: readonly string[];
}

/** Meaning of the variable's bytes, when the variable is one we know. */
export type VariableContent =
  | { readonly form: 'empty' }
  | { readonly form: 'byte'; readonly value: number }
  | { readonly form: 'signature-database'; readonly lists: readonly SignatureList[] }
  | { readonly form: 'signature-data'; readonly signature: SignatureEntry }
  | { readonly form: 'boot-order'; readonly order: readonly number[] }
  | { readonly form: 'load-option'; readonly option: LoadOption }
  | { readonly form: 'sbat'; readonly text: string; readonly entries: readonly SbatEntry[] }
  | { readonly form: 'bytes' }
  /** A known variable whose bytes did not parse; the variable itself is still decoded. */
  | { readonly form: 'unparsed'; readonly error: DecodeError };

export interface EfiVariable {
  readonly guid: string;
  readonly guidName: string | undefined;
  readonly name: string;
  /** VariableData. */
  readonly data: Uint8Array;
  /** Byte offset of VariableData in the event data. */
  readonly dataOffset: number;
  /** Length of the UEFI_VARIABLE_DATA structure as its own lengths declare it. */
  readonly structureLength: number;
  /** Event bytes after the declared structure (shim 15 logs 6 padding bytes). */
  readonly trailingBytes: number;
  readonly content: VariableContent;
}

const BYTE_VARIABLES = new Set([
  'SecureBoot',
  'SetupMode',
  'AuditMode',
  'DeployedMode',
  'MokSBState',
  'MokSBStateRT',
]);
const SIGNATURE_DATABASES = new Set([
  'PK',
  'KEK',
  'db',
  'dbx',
  'dbt',
  'dbr',
  'PKDefault',
  'KEKDefault',
  'dbDefault',
  'dbxDefault',
]);
const SHIM_DATABASES = new Set([
  'MokList',
  'MokListX',
  'MokListRT',
  'MokListXRT',
  'MokListTrusted',
  'vendor_db',
  'vendor_dbx',
]);

function loadOption(r: Reader): LoadOption {
  const attributes = r.u32('Attributes');
  const pathLen = r.u16('FilePathListLength');
  // Description is a NUL-terminated CHAR16 string; find its end within the bytes left.
  const start = r.pos;
  let end = -1;
  for (let i = start; i + 1 < r.bytes.length; i += 2) {
    if (r.bytes[i] === 0 && r.bytes[i + 1] === 0) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new DecodeFault('truncated', 'load option Description has no terminating NUL', r.offset);
  const description = ucs2z(r.bytesN(end + 2 - start, 'Description'));
  const at = r.offset;
  if (pathLen > r.remaining) {
    throw new DecodeFault(
      'length-too-large',
      `FilePathListLength ${pathLen} exceeds the ${r.remaining} bytes left`,
      at,
    );
  }
  const devicePath = decodeDevicePath(r.bytesN(pathLen, 'FilePathList'), at);
  return { attributes, active: (attributes & 1) !== 0, description, devicePath, optionalData: r.rest() };
}

function sbat(data: Uint8Array): VariableContent {
  const text = asciiz(data);
  const entries: SbatEntry[] = [];
  for (const line of text.split('\n').slice(0, 4096)) {
    const fields = line.trim().split(',');
    if (fields.length < 2 || !fields[0]) continue;
    entries.push({ component: fields[0], generation: fields[1] ?? '', rest: fields.slice(2) });
  }
  return { form: 'sbat', text, entries };
}

function content(
  guid: string,
  name: string,
  r: Reader,
  inspect: CertificateInspector | undefined,
  authority: boolean,
): VariableContent {
  if (r.remaining === 0) return { form: 'empty' };
  try {
    // shim's SbatLevel is CSV text, whichever event type carries it.
    if (name === 'SbatLevel' || name === 'SbatLevelRT') return sbat(r.rest());
    if (authority) {
      // EV_EFI_VARIABLE_AUTHORITY carries the one EFI_SIGNATURE_DATA that authorised an image.
      if (r.remaining > 16) return { form: 'signature-data', signature: parseSignatureData(r, inspect) };
      return r.remaining === 1 ? { form: 'byte', value: r.u8('value') } : { form: 'bytes' };
    }
    const known = guid === EFI_GLOBAL_VARIABLE || guid === EFI_IMAGE_SECURITY_DATABASE || guid === SHIM_LOCK;
    if (!known) return { form: 'bytes' };
    if (BYTE_VARIABLES.has(name) && r.remaining === 1) return { form: 'byte', value: r.u8('value') };
    if (SIGNATURE_DATABASES.has(name) || SHIM_DATABASES.has(name)) {
      return { form: 'signature-database', lists: parseSignatureLists(r, inspect) };
    }
    if (name === 'BootOrder' || name === 'DriverOrder') {
      if (r.remaining % 2 !== 0)
        throw new DecodeFault('bad-value', `${name} has an odd length ${r.remaining}`, r.offset);
      const order: number[] = [];
      while (r.remaining > 0) order.push(r.u16('BootOrder entry'));
      return { form: 'boot-order', order };
    }
    if (/^(Boot|Driver|SysPrep|PlatformRecovery)[0-9A-Fa-f]{4}$/.test(name)) {
      return { form: 'load-option', option: loadOption(r) };
    }
    if ((name === 'BootNext' || name === 'BootCurrent') && r.remaining === 2)
      return { form: 'boot-order', order: [r.u16(name)] };
    return { form: 'bytes' };
  } catch (e) {
    if (e instanceof DecodeFault) return { form: 'unparsed', error: e.toError() };
    throw e;
  }
}

/** Parse UEFI_VARIABLE_DATA filling `data`. Throws DecodeFault when the structure itself is malformed. */
export function parseVariable(
  data: Uint8Array,
  inspect: CertificateInspector | undefined,
  authority: boolean,
): EfiVariable {
  const r = new Reader(data);
  const guid = guidText(r.bytesN(16, 'VariableName'));
  const nameLenAt = r.offset;
  const nameLen = r.length64('UnicodeNameLength', 2);
  const dataLenAt = r.offset;
  const dataLen64 = r.u64('VariableDataLength');
  if (dataLen64 > BigInt(r.remaining)) {
    throw new DecodeFault(
      'length-too-large',
      `VariableDataLength ${dataLen64} exceeds the ${r.remaining} bytes left`,
      dataLenAt,
    );
  }
  const dataLen = Number(dataLen64);
  if (nameLen * 2 + dataLen > r.remaining) {
    throw new DecodeFault(
      'length-too-large',
      `name (${nameLen} chars) and data (${dataLen} bytes) exceed the ${r.remaining} bytes left`,
      nameLenAt,
    );
  }
  const name = ucs2z(r.bytesN(nameLen * 2, 'UnicodeName'));
  const dataOffset = r.offset;
  const body = r.sub(dataLen, 'VariableData');
  const structureLength = r.pos;
  return {
    guid,
    guidName: guidName(guid),
    name,
    data: body.bytes,
    dataOffset,
    structureLength,
    trailingBytes: r.remaining,
    content: content(guid, name, body, inspect, authority),
  };
}
