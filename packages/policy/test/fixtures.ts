// Synthetic measurements for tests: events are described by labels, digests are SHA of the labels, and
// PCR values are computed here by a real replay (extend) with node:crypto, independently of the library.
import { createHash } from 'node:crypto';
import type { DecodedEvent, MeasuredEvent, Measurements } from '../src/index.ts';

export function sha256(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

export function sha1(label: string): string {
  return createHash('sha1').update(label).digest('hex');
}

export interface EventSpec {
  readonly pcr: number;
  readonly type: string;
  /** Data label; the digests are sha1/sha256 of it. */
  readonly label: string;
  readonly verified?: boolean;
  readonly decoded?: DecodedEvent;
}

/** PCR value after extending `digests` (hex) in order, from zero. */
export function replay(algorithm: 'sha1' | 'sha256', digests: readonly string[]): string {
  let pcr = Buffer.alloc(algorithm === 'sha1' ? 20 : 32);
  for (const d of digests) pcr = createHash(algorithm).update(pcr).update(Buffer.from(d, 'hex')).digest();
  return pcr.toString('hex');
}

export interface BuildOptions {
  readonly hostId?: string;
  readonly attestationId?: string;
  readonly dbx?: readonly string[];
}

/** Measurements for a log of `specs`, PCR values replayed for every PCR 0–7 plus any PCR an event touches. */
export function buildMeasurements(specs: readonly EventSpec[], opts: BuildOptions = {}): Measurements {
  const events: MeasuredEvent[] = specs.map((s, index) => ({
    index,
    pcr: s.pcr,
    type: s.type,
    digests: { sha1: sha1(s.label), sha256: sha256(s.label) },
    verified: s.verified ?? true,
    ...(s.decoded ? { decoded: s.decoded } : {}),
  }));
  const pcrSet = new Set([0, 1, 2, 3, 4, 5, 6, 7, ...events.map((e) => e.pcr)]);
  const pcrs: { sha1: Record<string, string>; sha256: Record<string, string> } = { sha1: {}, sha256: {} };
  for (const pcr of pcrSet) {
    const mine = events.filter((e) => e.pcr === pcr && e.type !== 'EV_NO_ACTION');
    pcrs.sha1[String(pcr)] = replay(
      'sha1',
      mine.map((e) => e.digests.sha1!),
    );
    pcrs.sha256[String(pcr)] = replay(
      'sha256',
      mine.map((e) => e.digests.sha256!),
    );
  }
  const sbEvent = events.find((e) => e.decoded?.secureBoot !== undefined);
  const dbxEvent = events.find((e) => e.decoded?.variableName === 'dbx');
  return {
    hostId: opts.hostId ?? 'host-a',
    attestationId: opts.attestationId ?? 'att-1',
    pcrs,
    events,
    secureBoot: sbEvent
      ? { enabled: sbEvent.decoded!.secureBoot, eventIndex: sbEvent.index }
      : { enabled: undefined },
    dbx: opts.dbx ?? [],
    ...(dbxEvent ? { dbxEventIndex: dbxEvent.index } : {}),
    bootApplications: events
      .filter((e) => e.type === 'EV_EFI_BOOT_SERVICES_APPLICATION')
      .map((e) => ({
        digest: e.digests.sha256!,
        eventIndex: e.index,
        ...(e.decoded?.imagePath ? { path: e.decoded.imagePath } : {}),
      })),
  };
}

export const DBX = [sha256('revoked-shim-1'), sha256('revoked-grub-2')];

/** A typical Secure Boot host: firmware, SecureBoot=1, dbx, separators, shim and grub. */
export function typicalSpecs(): EventSpec[] {
  return [
    { pcr: 0, type: 'EV_NO_ACTION', label: 'spec-id' },
    { pcr: 0, type: 'EV_S_CRTM_VERSION', label: 'crtm-1.0' },
    { pcr: 0, type: 'EV_EFI_PLATFORM_FIRMWARE_BLOB', label: 'firmware-1' },
    {
      pcr: 7,
      type: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
      label: 'SecureBoot=1',
      decoded: { kind: 'efi-variable', variableName: 'SecureBoot', secureBoot: true },
    },
    {
      pcr: 7,
      type: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
      label: 'dbx-contents',
      decoded: { kind: 'efi-variable', variableName: 'dbx' },
    },
    { pcr: 0, type: 'EV_SEPARATOR', label: 'sep' },
    { pcr: 7, type: 'EV_SEPARATOR', label: 'sep' },
    {
      pcr: 4,
      type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      label: 'shimx64.efi',
      decoded: { kind: 'boot-application', imagePath: '\\EFI\\ubuntu\\shimx64.efi' },
    },
    {
      pcr: 4,
      type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      label: 'grubx64.efi',
      decoded: { kind: 'boot-application', imagePath: '\\EFI\\ubuntu\\grubx64.efi' },
    },
  ];
}

export function typicalMeasurements(opts: BuildOptions = {}): Measurements {
  return buildMeasurements(typicalSpecs(), { dbx: DBX, ...opts });
}

/** A deep, mutable copy to edit in a test. */
export function edit<T>(value: T): T {
  return structuredClone(value) as T;
}
