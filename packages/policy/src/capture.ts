// Builds a draft golden set from one host's verified measurements: "this host, as it booted, is good".
// The draft passes evaluate() on the same measurements by construction; evidence that cannot back its own
// rule (an unverified boot application, Secure Boot or dbx event) makes capture refuse rather than guess.
import { CaptureError } from './errors.ts';
import type { GoldenSetDraft, HashBank, Measurements, Rule } from './types.ts';
import { LIMITS, validateGoldenSetDraft } from './validate.ts';

export const BOOT_APPLICATION_EVENT = 'EV_EFI_BOOT_SERVICES_APPLICATION';
export const BOOT_APPLICATION_PCR = 4;

export interface CaptureOptions {
  /** PCRs pinned with pcr-exact rules when quoted; 0–7 (the firmware and boot loader PCRs) by default. */
  readonly pcrs?: readonly number[];
  /** Bank for the pcr-exact rules; sha256 by default. */
  readonly bank?: HashBank;
  readonly description?: string;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function capture(cls: string, m: Measurements, opts: CaptureOptions = {}): GoldenSetDraft {
  const bank = opts.bank ?? 'sha256';
  const pcrs = opts.pcrs ?? [0, 1, 2, 3, 4, 5, 6, 7];
  const rules: Rule[] = [];
  const quoted = m.pcrs[bank] ?? {};
  for (const pcr of pcrs) {
    const value = quoted[String(pcr)];
    if (value !== undefined) {
      rules.push({ id: `pcr-${bank}-${pcr}`, kind: 'pcr-exact', bank, pcr, allowed: [value.toLowerCase()] });
    }
  }
  if (rules.length === 0) {
    throw new CaptureError(
      'NOTHING_TO_CAPTURE',
      `host ${m.hostId}: none of PCRs ${pcrs.join(', ')} was quoted in the ${bank} bank`,
      m.hostId,
    );
  }
  const byIndex = new Map(m.events.map((e) => [e.index, e]));

  if (m.secureBoot.enabled === true) {
    const idx = m.secureBoot.eventIndex;
    const source = idx === undefined ? undefined : byIndex.get(idx);
    if (!source?.verified) {
      throw new CaptureError(
        'UNVERIFIED_EVIDENCE',
        `host ${m.hostId}: Secure Boot is reported on but no verified event shows it`,
        m.hostId,
        idx,
      );
    }
    const off = m.events.find((e) => e.decoded?.secureBoot === false);
    if (off) {
      throw new CaptureError(
        'UNVERIFIED_EVIDENCE',
        `host ${m.hostId}: event ${off.index} measured SecureBoot off while the summary says on`,
        m.hostId,
        off.index,
      );
    }
    rules.push({ id: 'secure-boot', kind: 'secure-boot-enabled' });
  }

  if (m.dbx.length > 0) {
    const idx = m.dbxEventIndex;
    if (idx !== undefined && !byIndex.get(idx)?.verified) {
      throw new CaptureError(
        'UNVERIFIED_EVIDENCE',
        `host ${m.hostId}: the dbx event ${idx} is unverified`,
        m.hostId,
        idx,
      );
    }
    rules.push({
      id: 'dbx',
      kind: 'dbx-contains',
      required: [...new Set(m.dbx.map((d) => d.toLowerCase()))],
    });
  }

  const apps = m.events.filter((e) => e.pcr === BOOT_APPLICATION_PCR && e.type === BOOT_APPLICATION_EVENT);
  const allowed = new Set<string>();
  const paths: string[] = [];
  for (const e of apps) {
    if (!e.verified) {
      throw new CaptureError(
        'UNVERIFIED_EVIDENCE',
        `host ${m.hostId}: boot application event ${e.index} did not replay to the quoted PCR`,
        m.hostId,
        e.index,
      );
    }
    const digest = e.digests.sha256;
    if (digest === undefined) {
      throw new CaptureError(
        'MISSING_DIGEST',
        `host ${m.hostId}: boot application event ${e.index} has no sha256 digest`,
        m.hostId,
        e.index,
      );
    }
    allowed.add(digest.toLowerCase());
    const path = e.decoded?.imagePath ?? m.bootApplications.find((a) => a.eventIndex === e.index)?.path;
    if (path) paths.push(path);
  }
  rules.push({
    id: 'boot-applications',
    kind: 'event-allowlist',
    pcr: BOOT_APPLICATION_PCR,
    eventType: BOOT_APPLICATION_EVENT,
    allowed: [...allowed],
    ...(paths.length > 0
      ? { description: truncate(`boot applications: ${paths.join(', ')}`, LIMITS.descriptionChars) }
      : {}),
  });

  const description = opts.description ?? `captured from host ${m.hostId}, attestation ${m.attestationId}`;
  return validateGoldenSetDraft({
    class: cls,
    description: truncate(description, LIMITS.descriptionChars),
    rules,
  });
}
