// EV_IPL payloads from boot loaders. Their digest conventions differ by author, so the decoder also
// says which bytes the digest covers (`measured`) when the convention is known:
// - GRUB ≥ 2.04: "grub_cmd: …", "kernel_cmdline: …", "module_cmdline: …" + NUL; digest of the text after the prefix, no NUL.
// - Fedora's older GRUB TPM patch: "grub_cmd …" + NUL, digest of the text after the prefix WITH its NUL;
//   "grub_kernel_cmdline …" + NUL, digest of the text after the prefix without it (fwupd corpus log).
// - systemd-boot / systemd-stub: UCS-2 strings; digest of the whole event data.
// - GRUB file loads (PCR 9), "grub_linuxefi Kernel", shim's MokList*, SeaBIOS "MBR": digest of content not in the log.
import { asciiz, isPrintableAscii, isPrintableUcs2, ucs2z } from './text.ts';

export type IplForm =
  | 'grub-command'
  | 'grub-kernel-cmdline'
  | 'grub-module-cmdline'
  | 'grub-legacy-command'
  | 'grub-legacy-kernel-cmdline'
  | 'grub-file'
  | 'systemd-boot'
  | 'shim-variable'
  | 'text'
  | 'binary';

export interface IplContent {
  readonly form: IplForm;
  /** The string without its prefix (command, command line, path, variable name). */
  readonly text: string;
  /** Bytes the digest covers by the loader's convention; undefined when that content is not in the log. */
  readonly measured: Uint8Array | undefined;
}

const SHIM_VARIABLES = new Set([
  'MokList',
  'MokListX',
  'MokListTrusted',
  'MokSBState',
  'SbatLevel',
  'MokPolicy',
]);

const PREFIXES: readonly { prefix: string; form: IplForm; keepNul: boolean }[] = [
  { prefix: 'grub_cmd: ', form: 'grub-command', keepNul: false },
  { prefix: 'kernel_cmdline: ', form: 'grub-kernel-cmdline', keepNul: false },
  { prefix: 'module_cmdline: ', form: 'grub-module-cmdline', keepNul: false },
  { prefix: 'grub_cmd ', form: 'grub-legacy-command', keepNul: true },
  { prefix: 'grub_kernel_cmdline ', form: 'grub-legacy-kernel-cmdline', keepNul: false },
];

function startsWith(b: Uint8Array, p: string): boolean {
  if (b.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (b[i] !== p.charCodeAt(i)) return false;
  return true;
}

export function iplContent(data: Uint8Array): IplContent {
  if (isPrintableAscii(data)) {
    for (const { prefix, form, keepNul } of PREFIXES) {
      if (!startsWith(data, prefix)) continue;
      let end = data.length;
      if (!keepNul) while (end > prefix.length && data[end - 1] === 0) end--;
      const measured = data.subarray(prefix.length, end);
      return { form, text: asciiz(data.subarray(prefix.length)), measured };
    }
    const text = asciiz(data);
    if (SHIM_VARIABLES.has(text)) return { form: 'shim-variable', text, measured: undefined };
    if (text.startsWith('/') || text.startsWith('(')) return { form: 'grub-file', text, measured: undefined };
    return { form: 'text', text, measured: undefined };
  }
  if (isPrintableUcs2(data)) return { form: 'systemd-boot', text: ucs2z(data), measured: data };
  return { form: 'binary', text: '', measured: undefined };
}
