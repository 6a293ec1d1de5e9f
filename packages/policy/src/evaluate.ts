// Judges one host's measurements against its class's golden set. Pure: same input, same verdict.
// Evidence rule: only VERIFIED events (whose PCR replayed to the quote) can make a rule pass; any
// event, verified or not, can make a rule fail — a forbidden digest is refused even in an event we
// could not verify, because an unverifiable log is no reason to trust a host more.
import { deepFreeze } from './freeze.ts';
import type {
  DbxContainsRule,
  EventAllowlistRule,
  ForbiddenDigestsRule,
  GoldenSet,
  MeasuredEvent,
  Measurements,
  PcrExactRule,
  Rule,
  RuleResult,
  SecureBootEnabledRule,
  Verdict,
} from './types.ts';

/** Failed results reported per rule before the rest are summed up in one result. */
export const MAX_FAILURES_PER_RULE = 64;
/** Event indices listed in a pcr-exact result. */
export const MAX_EVENT_INDICES = 256;

/** Events that extend a PCR (EV_NO_ACTION is logged but never extended). */
function extends_(e: MeasuredEvent): boolean {
  return e.type !== 'EV_NO_ACTION';
}

function lower(s: unknown): string | undefined {
  return typeof s === 'string' ? s.toLowerCase() : undefined;
}

interface Context {
  readonly m: Measurements;
  readonly events: readonly MeasuredEvent[];
  readonly byIndex: ReadonlyMap<number, MeasuredEvent>;
  /** Events per PCR in log order, so a set with many rules does not rescan a long log per rule. */
  readonly byPcr: ReadonlyMap<number, readonly MeasuredEvent[]>;
  /** Events an allowlist covers, with their lower-case digest in `bank`; cached per (pcr, eventType, bank). */
  readonly scope: (pcr: number, eventType: string | undefined, bank: string) => readonly ScopedEvent[];
  /** Every digest of the log (all banks, and boot applications without their event), built on first use. */
  readonly digestIndex: () => ReadonlyMap<string, readonly DigestHit[]>;
}

interface ScopedEvent {
  readonly event: MeasuredEvent;
  readonly digest: string | undefined;
}

interface DigestHit {
  readonly digest: string;
  /** Position in the log × 8 + bank position (boot applications without an event come last): log order. */
  readonly order: number;
  readonly bank: string;
  readonly eventIndex: number;
  /** Undefined for a boot application whose event is not in the list. */
  readonly event: MeasuredEvent | undefined;
  readonly path?: string;
}

function buildDigestIndex(m: Measurements, events: readonly MeasuredEvent[]): Map<string, DigestHit[]> {
  const index = new Map<string, DigestHit[]>();
  const add = (h: DigestHit) => {
    const list = index.get(h.digest);
    if (list) list.push(h);
    else index.set(h.digest, [h]);
  };
  const seen = new Set<number>();
  events.forEach((e, position) => {
    seen.add(e.index);
    Object.entries(e.digests ?? {}).forEach(([bank, d], b) => {
      const digest = lower(d);
      if (digest !== undefined) add({ digest, order: position * 8 + b, bank, eventIndex: e.index, event: e });
    });
  });
  // Boot applications normally repeat an event above; one without its event still counts.
  (m.bootApplications ?? []).forEach((app, i) => {
    const digest = lower(app.digest);
    if (digest === undefined || seen.has(app.eventIndex)) return;
    add({
      digest,
      order: (events.length + i) * 8,
      bank: 'sha256',
      eventIndex: app.eventIndex,
      event: undefined,
      ...(app.path === undefined ? {} : { path: app.path }),
    });
  });
  return index;
}

function capped(rule: Rule, failures: RuleResult[], total: number): RuleResult[] {
  if (total <= failures.length) return failures;
  const last = failures.at(-1)!;
  return [
    ...failures,
    {
      ruleId: rule.id,
      kind: rule.kind,
      pass: false,
      code: last.code,
      expected: last.expected,
      observed: { moreFailures: total - failures.length },
      message: `rule ${rule.id}: ${total - failures.length} more failing events not listed`,
    },
  ];
}

