// The wire (protobuf, @hostgate/protos) ↔ the policy library's plain JSON shapes (@hostgate/policy).
// Everything the evaluator judges goes through @hostgate/policy's validators after conversion.
import type {
  GoldenSet as LibGoldenSet,
  HashBank,
  Measurements as LibMeasurements,
  Rule,
  RuleResult as LibRuleResult,
  Verdict as LibVerdict,
} from '@hostgate/policy';
import { validateMeasurements } from '@hostgate/policy';
import type {
  GoldenSet,
  HashAlgorithm__Output,
  Measurements__Output,
  PolicyRule,
  Refusal,
  RefusalCodeName,
  RuleResult,
  Verdict,
} from '@hostgate/protos';
import { timestampFromDate } from '@hostgate/protos';

const BANK_BY_ALGORITHM: Readonly<Record<string, HashBank>> = {
  HASH_ALGORITHM_SHA1: 'sha1',
  HASH_ALGORITHM_SHA256: 'sha256',
  HASH_ALGORITHM_SHA384: 'sha384',
  HASH_ALGORITHM_SHA512: 'sha512',
  HASH_ALGORITHM_SM3_256: 'sm3_256',
};
const ALGORITHM_BY_BANK: Readonly<Record<HashBank, HashAlgorithm__Output>> = {
  sha1: 'HASH_ALGORITHM_SHA1',
  sha256: 'HASH_ALGORITHM_SHA256',
  sha384: 'HASH_ALGORITHM_SHA384',
  sha512: 'HASH_ALGORITHM_SHA512',
  sm3_256: 'HASH_ALGORITHM_SM3_256',
};
const MAX_PCR = 23;

