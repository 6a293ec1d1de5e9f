// Golden sets arrive from operators (admin API, CLI, files): untrusted JSON. Measurements arrive from
// the replayer over Kafka. Both are checked here, every problem reported with its path, sizes capped.
import { PolicyValidationError, type ValidationIssue } from './errors.ts';
import { deepFreeze } from './freeze.ts';
import {
  BANK_HEX_LENGTH,
  type BootApplication,
  type DecodedEvent,
  type GoldenSet,
  type GoldenSetDraft,
  HASH_BANKS,
  type HashBank,
  type MeasuredEvent,
  type Measurements,
  type Rule,
} from './types.ts';

export const LIMITS = Object.freeze({
  /** Bytes of golden-set JSON text accepted by parseGoldenSetJson. */
  goldenSetJsonBytes: 4 * 1024 * 1024,
  rulesPerSet: 1024,
  valuesPerRule: 16384,
  valuesPerSet: 131072,
  descriptionChars: 1024,
  /** Events in one measurement (an 8 MiB log cannot hold more). */
  events: 300000,
  bootApplications: 4096,
  dbxEntries: 65536,
  stringChars: 4096,
  issues: 50,
  maxVersion: 2147483647,
  maxPcr: 23,
});

const CLASS_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const EVENT_TYPE_RE = /^EV_[A-Z0-9_]{1,60}$/;
const HEX_RE = /^[0-9a-fA-F]*$/;
const ISO_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const DIGEST_LENGTHS = new Set(Object.values(BANK_HEX_LENGTH));

