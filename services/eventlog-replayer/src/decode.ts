// One event's data → what policy and operators read (proto DecodedEvent) plus the facts the
// measurements summarise: Secure Boot state, dbx SHA-256 entries, boot application path.
// Reads untrusted bytes: the caller decides from the replay whether any of it counts.
import { decodeEvent, type UntrustedEvent } from '@hostgate/eventlog';
import type { DecodedEvent as ProtoDecodedEvent } from '@hostgate/protos';

const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003;
/** PFP 3.3.4.8: Secure Boot configuration (SecureBoot, PK, KEK, db, dbx) is measured into PCR 7. */
const SECURE_BOOT_PCR = 7;
const MAX_DESCRIPTION = 4096;

export interface PolicyMeaning {
  readonly decoded: ProtoDecodedEvent | undefined;
  /** Value of the SecureBoot variable when this event measured it on PCR 7. */
  readonly secureBoot?: boolean;
  /** SHA-256 entries when this event measured dbx on PCR 7. */
  readonly dbx?: Uint8Array[];
  /** Set for EV_EFI_BOOT_SERVICES_APPLICATION. */
  readonly bootApplication?: { readonly path: string };
}

/** Printable characters only (control characters become U+FFFD), at most 4096. */
export function printable(s: string): string {
  let clean = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    clean += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? '\uFFFD' : ch;
  }
  return clean.length <= MAX_DESCRIPTION ? clean : `${clean.slice(0, MAX_DESCRIPTION - 1)}…`;
}

export function decodeForPolicy(e: UntrustedEvent): PolicyMeaning {
  const d = decodeEvent(e);
  switch (d.kind) {
    case 'efi-variable': {
      const v = d.variable;
      const decoded: ProtoDecodedEvent = {
        kind: 'efi-variable',
        variableName: printable(v.name),
        variableGuid: v.guid,
      };
      if (v.content.form === 'load-option') {
        decoded.imagePath = printable(v.content.option.devicePath.text);
        decoded.description = printable(v.content.option.description);
      }
      if (e.pcr === SECURE_BOOT_PCR && v.guid === EFI_GLOBAL_VARIABLE && v.name === 'SecureBoot') {
        if (v.content.form === 'byte') {
          const on = v.content.value !== 0;
          decoded.secureBoot = on;
          return { decoded, secureBoot: on };
        }
        // An empty SecureBoot variable (no Secure Boot support) measures "off".
        if (v.content.form === 'empty') {
          decoded.secureBoot = false;
          return { decoded, secureBoot: false };
        }
      }
      if (
        e.pcr === SECURE_BOOT_PCR &&
        v.guid === EFI_IMAGE_SECURITY_DATABASE &&
        v.name === 'dbx' &&
        (v.content.form === 'signature-database' || v.content.form === 'empty')
      ) {
        const entries: Uint8Array[] = [];
        if (v.content.form === 'signature-database')
          for (const list of v.content.lists)
            for (const entry of list.entries) if (entry.sha256 !== undefined) entries.push(entry.sha256);
        return { decoded, dbx: entries };
      }
      return { decoded };
    }
    case 'image-load': {
      const path = printable(d.image.devicePath.text);
      if (e.type === EV_EFI_BOOT_SERVICES_APPLICATION)
        return { decoded: { kind: 'boot-application', imagePath: path }, bootApplication: { path } };
      return { decoded: { kind: 'other', imagePath: path } };
    }
    case 'separator':
      return { decoded: { kind: 'separator', description: d.error ? 'error separator' : '' } };
    case 'firmware-blob':
      return {
        decoded: { kind: 'firmware-blob', description: printable(d.blob.description ?? '') },
      };
    case 'crtm-version':
      return { decoded: { kind: 'scrtm-version', description: printable(d.version ?? d.guid ?? '') } };
    case 'text':
      return { decoded: { kind: 'action', description: printable(d.text) } };
    case 'gpt':
      return { decoded: { kind: 'gpt' } };
    case 'ipl':
      return { decoded: { kind: 'ipl', description: printable(d.ipl.text) } };
    case 'no-action':
      return { decoded: { kind: 'no-action' } };
    case 'post-code':
      return d.blob !== undefined
        ? { decoded: { kind: 'firmware-blob', description: printable(d.blob.description ?? '') } }
        : { decoded: { kind: 'other', description: printable(d.text ?? '') } };
    case 'opaque':
      return { decoded: { kind: 'other', description: printable(d.label ?? '') } };
    case 'raw':
      return { decoded: undefined };
    default:
      return { decoded: { kind: 'other' } };
  }
}
