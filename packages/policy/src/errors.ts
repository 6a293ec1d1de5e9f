// Typed errors: callers branch on `code`; `issues` / `class` / `version` say where.

export interface ValidationIssue {
  /** Where in the input, as a JSONPath-like string: `$.rules[2].allowed[0]`. */
  readonly path: string;
  readonly message: string;
}

export class PolicyValidationError extends Error {
  readonly code: 'GOLDEN_SET_INVALID' | 'GOLDEN_SET_TOO_LARGE' | 'MEASUREMENTS_INVALID';
  /** Every problem found (capped at MAX_ISSUES), first one also in `message`. */
  readonly issues: readonly ValidationIssue[];
  constructor(code: PolicyValidationError['code'], issues: readonly ValidationIssue[]) {
    const first = issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super(first ? `${first.path}: ${first.message}${more}` : code);
    this.name = 'PolicyValidationError';
    this.code = code;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}

export class PolicyStateError extends Error {
  readonly code:
    | 'VERSION_PUBLISHED'
    | 'VERSION_CONFLICT'
    | 'UNKNOWN_VERSION'
    | 'DUPLICATE_VERSION'
    | 'VERSION_LIMIT';
  readonly class: string;
  readonly version: number | null;
  constructor(code: PolicyStateError['code'], message: string, cls: string, version: number | null) {
    super(message);
    this.name = 'PolicyStateError';
    this.code = code;
    this.class = cls;
    this.version = version;
  }
}

export class CaptureError extends Error {
  readonly code: 'NOTHING_TO_CAPTURE' | 'UNVERIFIED_EVIDENCE' | 'MISSING_DIGEST';
  readonly hostId: string;
  /** The event that made capture refuse, when one did. */
  readonly eventIndex: number | undefined;
  constructor(code: CaptureError['code'], message: string, hostId: string, eventIndex?: number) {
    super(message);
    this.name = 'CaptureError';
    this.code = code;
    this.hostId = hostId;
    this.eventIndex = eventIndex;
  }
}