class Issues {
  readonly list: ValidationIssue[] = [];
  /** Every issue found, including those past the cap. */
  total = 0;
  get full(): boolean {
    return this.total > this.list.length;
  }
  add(path: string, message: string): void {
    this.total++;
    if (this.list.length < LIMITS.issues) this.list.push({ path, message });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function checkKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
  out: Issues,
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key))
      out.add(`${path}.${key.slice(0, 64)}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function str(v: unknown, path: string, out: Issues, re?: RegExp, what?: string): string | undefined {
  if (typeof v !== 'string') {
    out.add(path, `must be a string, got ${describe(v)}`);
    return undefined;
  }
  if (v.length > LIMITS.stringChars) {
    out.add(path, `longer than ${LIMITS.stringChars} characters`);
    return undefined;
  }
  if (re && !re.test(v)) {
    out.add(path, `must be ${what ?? `a string matching ${re.source}`}`);
    return undefined;
  }
  return v;
}

function int(v: unknown, path: string, out: Issues, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    out.add(path, `must be an integer from ${min} to ${max}, got ${typeof v === 'number' ? v : describe(v)}`);
    return undefined;
  }
  return v;
}

function bank(v: unknown, path: string, out: Issues): HashBank | undefined {
  if (typeof v === 'string' && (HASH_BANKS as readonly string[]).includes(v)) return v as HashBank;
  out.add(path, `must be one of ${HASH_BANKS.join(', ')}`);
  return undefined;
}

/** Hex of one of `lengths`, returned in lower case. */
function hex(
  v: unknown,
  path: string,
  out: Issues,
  lengths: ReadonlySet<number>,
  what: string,
): string | undefined {
  if (typeof v !== 'string' || v.length > 128 || !HEX_RE.test(v) || !lengths.has(v.length)) {
    out.add(path, `must be ${what}`);
    return undefined;
  }
  return v.toLowerCase();
}

function hexList(
  v: unknown,
  path: string,
  out: Issues,
  lengths: ReadonlySet<number>,
  what: string,
  budget: { left: number },
  allowEmpty: boolean,
): string[] | undefined {
  if (!Array.isArray(v)) {
    out.add(path, `must be an array of ${what}, got ${describe(v)}`);
    return undefined;
  }
  if (v.length > LIMITS.valuesPerRule) {
    out.add(path, `more than ${LIMITS.valuesPerRule} entries`);
    return undefined;
  }
  budget.left -= v.length;
  if (budget.left < 0) {
    out.add(path, `the golden set holds more than ${LIMITS.valuesPerSet} values in all`);
    return undefined;
  }
  if (v.length === 0 && !allowEmpty) {
    out.add(path, 'must not be empty');
    return undefined;
  }
  const seen = new Set<string>();
  let ok = true;
  v.forEach((item, i) => {
    const h = hex(item, `${path}[${i}]`, out, lengths, what);
    if (h === undefined) ok = false;
    else seen.add(h);
  });
  return ok ? [...seen] : undefined;
}

function bankLength(b: HashBank): ReadonlySet<number> {
  return new Set([BANK_HEX_LENGTH[b]]);
}

function hexWhat(b: HashBank): string {
  return `a ${b} digest (${BANK_HEX_LENGTH[b]} hex characters)`;
}

const RULE_KEYS: Readonly<Record<string, readonly string[]>> = {
  'pcr-exact': ['id', 'kind', 'description', 'bank', 'pcr', 'allowed'],
  'event-allowlist': ['id', 'kind', 'description', 'pcr', 'eventType', 'bank', 'allowed'],
  'secure-boot-enabled': ['id', 'kind', 'description'],
  'dbx-contains': ['id', 'kind', 'description', 'required'],
  'forbidden-digests': ['id', 'kind', 'description', 'digests'],
};

function rule(v: unknown, index: number, out: Issues, budget: { left: number }): Rule | undefined {
  const path = `$.rules[${index}]`;
  if (!isRecord(v)) {
    out.add(path, `must be an object, got ${describe(v)}`);
    return undefined;
  }
  const kind = v['kind'];
  const keys = typeof kind === 'string' ? RULE_KEYS[kind] : undefined;
  if (typeof kind !== 'string' || keys === undefined || !Object.hasOwn(RULE_KEYS, kind)) {
    out.add(`${path}.kind`, `must be one of ${Object.keys(RULE_KEYS).join(', ')}`);
    return undefined;
  }
  const before = out.total;
  checkKeys(v, keys, path, out);
  const id =
    v['id'] === undefined ? `${kind}-${index}` : str(v['id'], `${path}.id`, out, RULE_ID_RE, 'a rule id');
  let description: string | undefined;
  if (v['description'] !== undefined) {
    description = str(v['description'], `${path}.description`, out);
    if (description !== undefined && description.length > LIMITS.descriptionChars) {
      out.add(`${path}.description`, `longer than ${LIMITS.descriptionChars} characters`);
    }
  }
  const base = description === undefined ? { id } : { id, description };
  let result: Rule | undefined;
  switch (kind) {
    case 'pcr-exact': {
      const b = bank(v['bank'], `${path}.bank`, out);
      const pcr = int(v['pcr'], `${path}.pcr`, out, 0, LIMITS.maxPcr);
      const allowed =
        b && hexList(v['allowed'], `${path}.allowed`, out, bankLength(b), hexWhat(b), budget, false);
      if (b && pcr !== undefined && allowed) result = { ...base, kind, bank: b, pcr, allowed } as Rule;
      break;
    }
    case 'event-allowlist': {
      const pcr = int(v['pcr'], `${path}.pcr`, out, 0, LIMITS.maxPcr);
      const b = v['bank'] === undefined ? 'sha256' : bank(v['bank'], `${path}.bank`, out);
      const eventType =
        v['eventType'] === undefined
          ? undefined
          : str(v['eventType'], `${path}.eventType`, out, EVENT_TYPE_RE, 'a TCG event type name (EV_…)');
      const allowed =
        b && hexList(v['allowed'], `${path}.allowed`, out, bankLength(b), hexWhat(b), budget, true);
      if (b && pcr !== undefined && allowed && (v['eventType'] === undefined || eventType)) {
        result = {
          ...base,
          kind,
          pcr,
          ...(eventType === undefined ? {} : { eventType }),
          ...(v['bank'] === undefined ? {} : { bank: b }),
          allowed,
        } as Rule;
      }
      break;
    }
    case 'secure-boot-enabled':
      result = { ...base, kind } as Rule;
      break;
    case 'dbx-contains': {
      const required = hexList(
        v['required'],
        `${path}.required`,
        out,
        bankLength('sha256'),
        hexWhat('sha256'),
        budget,
        false,
      );
      if (required) result = { ...base, kind, required } as Rule;
      break;
    }
    case 'forbidden-digests': {
      const digests = hexList(
        v['digests'],
        `${path}.digests`,
        out,
        DIGEST_LENGTHS,
        'a digest (40, 64, 96 or 128 hex characters)',
        budget,
        false,
      );
      if (digests) result = { ...base, kind, digests } as Rule;
      break;
    }
  }
  return out.total === before && id !== undefined ? result : undefined;
}

function draftFields(v: Record<string, unknown>, out: Issues): GoldenSetDraft | undefined {
  const cls = str(v['class'], '$.class', out, CLASS_RE, 'a class name (letters, digits, . _ -; at most 64)');
  let description: string | undefined;
  if (v['description'] !== undefined) {
    description = str(v['description'], '$.description', out);
    if (description !== undefined && description.length > LIMITS.descriptionChars) {
      out.add('$.description', `longer than ${LIMITS.descriptionChars} characters`);
    }
  }
  const raw = v['rules'];
  const rules: Rule[] = [];
  if (!Array.isArray(raw)) {
    out.add('$.rules', `must be an array, got ${describe(raw)}`);
  } else if (raw.length === 0) {
    out.add('$.rules', 'must hold at least one rule (an empty golden set would pass every host)');
  } else if (raw.length > LIMITS.rulesPerSet) {
    out.add('$.rules', `more than ${LIMITS.rulesPerSet} rules`);
  } else {
    const budget = { left: LIMITS.valuesPerSet };
    const ids = new Map<string, number>();
    raw.forEach((r, i) => {
      const parsed = rule(r, i, out, budget);
      if (!parsed) return;
      const prev = ids.get(parsed.id);
      if (prev !== undefined)
        out.add(`$.rules[${i}].id`, `duplicate rule id "${parsed.id}" (also $.rules[${prev}])`);
      else ids.set(parsed.id, i);
      rules.push(parsed);
    });
  }
  if (out.total > 0 || cls === undefined) return undefined;
  return description === undefined ? { class: cls, rules } : { class: cls, description, rules };
}

function fail(code: PolicyValidationError['code'], out: Issues): never {
  const issues = out.full
    ? [...out.list, { path: '$', message: `more than ${LIMITS.issues} problems` }]
    : out.list;
  throw new PolicyValidationError(code, issues);
}

/** Checks an operator's draft (no version, no date). Returns it normalised (lower-case hex, rule ids) and frozen. */
export function validateGoldenSetDraft(input: unknown): GoldenSetDraft {
  const out = new Issues();
  if (!isRecord(input)) {
    out.add('$', `must be an object, got ${describe(input)}`);
    fail('GOLDEN_SET_INVALID', out);
  }
  checkKeys(input, ['class', 'description', 'rules'], '$', out);
  const draft = draftFields(input, out);
  if (!draft) fail('GOLDEN_SET_INVALID', out);
  return deepFreeze(draft);
}

/** Checks a published golden set (as stored or exported). Returns it normalised and frozen. */
export function validateGoldenSet(input: unknown): GoldenSet {
  const out = new Issues();
  if (!isRecord(input)) {
    out.add('$', `must be an object, got ${describe(input)}`);
    fail('GOLDEN_SET_INVALID', out);
  }
  checkKeys(input, ['class', 'description', 'version', 'createdAt', 'rules'], '$', out);
  const version = int(input['version'], '$.version', out, 1, LIMITS.maxVersion);
  const createdAt = str(input['createdAt'], '$.createdAt', out, ISO_UTC_RE, 'an ISO 8601 UTC time (…Z)');
  if (createdAt !== undefined) {
    const t = Date.parse(createdAt);
    // Date.parse rolls 2026-02-30 over to March; a real date prints back the same.
    if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 19) !== createdAt.slice(0, 19)) {
      out.add('$.createdAt', 'is not a real date');
    }
  }
  const draft = draftFields(input, out);
  if (!draft || version === undefined || createdAt === undefined || out.total > 0) {
    fail('GOLDEN_SET_INVALID', out);
  }
  return deepFreeze({ ...draft, version, createdAt });
}

/** JSON text → validated golden set (or draft, when the text has no version). Caps the text size first. */
export function parseGoldenSetJson(text: string): GoldenSet | GoldenSetDraft {
  if (
    text.length > LIMITS.goldenSetJsonBytes ||
    Buffer.byteLength(text, 'utf8') > LIMITS.goldenSetJsonBytes
  ) {
    throw new PolicyValidationError('GOLDEN_SET_TOO_LARGE', [
      { path: '$', message: `JSON text larger than ${LIMITS.goldenSetJsonBytes} bytes` },
    ]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PolicyValidationError('GOLDEN_SET_INVALID', [
      { path: '$', message: `not JSON: ${e instanceof Error ? e.message : String(e)}` },
    ]);
  }
  return isRecord(value) && value['version'] !== undefined
    ? validateGoldenSet(value)
    : validateGoldenSetDraft(value);
}

function decoded(v: unknown, path: string, out: Issues): DecodedEvent | undefined {
  if (!isRecord(v)) {
    out.add(path, `must be an object, got ${describe(v)}`);
    return undefined;
  }
  const kind = str(v['kind'], `${path}.kind`, out);
  if (kind === undefined) return undefined;
  const d: {
    kind: string;
    variableName?: string;
    imagePath?: string;
    secureBoot?: boolean;
    description?: string;
  } = { kind };
  for (const key of ['variableName', 'imagePath', 'description'] as const) {
    if (v[key] === undefined) continue;
    const s = str(v[key], `${path}.${key}`, out);
    if (s !== undefined) d[key] = s;
  }
  if (v['secureBoot'] !== undefined) {
    if (typeof v['secureBoot'] === 'boolean') d.secureBoot = v['secureBoot'];
    else out.add(`${path}.secureBoot`, 'must be a boolean');
  }
  return d;
}

function digestMap(v: unknown, path: string, out: Issues): Partial<Record<HashBank, string>> | undefined {
  if (!isRecord(v)) {
    out.add(path, `must be an object, got ${describe(v)}`);
    return undefined;
  }
  const m: Partial<Record<HashBank, string>> = {};
  for (const key of Object.keys(v)) {
    const b = bank(key, `${path}.${key.slice(0, 64)}`, out);
    if (!b) continue;
    const h = hex(v[key], `${path}.${b}`, out, bankLength(b), hexWhat(b));
    if (h !== undefined) m[b] = h;
  }
  return m;
}

/**
 * Checks measurements as the replayer produced them. Unknown keys are ignored (the replayer may learn to
 * decode more); known ones must have the right shape. Returns a normalised, frozen copy.
 */
export function validateMeasurements(input: unknown): Measurements {
  const out = new Issues();
  if (!isRecord(input)) {
    out.add('$', `must be an object, got ${describe(input)}`);
    fail('MEASUREMENTS_INVALID', out);
  }
  const hostId = str(input['hostId'], '$.hostId', out);
  const attestationId = str(input['attestationId'], '$.attestationId', out);

  const pcrs: Partial<Record<HashBank, Record<string, string>>> = {};
  const rawPcrs = input['pcrs'];
  if (!isRecord(rawPcrs)) out.add('$.pcrs', `must be an object, got ${describe(rawPcrs)}`);
  else {
    for (const key of Object.keys(rawPcrs)) {
      const b = bank(key, `$.pcrs.${key.slice(0, 64)}`, out);
      const values = rawPcrs[key];
      if (!b) continue;
      if (!isRecord(values)) {
        out.add(`$.pcrs.${b}`, `must be an object, got ${describe(values)}`);
        continue;
      }
      const bankValues: Record<string, string> = {};
      for (const pcrKey of Object.keys(values)) {
        const n = /^(0|[1-9]\d?)$/.test(pcrKey) ? Number(pcrKey) : -1;
        if (n < 0 || n > LIMITS.maxPcr) {
          out.add(`$.pcrs.${b}.${pcrKey.slice(0, 64)}`, `PCR index must be 0 to ${LIMITS.maxPcr}`);
          continue;
        }
        const h = hex(values[pcrKey], `$.pcrs.${b}.${n}`, out, bankLength(b), hexWhat(b));
        if (h !== undefined) bankValues[String(n)] = h;
      }
      pcrs[b] = bankValues;
    }
  }

  const events: MeasuredEvent[] = [];
  const rawEvents = input['events'];
  if (!Array.isArray(rawEvents)) out.add('$.events', `must be an array, got ${describe(rawEvents)}`);
  else if (rawEvents.length > LIMITS.events) out.add('$.events', `more than ${LIMITS.events} events`);
  else {
    const seen = new Set<number>();
    rawEvents.forEach((e, i) => {
      const path = `$.events[${i}]`;
      if (!isRecord(e)) {
        out.add(path, `must be an object, got ${describe(e)}`);
        return;
      }
      const index = int(e['index'], `${path}.index`, out, 0, LIMITS.events * 4);
      const pcr = int(e['pcr'], `${path}.pcr`, out, 0, LIMITS.maxPcr);
      const type = str(e['type'], `${path}.type`, out);
      const digests = digestMap(e['digests'], `${path}.digests`, out);
      if (typeof e['verified'] !== 'boolean') out.add(`${path}.verified`, 'must be a boolean');
      const dec = e['decoded'] === undefined ? undefined : decoded(e['decoded'], `${path}.decoded`, out);
      if (index !== undefined && seen.has(index)) out.add(`${path}.index`, `duplicate event index ${index}`);
      if (index !== undefined) seen.add(index);
      if (index === undefined || pcr === undefined || type === undefined || !digests) return;
      const ev: MeasuredEvent = { index, pcr, type, digests, verified: e['verified'] === true };
      events.push(dec === undefined ? ev : { ...ev, decoded: dec });
    });
  }

  let secureBoot: Measurements['secureBoot'] = { enabled: undefined };
  const sb = input['secureBoot'];
  if (!isRecord(sb)) out.add('$.secureBoot', `must be an object, got ${describe(sb)}`);
  else {
    const enabled = sb['enabled'];
    if (enabled !== undefined && typeof enabled !== 'boolean') {
      out.add('$.secureBoot.enabled', 'must be a boolean or absent');
    }
    const idx =
      sb['eventIndex'] === undefined
        ? undefined
        : int(sb['eventIndex'], '$.secureBoot.eventIndex', out, 0, LIMITS.events * 4);
    secureBoot = {
      enabled: typeof enabled === 'boolean' ? enabled : undefined,
      ...(idx === undefined ? {} : { eventIndex: idx }),
    };
  }

  let dbx: string[] = [];
  const rawDbx = input['dbx'];
  if (!Array.isArray(rawDbx)) out.add('$.dbx', `must be an array, got ${describe(rawDbx)}`);
  else if (rawDbx.length > LIMITS.dbxEntries) out.add('$.dbx', `more than ${LIMITS.dbxEntries} entries`);
  else {
    dbx = rawDbx.flatMap((d, i) => {
      const h = hex(d, `$.dbx[${i}]`, out, bankLength('sha256'), hexWhat('sha256'));
      return h === undefined ? [] : [h];
    });
  }
  const dbxEventIndex =
    input['dbxEventIndex'] === undefined
      ? undefined
      : int(input['dbxEventIndex'], '$.dbxEventIndex', out, 0, LIMITS.events * 4);

  const bootApplications: BootApplication[] = [];
  const rawApps = input['bootApplications'];
  if (!Array.isArray(rawApps)) out.add('$.bootApplications', `must be an array, got ${describe(rawApps)}`);
  else if (rawApps.length > LIMITS.bootApplications) {
    out.add('$.bootApplications', `more than ${LIMITS.bootApplications} entries`);
  } else {
    rawApps.forEach((a, i) => {
      const path = `$.bootApplications[${i}]`;
      if (!isRecord(a)) {
        out.add(path, `must be an object, got ${describe(a)}`);
        return;
      }
      const digest = hex(a['digest'], `${path}.digest`, out, bankLength('sha256'), hexWhat('sha256'));
      const p = a['path'] === undefined ? undefined : str(a['path'], `${path}.path`, out);
      const eventIndex = int(a['eventIndex'], `${path}.eventIndex`, out, 0, LIMITS.events * 4);
      if (digest === undefined || eventIndex === undefined) return;
      bootApplications.push(p === undefined ? { digest, eventIndex } : { digest, path: p, eventIndex });
    });
  }

  if (out.total > 0 || hostId === undefined || attestationId === undefined) fail('MEASUREMENTS_INVALID', out);
  return deepFreeze({
    hostId,
    attestationId,
    pcrs,
    events,
    secureBoot,
    dbx,
    ...(dbxEventIndex === undefined ? {} : { dbxEventIndex }),
    bootApplications,
  });
}
