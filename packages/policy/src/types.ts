// The shapes the policy library reads and returns. Plain data: the replayer fills Measurements,
// the store keeps GoldenSets and ActivationRecords, the evaluator returns Verdicts.

/** PCR banks the policy understands, named as TPM_ALG ids are in lower case. */
export type HashBank = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'sm3_256';

/** Lower-case hex digest length of each bank. */
export const BANK_HEX_LENGTH: Readonly<Record<HashBank, number>> = Object.freeze({
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
  sm3_256: 64,
});

export const HASH_BANKS: readonly HashBank[] = Object.freeze([
  'sha1',
  'sha256',
  'sha384',
  'sha512',
  'sm3_256',
]);

/** What the replayer decoded from an event's data; only the fields that policy looks at are named. */
export interface DecodedEvent {
  /** e.g. 'efi-variable', 'boot-application', 'separator', 'firmware-blob', 'action'. */
  readonly kind: string;
  /** UEFI variable name (`SecureBoot`, `PK`, `KEK`, `db`, `dbx`, `Boot0001`) for variable events. */
  readonly variableName?: string;
  /** Device path or file path of a loaded image. */
  readonly imagePath?: string;
  /** Value of the SecureBoot variable, when this event measured it. */
  readonly secureBoot?: boolean;
  /** Free text (EV_EFI_ACTION strings, S-CRTM version) for humans. */
  readonly description?: string;
}

export interface MeasuredEvent {
  /** Position in the event log (0-based, counting every event including EV_NO_ACTION). */
  readonly index: number;
  readonly pcr: number;
  /** TCG event type name, e.g. `EV_EFI_BOOT_SERVICES_APPLICATION`. */
  readonly type: string;
  /** Lower-case hex digest per bank, as recorded in the log. */
  readonly digests: Readonly<Partial<Record<HashBank, string>>>;
  /** True only when the replay of this event's PCR matched the quoted value. */
  readonly verified: boolean;
  readonly decoded?: DecodedEvent;
}

export interface BootApplication {
  /** SHA-256 event digest (the image's Authenticode hash for EV_EFI_BOOT_SERVICES_APPLICATION). */
  readonly digest: string;
  readonly path?: string;
  readonly eventIndex: number;
}

/** Everything the replayer learnt from one attestation. Filled by eventlog-replayer, judged here. */
export interface Measurements {
  readonly hostId: string;
  readonly attestationId: string;
  /** Quoted PCR values: bank → decimal PCR index → lower-case hex. */
  readonly pcrs: Readonly<Partial<Record<HashBank, Readonly<Record<string, string>>>>>;
  readonly events: readonly MeasuredEvent[];
  /** SecureBoot variable as measured; `enabled` undefined when the log did not measure it. */
  readonly secureBoot: { readonly enabled: boolean | undefined; readonly eventIndex?: number };
  /** SHA-256 entries of the dbx (forbidden signatures database), taken from verified events only. */
  readonly dbx: readonly string[];
  /** Index of the event that measured dbx, when known. */
  readonly dbxEventIndex?: number;
  readonly bootApplications: readonly BootApplication[];
}

interface RuleBase {
  /** Unique inside its golden set; named in every result. */
  readonly id: string;
  readonly description?: string;
}

/** The PCR must hold one of the allowed values. */
export interface PcrExactRule extends RuleBase {
  readonly kind: 'pcr-exact';
  readonly bank: HashBank;
  readonly pcr: number;
  readonly allowed: readonly string[];
}

/** Every event extended into `pcr` (of `eventType`, if given) must be verified and carry an allowed digest. */
export interface EventAllowlistRule extends RuleBase {
  readonly kind: 'event-allowlist';
  readonly pcr: number;
  readonly eventType?: string;
  /** Bank whose digests are compared; sha256 when absent. */
  readonly bank?: HashBank;
  readonly allowed: readonly string[];
}

/** SecureBoot must be measured as enabled by a verified event. */
export interface SecureBootEnabledRule extends RuleBase {
  readonly kind: 'secure-boot-enabled';
}

/** The measured dbx must contain at least these SHA-256 entries. */
export interface DbxContainsRule extends RuleBase {
  readonly kind: 'dbx-contains';
  readonly required: readonly string[];
}

/** None of these digests may appear in any event of the log, in any bank (verified or not). */
export interface ForbiddenDigestsRule extends RuleBase {
  readonly kind: 'forbidden-digests';
  readonly digests: readonly string[];
}

export type Rule =
  | PcrExactRule
  | EventAllowlistRule
  | SecureBootEnabledRule
  | DbxContainsRule
  | ForbiddenDigestsRule;
export type RuleKind = Rule['kind'];
export const RULE_KINDS: readonly RuleKind[] = Object.freeze([
  'pcr-exact',
  'event-allowlist',
  'secure-boot-enabled',
  'dbx-contains',
  'forbidden-digests',
]);

/** A golden set before publication: no version, no date. */
export interface GoldenSetDraft {
  readonly class: string;
  readonly description?: string;
  readonly rules: readonly Rule[];
}

/** A published golden set: immutable, identified by (class, version). */
export interface GoldenSet extends GoldenSetDraft {
  /** 1, 2, 3 … per class, in publication order. */
  readonly version: number;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
}

/** Appended whenever an operator activates (version set) or deactivates (version null) a class. */
export interface ActivationRecord {
  readonly class: string;
  readonly version: number | null;
  /** ISO 8601 UTC. */
  readonly at: string;
  readonly actor?: string;
}

/** The policy state of the whole fleet, in the order things happened. */
export interface PolicyState {
  readonly sets: readonly GoldenSet[];
  readonly activations: readonly ActivationRecord[];
}

/** Why one rule result came out as it did. */
export type ReasonCode =
  | 'OK'
  | 'PCR_MISMATCH'
  | 'PCR_MISSING'
  | 'EVENT_NOT_ALLOWED'
  | 'UNVERIFIED_EVENT'
  | 'SECURE_BOOT_DISABLED'
  | 'SECURE_BOOT_UNMEASURED'
  | 'SECURE_BOOT_UNVERIFIED'
  | 'DBX_MISSING_ENTRIES'
  | 'DBX_UNVERIFIED'
  | 'FORBIDDEN_DIGEST'
  | 'UNKNOWN_RULE'
  | 'EVALUATION_ERROR';

/** Why the verdict as a whole came out as it did. */
export type VerdictCode = 'PASS' | 'RULES_FAILED' | 'NO_POLICY' | 'EMPTY_POLICY';

export interface RuleResult {
  readonly ruleId: string;
  readonly kind: string;
  readonly pass: boolean;
  readonly code: ReasonCode;
  /** What the golden set asked for (JSON-friendly). */
  readonly expected: unknown;
  /** What the measurements showed (JSON-friendly); null when nothing was measured. */
  readonly observed: unknown;
  /** The event that caused this result, when one event did. */
  readonly eventIndex?: number;
  /** For PCR rules: the events that extended the PCR, so an operator can diff them. */
  readonly eventIndices?: readonly number[];
  readonly message: string;
}

export interface Verdict {
  readonly pass: boolean;
  readonly code: VerdictCode;
  readonly hostId: string;
  readonly attestationId: string;
  /** Class and version of the golden set judged against; null for NO_POLICY. */
  readonly class: string | null;
  readonly version: number | null;
  readonly results: readonly RuleResult[];
  readonly failed: readonly RuleResult[];
  /** One sentence for humans. */
  readonly message: string;
}