function pcrExact(rule: PcrExactRule, ctx: Context): RuleResult[] {
  const observed = lower(ctx.m.pcrs?.[rule.bank]?.[String(rule.pcr)]);
  const allowed = rule.allowed.map((a) => a.toLowerCase());
  const extended = (ctx.byPcr.get(rule.pcr) ?? []).filter(extends_);
  // Bounded, so a hostile log cannot make the verdict huge.
  const eventIndices = extended.slice(0, MAX_EVENT_INDICES).map((e) => e.index);
  const base = { ruleId: rule.id, kind: rule.kind, expected: allowed, eventIndices };
  const where = `PCR ${rule.pcr} (${rule.bank})`;
  if (observed === undefined) {
    return [
      { ...base, pass: false, code: 'PCR_MISSING', observed: null, message: `${where} was not quoted` },
    ];
  }
  if (allowed.includes(observed)) {
    return [{ ...base, pass: true, code: 'OK', observed, message: `${where} matches` }];
  }
  const one = allowed.length === 1 ? allowed[0] : `one of ${allowed.length} allowed values`;
  return [
    {
      ...base,
      pass: false,
      code: 'PCR_MISMATCH',
      observed,
      message: `${where} is ${observed}, expected ${one}; it was extended by ${eventList(extended.map((e) => e.index))}`,
    },
  ];
}

function eventList(indices: readonly number[]): string {
  if (indices.length === 0) return 'no event';
  const shown = indices.slice(0, 16).join(', ');
  return indices.length > 16 ? `events ${shown} … (${indices.length} in all)` : `events ${shown}`;
}

function eventName(e: MeasuredEvent): string {
  const path = e.decoded?.imagePath ?? e.decoded?.variableName;
  return `event ${e.index} (${e.type}${path ? ` ${path}` : ''})`;
}

function eventAllowlist(rule: EventAllowlistRule, ctx: Context): RuleResult[] {
  const bank = rule.bank ?? 'sha256';
  const allowed = new Set(rule.allowed.map((a) => a.toLowerCase()));
  const expected = [...allowed];
  const scope = ctx.scope(rule.pcr, rule.eventType, bank);
  const failures: RuleResult[] = [];
  let total = 0;
  const observedAll = new Set<string>();
  for (const { event: e, digest } of scope) {
    const code =
      digest === undefined || (e.verified && !allowed.has(digest))
        ? 'EVENT_NOT_ALLOWED'
        : !e.verified
          ? 'UNVERIFIED_EVENT'
          : undefined;
    if (code === undefined) {
      observedAll.add(digest!);
      continue;
    }
    total++;
    // Messages are built only for the failures reported, so a hostile log of 300k events stays cheap.
    if (failures.length >= MAX_FAILURES_PER_RULE) continue;
    failures.push({
      ruleId: rule.id,
      kind: rule.kind,
      pass: false,
      expected,
      eventIndex: e.index,
      code,
      observed: digest ?? null,
      message:
        digest === undefined
          ? `${eventName(e)} in PCR ${rule.pcr} has no ${bank} digest to compare`
          : code === 'UNVERIFIED_EVENT'
            ? `${eventName(e)} in PCR ${rule.pcr} did not replay to the quoted PCR; its digest proves nothing`
            : `${eventName(e)} in PCR ${rule.pcr} has ${bank} digest ${digest}, not in the allowlist`,
    });
  }
  if (total > 0) return capped(rule, failures, total);
  const what = rule.eventType ?? 'event';
  return [
    {
      ruleId: rule.id,
      kind: rule.kind,
      pass: true,
      code: 'OK',
      expected,
      observed: [...observedAll],
      message:
        scope.length === 0
          ? `no ${what} in PCR ${rule.pcr}`
          : `${scope.length} ${what}${scope.length === 1 ? '' : 's'} in PCR ${rule.pcr}, all allowed`,
    },
  ];
}

