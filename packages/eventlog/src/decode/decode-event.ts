// decodeEvent: one event's data into its meaning, by event type. Pure and total: hostile data
// gives { kind: 'raw', error: { code, offset } } with the bytes kept, never an exception.
import {
  EV_ACTION,
  EV_COMPACT_HASH,
  EV_CPU_MICROCODE,
  EV_EFI_ACTION,
  EV_EFI_BOOT_SERVICES_APPLICATION,
  EV_EFI_BOOT_SERVICES_DRIVER,
  EV_EFI_GPT_EVENT,
  EV_EFI_GPT_EVENT2,
  EV_EFI_HANDOFF_TABLES,
  EV_EFI_HANDOFF_TABLES2,
  EV_EFI_HCRTM_EVENT,
  EV_EFI_PLATFORM_FIRMWARE_BLOB,
  EV_EFI_PLATFORM_FIRMWARE_BLOB2,
  EV_EFI_RUNTIME_SERVICES_DRIVER,
  EV_EFI_VARIABLE_AUTHORITY,
  EV_EFI_VARIABLE_BOOT,
  EV_EFI_VARIABLE_BOOT2,
  EV_EFI_VARIABLE_DRIVER_CONFIG,
  EV_EVENT_TAG,
  EV_IPL,
  EV_IPL_PARTITION_DATA,
  EV_NO_ACTION,
  EV_NONHOST_CODE,
  EV_NONHOST_CONFIG,
  EV_NONHOST_INFO,
  EV_OMIT_BOOT_DEVICE_EVENTS,
  EV_PLATFORM_CONFIG_FLAGS,
  EV_POST_CODE,
  EV_POST_CODE2,
  EV_S_CRTM_CONTENTS,
  EV_S_CRTM_VERSION,
  EV_SEPARATOR,
  EV_TABLE_OF_DEVICES,
  eventTypeName,
} from '../event-types.ts';
import type { CertificateInspector } from './certificate.ts';
import { checkEventDigest } from './digest-check.ts';
import { parseVariable } from './efi-variable.ts';
import {
  crtmVersion,
  firmwareBlob,
  firmwareBlob2,
  handoffTables,
  handoffTables2,
  imageLoad,
  postCode,
  taggedEvent,
} from './firmware.ts';
import { gptData } from './gpt.ts';
import { iplContent } from './ipl.ts';
import { noAction } from './no-action.ts';
import type { DigestQuirk } from './quirks.ts';
import { DecodeFault } from './reader.ts';
import { asciiz, isPrintableAscii } from './text.ts';
import type { DecodedBody, DecodedEvent, DecodeInput, HashFunction } from './types.ts';

export interface DecodeOptions {
  /** Richer certificate details (e.g. from node:crypto X509Certificate); the core only reads the subject CN. */
  readonly inspectCertificate?: CertificateInspector;
  /** Quirk table for the digest check (default: DIGEST_QUIRKS). */
  readonly quirks?: readonly DigestQuirk[];
}

/** Separator values PFP 10.4.4 defines as "an error occurred" (0x00000001) and legacy BIOS/SeaBIOS use (0xFFFFFFFF). */
const ERROR_SEPARATORS = new Set([0x00000001, 0xffffffff]);

/** Leading printable ASCII of vendor events ("GCE NonHostInfo", "Dell Configuration Information 1"). */
function label(data: Uint8Array): string | undefined {
  let n = 0;
  while (n < data.length && n < 128 && data[n]! >= 0x20 && data[n]! <= 0x7e) n++;
  return n >= 3 ? asciiz(data.subarray(0, n)) : undefined;
}

function text(data: Uint8Array): DecodedBody {
  if (data.length === 0) return { kind: 'text', text: '' };
  if (!isPrintableAscii(data)) throw new DecodeFault('bad-value', 'event text is not printable ASCII', 0);
  return { kind: 'text', text: asciiz(data) };
}

