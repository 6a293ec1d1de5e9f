// Firmware and boot-loader digest quirks: the ONE table of known ways real machines hash something
// other than what the PC Client spec says. Tried only after the spec preimage failed to match, in
// order; each entry names the corpus logs it was found in and has a synthetic regression test.
import { EV_EFI_VARIABLE_AUTHORITY, EV_EFI_VARIABLE_BOOT } from '../event-types.ts';

export interface DigestQuirk {
  readonly id: string;
  readonly description: string;
  /** Event types the quirk may apply to. */
  readonly eventTypes: readonly number[];
  /** Corpus logs (../shared/corpus/eventlogs) that need it. */
  readonly seenIn: readonly string[];
  /** The bytes the quirky firmware hashed, or undefined when the quirk cannot apply to this data. */
  readonly preimage: (data: Uint8Array) => Uint8Array | undefined;
}

/** Declared length of a UEFI_VARIABLE_DATA (32-byte header + name + data), or undefined if it does not fit. */
export function variableStructureLength(data: Uint8Array): number | undefined {
  if (data.length < 32) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nameLen = dv.getBigUint64(16, true);
  const dataLen = dv.getBigUint64(24, true);
  const total = 32n + nameLen * 2n + dataLen;
  return total <= BigInt(data.length) ? Number(total) : undefined;
}

export const DIGEST_QUIRKS: readonly DigestQuirk[] = [
  {
    id: 'variable-boot-whole-structure',
    description:
      'EV_EFI_VARIABLE_BOOT digest covers the whole UEFI_VARIABLE_DATA (as EV_EFI_VARIABLE_BOOT2 does) instead of VariableData only',
    eventTypes: [EV_EFI_VARIABLE_BOOT],
    seenIn: [
      'goattest-crypto-agile.bin',
      'gotpmtools-arch-linux-workstation.bin',
      'tpm2tools-event-arch-linux.bin',
      'tpm2tools-event-postcode.bin',
      'tpm2tss-binary_measurements_pc_client.bin',
    ],
    preimage: (data) => (variableStructureLength(data) === undefined ? undefined : data),
  },
  {
    id: 'shim-authority-padded-size',
    description:
      'shim 15.x sizes UEFI_VARIABLE_DATA with C struct padding: the event data carries 6 bytes past the declared structure and the digest covers all but the last byte',
    eventTypes: [EV_EFI_VARIABLE_AUTHORITY],
    seenIn: [
      'goattest-sb-cert.bin',
      'gotpmtools-cos-85-amd-sev.bin',
      'gotpmtools-gce-cos-85-attest.bin',
      'tpm2tools-event-postcode.bin',
    ],
    preimage: (data) => {
      const n = variableStructureLength(data);
      return n !== undefined && n < data.length ? data.subarray(0, data.length - 1) : undefined;
    },
  },
];
