// describeEvent: one line of plain text per decoded event, for `hostgate eventlog show`.
import type { SignatureList } from './signature-list.ts';
import { oneLine } from './text.ts';
import type { DecodedEvent, DigestCheck } from './types.ts';

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

/** ` "WBCL"` for a separator whose 4 bytes are printable (Windows), else ''. */
function printable4(b: Uint8Array): string {
  return b.length === 4 && b.every((c) => c >= 0x20 && c <= 0x7e) ? ` "${String.fromCharCode(...b)}"` : '';
}

function hexPrefix(b: Uint8Array, n = 16): string {
  let s = '';
  for (const x of b.subarray(0, n)) s += x.toString(16).padStart(2, '0');
  return b.length > n ? `${s}…` : s;
}

function signatureSummary(lists: readonly SignatureList[]): string {
  let certs = 0;
  let hashes = 0;
  let other = 0;
  const names: string[] = [];
  for (const l of lists) {
    for (const e of l.entries) {
      if (e.certificate) {
        certs++;
        if (e.certificate.subjectCN && names.length < 3) names.push(e.certificate.subjectCN);
      } else if (e.sha256) hashes++;
      else other++;
    }
  }
  const parts = [];
  if (certs)
    parts.push(
      `${certs} cert${certs > 1 ? 's' : ''}${names.length ? ` (${names.join('; ')}${certs > names.length ? '; …' : ''})` : ''}`,
    );
  if (hashes) parts.push(`${hashes} SHA-256 hash${hashes > 1 ? 'es' : ''}`);
  if (other) parts.push(`${other} other`);
  return parts.length ? parts.join(', ') : 'empty';
}

function variableSummary(e: Extract<DecodedEvent, { kind: 'efi-variable' }>): string {
  const v = e.variable;
  const c = v.content;
  let what: string;
  switch (c.form) {
    case 'empty':
      what = '(empty)';
      break;
    case 'byte':
      what =
        v.name === 'SecureBoot'
          ? c.value === 1
            ? 'enabled'
            : c.value === 0
              ? 'disabled'
              : hex(c.value)
          : hex(c.value);
      break;
    case 'signature-database':
      what = signatureSummary(c.lists);
      break;
    case 'signature-data':
      what = c.signature.certificate
        ? `cert ${c.signature.certificate.subjectCN ?? '(no CN)'}`
        : c.signature.sha256
          ? `SHA-256 ${hexPrefix(c.signature.sha256, 32)}`
          : `${c.signature.data.length} bytes`;
      break;
    case 'boot-order':
      what = c.order.map((n) => `Boot${n.toString(16).toUpperCase().padStart(4, '0')}`).join(',');
      break;
    case 'load-option':
      what = `"${c.option.description}"${c.option.active ? '' : ' (inactive)'} ${c.option.devicePath.text}`;
      break;
    case 'sbat':
      what = c.entries.map((s) => `${s.component},${s.generation}`).join(' ');
      break;
    case 'bytes':
      what = `${v.data.length} bytes`;
      break;
    case 'unparsed':
      what = `unparsed (${c.error.code} at ${c.error.offset})`;
      break;
  }
  return `${v.name} = ${what}`;
}

/** One-line human summary of a decoded event (no PCR or type: the table shows those in their own columns). */
export function describeEvent(e: DecodedEvent): string {
  let s: string;
  switch (e.kind) {
    case 'raw':
      s = e.error
        ? `undecodable (${e.error.code} at ${e.error.offset}): ${e.data.length} bytes`
        : `${e.data.length} bytes ${hexPrefix(e.data)}`;
      break;
    case 'crtm-version':
      s =
        e.version !== undefined
          ? `S-CRTM version "${e.version}"`
          : e.guid !== undefined
            ? `S-CRTM version GUID ${e.guid}`
            : `S-CRTM version, vendor-defined (${e.data.length} bytes)`;
      break;
    case 'post-code':
      s =
        e.text !== undefined
          ? e.text
          : e.blob
            ? `firmware blob ${hex(e.blob.base)} +${hex(e.blob.length)}`
            : '';
      break;
    case 'firmware-blob':
      s = `${e.blob.description ? `${e.blob.description} ` : ''}blob ${hex(e.blob.base)} +${hex(e.blob.length)}`;
      break;
    case 'efi-variable':
      s = variableSummary(e);
      break;
    case 'image-load': {
      const d = e.authenticode.find((x) => x.bank === 'sha256') ?? e.authenticode[0];
      s = `${e.image.devicePath.text || '(no device path)'} ${hex(e.image.length)} bytes${d ? `, authenticode ${d.bank}:${hexPrefix(d.digest, 8)}` : ''}`;
      break;
    }
    case 'gpt':
      s = `GPT disk ${e.gpt.header.diskGuid}, ${e.gpt.partitions.length} partitions: ${e.gpt.partitions
        .map((p) => p.name || p.typeName || p.typeGuid)
        .join(', ')}`;
      break;
    case 'text':
      s = e.text;
      break;
    case 'separator':
      s =
        e.value === undefined
          ? `separator (${e.data.length} bytes)`
          : `separator ${hex(e.value)}${e.error ? ' ERROR' : ''}${printable4(e.data)}`;
      break;
    case 'ipl':
      s = e.ipl.form === 'binary' ? `${e.data.length} bytes` : `${e.ipl.form}: ${e.ipl.text}`;
      break;
    case 'handoff-tables':
      s = `${e.description ? `${e.description}: ` : ''}${e.tables.length} table${e.tables.length === 1 ? '' : 's'} ${e.tables
        .map((t) => t.name ?? t.guid)
        .join(', ')}`;
      break;
    case 'no-action': {
      const n = e.noAction;
      s =
        n.form === 'spec-id'
          ? `${n.signature}, spec ${n.specVersion}, ${n.algorithms.length} algorithm${n.algorithms.length === 1 ? '' : 's'}`
          : n.form === 'startup-locality'
            ? `StartupLocality ${n.locality}`
            : n.form === 'named'
              ? n.signature
              : `unknown (${e.data.length} bytes)`;
      break;
    }
    case 'tagged':
      s = `tagged event ${hex(e.eventId)}, ${e.eventData.length} bytes`;
      break;
    case 'opaque':
      s = e.label ?? `${e.data.length} bytes ${hexPrefix(e.data)}`;
      break;
  }
  return oneLine(s, 200);
}

/** Short text of a digest check: "-" (not checkable), "ok", "ok (quirk-id)", "MISMATCH sha1,sha256". */
export function describeDigestCheck(check: DigestCheck | undefined): string {
  if (!check?.checked) return '-';
  if (check.ok) return check.quirk ? `ok (${check.quirk})` : 'ok';
  return `MISMATCH ${(check.mismatchedBanks ?? []).join(',')}`;
}