function body(input: DecodeInput, options: DecodeOptions): DecodedBody {
  const { type, data } = input;
  switch (type) {
    case EV_S_CRTM_VERSION:
      return { kind: 'crtm-version', ...crtmVersion(data) };
    case EV_POST_CODE:
      return { kind: 'post-code', ...postCode(data) };
    case EV_POST_CODE2:
      return isPrintableAscii(data)
        ? { kind: 'post-code', text: asciiz(data) }
        : { kind: 'post-code', blob: firmwareBlob2(data) };
    case EV_S_CRTM_CONTENTS:
      if (data.length === 16 && !isPrintableAscii(data))
        return { kind: 'firmware-blob', blob: firmwareBlob(data) };
      return { kind: 'opaque', ...labelled(data) };
    case EV_EFI_PLATFORM_FIRMWARE_BLOB:
      return { kind: 'firmware-blob', blob: firmwareBlob(data) };
    case EV_EFI_PLATFORM_FIRMWARE_BLOB2:
      return { kind: 'firmware-blob', blob: firmwareBlob2(data) };
    case EV_EFI_VARIABLE_DRIVER_CONFIG:
    case EV_EFI_VARIABLE_BOOT:
    case EV_EFI_VARIABLE_BOOT2:
    case EV_EFI_VARIABLE_AUTHORITY:
      return {
        kind: 'efi-variable',
        variable: parseVariable(data, options.inspectCertificate, type === EV_EFI_VARIABLE_AUTHORITY),
      };
    case EV_EFI_BOOT_SERVICES_APPLICATION:
    case EV_EFI_BOOT_SERVICES_DRIVER:
    case EV_EFI_RUNTIME_SERVICES_DRIVER:
      return {
        kind: 'image-load',
        image: imageLoad(data),
        authenticode: input.digests.map((d) => ({ bank: d.bank, digest: d.digest })),
      };
    case EV_EFI_GPT_EVENT:
    case EV_EFI_GPT_EVENT2:
      return { kind: 'gpt', gpt: gptData(data) };
    case EV_ACTION:
    case EV_EFI_ACTION:
    case EV_EFI_HCRTM_EVENT:
    case EV_OMIT_BOOT_DEVICE_EVENTS:
      return text(data);
    case EV_SEPARATOR: {
      if (data.length !== 4) return { kind: 'separator', value: undefined, error: false };
      const value = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
      return { kind: 'separator', value, error: ERROR_SEPARATORS.has(value) };
    }
    case EV_IPL:
      return { kind: 'ipl', ipl: iplContent(data) };
    case EV_EFI_HANDOFF_TABLES:
      return { kind: 'handoff-tables', ...handoffTables(data) };
    case EV_EFI_HANDOFF_TABLES2:
      return { kind: 'handoff-tables', ...handoffTables2(data) };
    case EV_TABLE_OF_DEVICES:
      // Some firmware (seen on a GDC host) logs UEFI_HANDOFF_TABLE_POINTERS here; otherwise vendor-defined.
      if (data.length >= 8 && (data.length - 8) % 24 === 0) {
        try {
          return { kind: 'handoff-tables', ...handoffTables(data) };
        } catch (e) {
          // Not a table list after all; anything but a DecodeFault is a bug decodeEvent must report.
          if (!(e instanceof DecodeFault)) throw e;
        }
      }
      return { kind: 'opaque', ...labelled(data) };
    case EV_NO_ACTION:
      return { kind: 'no-action', noAction: noAction(data) };
    case EV_NONHOST_CODE:
    case EV_NONHOST_CONFIG:
    case EV_EVENT_TAG:
      // TDX firmware (CCEL) logs plain text ("LOADED_IMAGE::LoadOptions") under this type: opaque then.
      try {
        return { kind: 'tagged', ...taggedEvent(data) };
      } catch (e) {
        if (!(e instanceof DecodeFault)) throw e;
        return { kind: 'opaque', ...labelled(data) };
      }
    case EV_NONHOST_INFO:
    case EV_COMPACT_HASH:
    case EV_PLATFORM_CONFIG_FLAGS:
    case EV_CPU_MICROCODE:
    case EV_IPL_PARTITION_DATA:
      return { kind: 'opaque', ...labelled(data) };
    default:
      return { kind: 'raw' };
  }
}

function labelled(data: Uint8Array): { label?: string } {
  const l = label(data);
  return l === undefined ? {} : { label: l };
}

/**
 * Decode one event's data. Pure: no I/O, Uint8Array only. Never throws on hostile data: a malformed
 * body gives kind 'raw' with `error` ({ code, offset }); unknown types give kind 'raw' without error.
 * With `hash`, the result carries `digestCheck` (see checkEventDigest).
 */
export function decodeEvent(
  input: DecodeInput,
  hash?: HashFunction,
  options: DecodeOptions = {},
): DecodedEvent {
  let decoded: DecodedBody;
  try {
    decoded = body(input, options);
  } catch (e) {
    // Decoders only raise DecodeFault; anything else is a bug, still reported instead of thrown.
    const error =
      e instanceof DecodeFault
        ? e.toError()
        : { code: 'decoder-bug' as const, offset: 0, message: e instanceof Error ? e.message : String(e) };
    decoded = { kind: 'raw', error };
  }
  const base = { pcr: input.pcr, type: input.type, typeName: eventTypeName(input.type), data: input.data };
  if (!hash) return { ...decoded, ...base };
  return { ...decoded, ...base, digestCheck: checkEventDigest(input, hash, options.quirks) };
}