function secureBootEnabled(rule: SecureBootEnabledRule, ctx: Context): RuleResult[] {
  const base = { ruleId: rule.id, kind: rule.kind, expected: true };
  // A verified or unverified event saying SecureBoot is off contradicts any summary: refuse.
  const off = ctx.events.find((e) => e.decoded?.secureBoot === false);
  const sb = ctx.m.secureBoot;
  const enabled = sb?.enabled;
  const idx = sb?.eventIndex;
  const at = typeof idx === 'number' ? { eventIndex: idx } : {};
  if (enabled === false) {
    return [
      {
        ...base,
        ...at,
        pass: false,
        code: 'SECURE_BOOT_DISABLED',
        observed: false,
        message: 'Secure Boot is off',
      },
    ];
  }
  if (off) {
    return [
      {
        ...base,
        eventIndex: off.index,
        pass: false,
        code: 'SECURE_BOOT_DISABLED',
        observed: false,
        message: `${eventName(off)} measured SecureBoot off`,
      },
    ];
  }
  if (enabled !== true) {
    return [
      {
        ...base,
        pass: false,
        code: 'SECURE_BOOT_UNMEASURED',
        observed: null,
        message: 'the log does not measure the SecureBoot variable',
      },
    ];
  }
  const source = typeof idx === 'number' ? ctx.byIndex.get(idx) : undefined;
  if (!source?.verified) {
    return [
      {
        ...base,
        ...at,
        pass: false,
        code: 'SECURE_BOOT_UNVERIFIED',
        observed: true,
        message:
          source === undefined
            ? 'Secure Boot is reported on but no event of the log shows it'
            : `${eventName(source)} reports Secure Boot on but did not replay to the quoted PCR`,
      },
    ];
  }
  return [
    {
      ...base,
      eventIndex: source.index,
      pass: true,
      code: 'OK',
      observed: true,
      message: 'Secure Boot is on',
    },
  ];
}

function dbxContains(rule: DbxContainsRule, ctx: Context): RuleResult[] {
  const dbx = new Set((ctx.m.dbx ?? []).map((d) => d.toLowerCase()));
  const required = rule.required.map((r) => r.toLowerCase());
  const missing = required.filter((r) => !dbx.has(r));
  const idx = ctx.m.dbxEventIndex;
  const at = typeof idx === 'number' ? { eventIndex: idx } : {};
  const base = { ruleId: rule.id, kind: rule.kind, expected: { contains: required } };
  if (typeof idx === 'number' && !ctx.byIndex.get(idx)?.verified) {
    return [
      {
        ...base,
        ...at,
        pass: false,
        code: 'DBX_UNVERIFIED',
        observed: { missing: required, entries: 0 },
        message: `the dbx was measured by event ${idx}, which did not replay to the quoted PCR`,
      },
    ];
  }
  if (missing.length > 0) {
    return [
      {
        ...base,
        ...at,
        pass: false,
        code: 'DBX_MISSING_ENTRIES',
        observed: { missing, entries: dbx.size },
        message: `the dbx lacks ${missing.length} of ${required.length} required entries (first: ${missing[0]})`,
      },
    ];
  }
  return [
    {
      ...base,
      ...at,
      pass: true,
      code: 'OK',
      observed: { missing: [], entries: dbx.size },
      message: `the dbx holds all ${required.length} required entries`,
    },
  ];
}

function forbiddenDigests(rule: ForbiddenDigestsRule, ctx: Context): RuleResult[] {
  const forbidden = new Set(rule.digests.map((d) => d.toLowerCase()));
  const expected = { noneOf: [...forbidden] };
  // Look each forbidden digest up in the log's digest index, then report hits in log order.
  const index = ctx.digestIndex();
  const hits: DigestHit[] = [];
  for (const d of forbidden) for (const h of index.get(d) ?? []) hits.push(h);
  hits.sort((a, b) => a.order - b.order);
  const total = hits.length;
  const failures: RuleResult[] = hits.slice(0, MAX_FAILURES_PER_RULE).map((h) => ({
    ruleId: rule.id,
    kind: rule.kind,
    pass: false,
    code: 'FORBIDDEN_DIGEST',
    expected,
    observed: h.digest,
    eventIndex: h.eventIndex,
    message: h.event
      ? `${eventName(h.event)}${h.event.verified ? '' : ' (unverified)'} carries forbidden ${h.bank} digest ${h.digest}`
      : `boot application ${h.path ?? ''} (event ${h.eventIndex}) is forbidden`,
  }));
  if (total > 0) return capped(rule, failures, total);
  return [
    {
      ruleId: rule.id,
      kind: rule.kind,
      pass: true,
      code: 'OK',
      expected,
      observed: null,
      message: `none of ${forbidden.size} forbidden digests in ${ctx.events.length} events`,
    },
  ];
}

