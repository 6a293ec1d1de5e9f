export type {
  ActivationRecord,
  BootApplication,
  DbxContainsRule,
  DecodedEvent,
  EventAllowlistRule,
  ForbiddenDigestsRule,
  GoldenSet,
  GoldenSetDraft,
  HashBank,
  MeasuredEvent,
  Measurements,
  PcrExactRule,
  PolicyState,
  ReasonCode,
  Rule,
  RuleKind,
  RuleResult,
  SecureBootEnabledRule,
  Verdict,
  VerdictCode,
} from './types.ts';
export { BANK_HEX_LENGTH, HASH_BANKS, RULE_KINDS } from './types.ts';
export { CaptureError, PolicyStateError, PolicyValidationError } from './errors.ts';
export type { ValidationIssue } from './errors.ts';
export {
  LIMITS,
  parseGoldenSetJson,
  validateGoldenSet,
  validateGoldenSetDraft,
  validateMeasurements,
} from './validate.ts';
export { canonicalJson, latestVersion, publish } from './publish.ts';
export type { PublishOptions } from './publish.ts';
export {
  activate,
  activeGoldenSet,
  activeVersion,
  deactivate,
  EMPTY_POLICY_STATE,
  publishInState,
  summarizeClasses,
} from './activation.ts';
export type { ActivationOptions, ClassSummary } from './activation.ts';
export { evaluate, MAX_EVENT_INDICES, MAX_FAILURES_PER_RULE } from './evaluate.ts';
export { BOOT_APPLICATION_EVENT, BOOT_APPLICATION_PCR, capture } from './capture.ts';
export type { CaptureOptions } from './capture.ts';