/** A request the admin API refuses as INVALID_ARGUMENT. */
export class InvalidGoldenSetError extends Error {
  override readonly name = 'InvalidGoldenSetError';
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

function hex(b: Uint8Array | string | undefined | null): string {
  if (b === undefined || b === null) return '';
  if (typeof b === 'string') return Buffer.from(b, 'base64').toString('hex');
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function bankOf(alg: unknown): HashBank | undefined {
  return BANK_BY_ALGORITHM[String(alg)];
}

/**
 * Proto Measurements → the policy library's Measurements (validated, frozen). Records the library
 * cannot hold are left out: EV_NO_ACTION records naming no real PCR (Windows logs 0xFFFFFFFF) and
 * digests of banks it does not know. Throws PolicyValidationError (MEASUREMENTS_INVALID).
 */
export function measurementsForPolicy(m: Measurements__Output): LibMeasurements {
  const pcrs: Partial<Record<HashBank, Record<string, string>>> = {};
  for (const b of m.pcrBanks) {
    const bank = bankOf(b.hashAlgorithm);
    if (bank === undefined) continue;
    const values: Record<string, string> = {};
    for (const p of b.pcrs) values[String(p.index)] = hex(p.digest);
    pcrs[bank] = values;
  }
  const events = m.events
    .filter((e) => e.pcr <= MAX_PCR)
    .map((e) => {
      const digests: Partial<Record<HashBank, string>> = {};
      for (const d of e.digests) {
        const bank = bankOf(d.hashAlgorithm);
        if (bank !== undefined) digests[bank] = hex(d.digest);
      }
      const ev: Record<string, unknown> = {
        index: e.index,
        pcr: e.pcr,
        type: e.eventTypeName,
        digests,
        verified: e.verified,
      };
      if (e.decoded) {
        const d: Record<string, unknown> = { kind: e.decoded.kind || 'other' };
        if (e.decoded.variableName) d['variableName'] = e.decoded.variableName;
        if (e.decoded.imagePath) d['imagePath'] = e.decoded.imagePath;
        if (e.decoded.description) d['description'] = e.decoded.description;
        if (e.decoded.secureBoot !== undefined) d['secureBoot'] = e.decoded.secureBoot;
        ev['decoded'] = d;
      }
      return ev;
    });
  const secureBoot: Record<string, unknown> = {};
  if (m.secureBoot?.enabled !== undefined) secureBoot['enabled'] = m.secureBoot.enabled;
  if (m.secureBoot?.eventIndex !== undefined) secureBoot['eventIndex'] = m.secureBoot.eventIndex;
  const input: Record<string, unknown> = {
    hostId: m.hostId,
    attestationId: m.attestationId,
    pcrs,
    events,
    secureBoot,
    dbx: m.dbx.map(hex),
    bootApplications: m.bootApplications.map((a) => {
      const app: Record<string, unknown> = { digest: hex(a.digest), eventIndex: a.eventIndex };
      if (a.path) app['path'] = a.path;
      return app;
    }),
  };
  if (m.dbxEventIndex !== undefined) input['dbxEventIndex'] = m.dbxEventIndex;
  return validateMeasurements(input);
}

/** Proto rule → the library's rule JSON (validated later by the library, with every issue). */
function ruleFromProto(r: PolicyRule, path: string): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  if (r.id) base['id'] = r.id;
  if (r.description) base['description'] = r.description;
  const which =
    r.rule ??
    (['pcrExact', 'eventAllowlist', 'secureBootEnabled', 'dbxContains', 'forbiddenDigests'] as const).find(
      (k) => r[k] !== undefined && r[k] !== null,
    );
  switch (which) {
    case 'pcrExact': {
      const p = r.pcrExact ?? {};
      const bank = bankOf(p.hashAlgorithm);
      if (bank === undefined)
        throw new InvalidGoldenSetError(`${path}.pcrExact.hashAlgorithm`, 'must name a bank');
      return { ...base, kind: 'pcr-exact', bank, pcr: p.pcr ?? 0, allowed: (p.allowed ?? []).map(hex) };
    }
    case 'eventAllowlist': {
      const p = r.eventAllowlist ?? {};
      const rule: Record<string, unknown> = {
        ...base,
        kind: 'event-allowlist',
        pcr: p.pcr ?? 0,
        allowed: (p.allowed ?? []).map(hex),
      };
      if (p.eventTypeName) rule['eventType'] = p.eventTypeName;
      const alg = String(p.hashAlgorithm ?? 'HASH_ALGORITHM_UNSPECIFIED');
      if (alg !== 'HASH_ALGORITHM_UNSPECIFIED' && alg !== '0') {
        const bank = bankOf(alg);
        if (bank === undefined)
          throw new InvalidGoldenSetError(`${path}.eventAllowlist.hashAlgorithm`, 'must name a bank');
        rule['bank'] = bank;
      }
      return rule;
    }
    case 'secureBootEnabled':
      return { ...base, kind: 'secure-boot-enabled' };
    case 'dbxContains':
      return { ...base, kind: 'dbx-contains', required: (r.dbxContains?.required ?? []).map(hex) };
    case 'forbiddenDigests':
      return { ...base, kind: 'forbidden-digests', digests: (r.forbiddenDigests?.digests ?? []).map(hex) };
    default:
      throw new InvalidGoldenSetError(
        path,
        'no rule set (pcrExact, eventAllowlist, secureBootEnabled, dbxContains or forbiddenDigests)',
      );
  }
}

/** Proto GoldenSet (publish request) → a library draft, unvalidated: `publish` validates it. */
export function draftFromProto(g: GoldenSet | null | undefined): Record<string, unknown> {
  if (!g) throw new InvalidGoldenSetError('$', 'golden_set is required');
  const draft: Record<string, unknown> = {
    class: g.hostClass ?? '',
    rules: (g.rules ?? []).map((r, i) => ruleFromProto(r, `$.rules[${i}]`)),
  };
  if (g.description) draft['description'] = g.description;
  return draft;
}

function bytes(h: string): Buffer {
  return Buffer.from(h, 'hex');
}

function ruleToProto(r: Rule): PolicyRule {
  const base: PolicyRule = { id: r.id, description: r.description ?? '' };
  switch (r.kind) {
    case 'pcr-exact':
      return {
        ...base,
        pcrExact: { hashAlgorithm: ALGORITHM_BY_BANK[r.bank], pcr: r.pcr, allowed: r.allowed.map(bytes) },
      };
    case 'event-allowlist':
      return {
        ...base,
        eventAllowlist: {
          pcr: r.pcr,
          eventTypeName: r.eventType ?? '',
          hashAlgorithm: r.bank === undefined ? 'HASH_ALGORITHM_UNSPECIFIED' : ALGORITHM_BY_BANK[r.bank],
          allowed: r.allowed.map(bytes),
        },
      };
    case 'secure-boot-enabled':
      return { ...base, secureBootEnabled: {} };
    case 'dbx-contains':
      return { ...base, dbxContains: { required: r.required.map(bytes) } };
    case 'forbidden-digests':
      return { ...base, forbiddenDigests: { digests: r.digests.map(bytes) } };
  }
}

/** A stored golden set as the API returns it. */
export function goldenSetToProto(
  g: LibGoldenSet,
  meta: { createdBy: string; active: boolean },
  omitRules = false,
): GoldenSet {
  return {
    hostClass: g.class,
    version: g.version,
    description: g.description ?? '',
    rules: omitRules ? [] : g.rules.map(ruleToProto),
    createdAt: timestampFromDate(new Date(g.createdAt)),
    createdBy: meta.createdBy,
    active: meta.active,
  };
}

/** Library reason code → the stable refusal code of a failed rule. */
export function refusalCodeOf(r: LibRuleResult): RefusalCodeName {
  switch (r.code) {
    case 'PCR_MISMATCH':
    case 'PCR_MISSING':
      return 'PCR_VALUE_NOT_ALLOWED';
    case 'EVENT_NOT_ALLOWED':
    case 'UNVERIFIED_EVENT':
      return 'EVENT_NOT_ALLOWED';
    case 'SECURE_BOOT_DISABLED':
    case 'SECURE_BOOT_UNMEASURED':
    case 'SECURE_BOOT_UNVERIFIED':
      return 'SECURE_BOOT_OFF';
    case 'DBX_MISSING_ENTRIES':
    case 'DBX_UNVERIFIED':
      return 'DBX_INCOMPLETE';
    case 'FORBIDDEN_DIGEST':
      return 'FORBIDDEN_DIGEST';
    default:
      return 'POLICY_RULE_FAILED';
  }
}

const MAX_JSON_TEXT = 16 * 1024;

function jsonText(v: unknown): string {
  const s = JSON.stringify(v ?? null) ?? 'null';
  return s.length <= MAX_JSON_TEXT ? s : JSON.stringify({ truncated: true, length: s.length });
}

function ruleResultToProto(r: LibRuleResult): RuleResult {
  const out: RuleResult = {
    ruleId: r.ruleId,
    kind: r.kind,
    pass: r.pass,
    code: r.pass ? 'REFUSAL_CODE_UNSPECIFIED' : refusalCodeOf(r),
    reason: r.code,
    expected: jsonText(r.expected),
    observed: jsonText(r.observed),
    eventIndices: [...(r.eventIndices ?? [])],
    message: r.message,
  };
  if (r.eventIndex !== undefined) out.eventIndex = r.eventIndex;
  return out;
}

export interface VerdictContext {
  readonly verdictId: string;
  readonly hostClass: string;
  readonly measurements: Measurements__Output;
  readonly evaluatedAt: Date;
}

/**
 * The library's verdict + the replay's refusals → the Verdict on the wire. pass only when the log
 * replayed and every rule passed; refusals list the replay's, then NO_POLICY / POLICY_EMPTY, then one
 * per failed rule result.
 */
export function verdictToProto(v: LibVerdict, ctx: VerdictContext): Verdict {
  const m = ctx.measurements;
  const refusals: Refusal[] = m.refusals.map((r) => ({
    code: r.code,
    message: r.message,
    details: { ...r.details },
  }));
  if (v.code === 'NO_POLICY')
    refusals.push({
      code: 'NO_POLICY',
      message: `host class ${ctx.hostClass} has no active golden set`,
      details: {},
    });
  if (v.code === 'EMPTY_POLICY')
    refusals.push({
      code: 'POLICY_EMPTY',
      message: `golden set ${ctx.hostClass} v${v.version ?? 0} has no rules`,
      details: {},
    });
  for (const f of v.failed) {
    const details: Record<string, string> = {
      rule_id: f.ruleId,
      expected: jsonText(f.expected),
      observed: jsonText(f.observed),
    };
    if (f.eventIndex !== undefined) details['event_index'] = String(f.eventIndex);
    refusals.push({ code: refusalCodeOf(f), message: f.message, details });
  }
  const pass = v.pass && m.refusals.length === 0 && refusals.length === 0;
  const replayNote =
    m.refusals.length === 0
      ? ''
      : `the event log did not replay (${m.refusals.map((r) => r.code).join(', ')}); `;
  const passed = [...new Set(v.results.filter((r) => r.pass).map((r) => r.ruleId))];
  return {
    verdictId: ctx.verdictId,
    attestationId: m.attestationId,
    hostId: m.hostId,
    pass,
    hostClass: ctx.hostClass,
    policyVersion: v.version ?? 0,
    failedRules: v.failed.map(ruleResultToProto),
    passedRuleIds: passed,
    refusals,
    message: pass ? v.message : `${replayNote}${v.message}`,
    evaluatedAt: timestampFromDate(ctx.evaluatedAt),
    quoteInfo: m.quoteInfo,
    certifiedKey: m.certifiedKey,
    akPublic: m.akPublic,
  };
}