function evaluateRule(rule: Rule, ctx: Context): RuleResult[] {
  switch (rule.kind) {
    case 'pcr-exact':
      return pcrExact(rule, ctx);
    case 'event-allowlist':
      return eventAllowlist(rule, ctx);
    case 'secure-boot-enabled':
      return secureBootEnabled(rule, ctx);
    case 'dbx-contains':
      return dbxContains(rule, ctx);
    case 'forbidden-digests':
      return forbiddenDigests(rule, ctx);
    default: {
      const r = rule as { id?: unknown; kind?: unknown };
      return [
        {
          ruleId: String(r.id),
          kind: String(r.kind),
          pass: false,
          code: 'UNKNOWN_RULE',
          expected: null,
          observed: null,
          message: `rule kind ${String(r.kind)} is not known to this evaluator`,
        },
      ];
    }
  }
}

/**
 * The verdict for `m` under `golden` (the active set of the host's class, or undefined when the class has
 * none: NO_POLICY, never a pass). Every rule yields at least one result; a failing rule yields one per
 * offending event (up to MAX_FAILURES_PER_RULE, then a summary). Never throws: a rule that cannot be
 * evaluated fails with EVALUATION_ERROR.
 */
export function evaluate(golden: GoldenSet | undefined, m: Measurements): Verdict {
  const hostId = typeof m?.hostId === 'string' ? m.hostId : '';
  const attestationId = typeof m?.attestationId === 'string' ? m.attestationId : '';
  if (golden === undefined || golden === null) {
    return deepFreeze({
      pass: false,
      code: 'NO_POLICY',
      hostId,
      attestationId,
      class: null,
      version: null,
      results: [],
      failed: [],
      message: `host ${hostId} has no active golden set for its class`,
    });
  }
  const head = { hostId, attestationId, class: golden.class, version: golden.version };
  const rules = Array.isArray(golden.rules) ? golden.rules : [];
  if (rules.length === 0) {
    return deepFreeze({
      ...head,
      pass: false,
      code: 'EMPTY_POLICY',
      results: [],
      failed: [],
      message: `golden set ${golden.class} v${golden.version} has no rules`,
    });
  }
  const events = Array.isArray(m?.events) ? m.events : [];
  const byIndex = new Map<number, MeasuredEvent>();
  const byPcr = new Map<number, MeasuredEvent[]>();
  for (const e of events) {
    byIndex.set(e.index, e);
    const list = byPcr.get(e.pcr);
    if (list) list.push(e);
    else byPcr.set(e.pcr, [e]);
  }
  let digestIndex: Map<string, DigestHit[]> | undefined;
  const scopes = new Map<string, ScopedEvent[]>();
  const ctx: Context = {
    m,
    events,
    byIndex,
    byPcr,
    scope: (pcr, eventType, bank) => {
      const key = `${pcr}/${eventType ?? ''}/${bank}`;
      let scope = scopes.get(key);
      if (!scope) {
        scope = (byPcr.get(pcr) ?? [])
          .filter((e) => (eventType === undefined ? extends_(e) : e.type === eventType))
          .map((event) => ({
            event,
            digest: lower((event.digests as Record<string, unknown> | undefined)?.[bank]),
          }));
        scopes.set(key, scope);
      }
      return scope;
    },
    digestIndex: () => {
      digestIndex ??= buildDigestIndex(m, events);
      return digestIndex;
    },
  };
  const results: RuleResult[] = [];
  for (const rule of rules) {
    try {
      results.push(...evaluateRule(rule, ctx));
    } catch (e) {
      results.push({
        ruleId: String(rule?.id),
        kind: String(rule?.kind),
        pass: false,
        code: 'EVALUATION_ERROR',
        expected: null,
        observed: null,
        message: `rule could not be evaluated: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  const failed = results.filter((r) => !r.pass);
  const failedRules = new Set(failed.map((r) => r.ruleId));
  return deepFreeze({
    ...head,
    pass: failed.length === 0,
    code: failed.length === 0 ? 'PASS' : 'RULES_FAILED',
    results,
    failed,
    message:
      failed.length === 0
        ? `all ${rules.length} rules of ${golden.class} v${golden.version} pass`
        : `${failedRules.size} of ${rules.length} rules of ${golden.class} v${golden.version} fail: ${[...failedRules].join(', ')}`,
  });
}
