// hostgate policy: the operators' side of policy-evaluator — golden sets (capture, publish, activate,
// list, show), host classes and verdict history. Every call names the operator (audit log).
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type {
  GoldenSet,
  GoldenSet__Output,
  PolicyEvaluatorServiceClient,
  PolicyRule,
  PolicyRule__Output,
  Verdict__Output,
} from '@hostgate/protos';
import { dateFromTimestamp } from '@hostgate/protos';
import { CliUsageError, type Command, EXIT_OK, EXIT_REFUSED } from '../command.ts';
import { createServiceClient, deadline, describeGrpcError, serviceAddress, unary } from '../grpc-client.ts';

const USAGE = `usage: hostgate policy capture --host ID [--class C] [--activate] [--description TEXT] [--json]
       hostgate policy list [--class C] [--active] [--json]
       hostgate policy show CLASS [VERSION] [--json]
       hostgate policy publish FILE [--activate] [--json]
       hostgate policy activate CLASS VERSION [--reason TEXT]
       hostgate policy deactivate CLASS [--reason TEXT]
       hostgate policy assign HOST CLASS
       hostgate policy verdicts HOST [--failed] [--limit N] [--json]

  capture     publish a golden set from the host's last measurements that replayed
              (PCRs 0-7, Secure Boot, dbx, boot applications); --activate makes it active
  list        published golden sets, newest version first per class
  show        one golden set with its rules (VERSION omitted: the active one)
  publish     publish FILE (golden-set JSON, docs/policy.md) as the class's next version
  activate    make VERSION the class's only active golden set
  deactivate  leave the class without an active set: its hosts are refused NO_POLICY
  assign      put a host in a class (hosts start in "default")
  verdicts    a host's verdicts, newest first, with every failed rule

options for every subcommand:
  --server ADDR     policy-evaluator address (default HOSTGATE_POLICY_EVALUATOR_ADDRESS or 127.0.0.1:50053)
  --operator NAME   who is acting, for the audit log (default HOSTGATE_OPERATOR, else the login name)

HOSTGATE_ADMIN_TOKEN, when set, is sent as the bearer token that calls changing policy need when the
evaluator is configured with one (HOSTGATE_POLICY_EVALUATOR_ADMIN_TOKEN).

Exit status: 0 done, 1 refused by the service (or unreachable), 2 usage error.`;

const COMMON = {
  server: { type: 'string' },
  operator: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Golden-set JSON files are capped like the policy library caps them. */
const MAX_FILE_BYTES = 4 << 20;

const BANK_BY_ALGORITHM: Readonly<Record<string, string>> = {
  HASH_ALGORITHM_SHA1: 'sha1',
  HASH_ALGORITHM_SHA256: 'sha256',
  HASH_ALGORITHM_SHA384: 'sha384',
  HASH_ALGORITHM_SHA512: 'sha512',
  HASH_ALGORITHM_SM3_256: 'sm3_256',
};
const ALGORITHM_BY_BANK: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(BANK_BY_ALGORITHM).map(([a, b]) => [b, a]),
);

/** A file or argument the CLI refuses before calling the service (exit 1, like a service refusal). */
class InputError extends Error {}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// ---- golden-set JSON (docs/policy.md) ↔ proto ----

function ruleToJson(r: PolicyRule__Output): Record<string, unknown> {
  const base: Record<string, unknown> = { id: r.id };
  if (r.description) base['description'] = r.description;
  if (r.pcrExact)
    return {
      ...base,
      kind: 'pcr-exact',
      bank: BANK_BY_ALGORITHM[r.pcrExact.hashAlgorithm] ?? r.pcrExact.hashAlgorithm,
      pcr: r.pcrExact.pcr,
      allowed: r.pcrExact.allowed.map(hex),
    };
  if (r.eventAllowlist) {
    const rule: Record<string, unknown> = { ...base, kind: 'event-allowlist', pcr: r.eventAllowlist.pcr };
    if (r.eventAllowlist.eventTypeName) rule['eventType'] = r.eventAllowlist.eventTypeName;
    const bank = BANK_BY_ALGORITHM[r.eventAllowlist.hashAlgorithm];
    if (bank) rule['bank'] = bank;
    rule['allowed'] = r.eventAllowlist.allowed.map(hex);
    return rule;
  }
  if (r.secureBootEnabled) return { ...base, kind: 'secure-boot-enabled' };
  if (r.dbxContains) return { ...base, kind: 'dbx-contains', required: r.dbxContains.required.map(hex) };
  if (r.forbiddenDigests)
    return { ...base, kind: 'forbidden-digests', digests: r.forbiddenDigests.digests.map(hex) };
  return { ...base, kind: 'unknown' };
}

function setToJson(g: GoldenSet__Output, withRules = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    class: g.hostClass,
    version: g.version,
    createdAt: dateFromTimestamp(g.createdAt)?.toISOString() ?? null,
    createdBy: g.createdBy,
    active: g.active,
  };
  if (g.description) out['description'] = g.description;
  if (withRules) out['rules'] = g.rules.map(ruleToJson);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(v: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(v))
    if (!allowed.includes(k))
      throw new InputError(`${path}.${k}: unknown key (a typo must never weaken a policy)`);
}

function digests(v: unknown, path: string): Buffer[] {
  if (!Array.isArray(v)) throw new InputError(`${path}: must be an array of hex digests`);
  return v.map((h, i) => {
    if (typeof h !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(h))
      throw new InputError(`${path}[${i}]: must be a hex digest`);
    return Buffer.from(h, 'hex');
  });
}

function algorithm(bank: unknown, path: string): string {
  const alg = typeof bank === 'string' ? ALGORITHM_BY_BANK[bank] : undefined;
  if (alg === undefined)
    throw new InputError(`${path}: must be one of ${Object.keys(ALGORITHM_BY_BANK).join(', ')}`);
  return alg;
}

function ruleFromJson(r: unknown, path: string): PolicyRule {
  if (!isRecord(r)) throw new InputError(`${path}: must be an object`);
  const base: PolicyRule = {};
  if (r['id'] !== undefined) base.id = String(r['id']);
  if (r['description'] !== undefined) base.description = String(r['description']);
  const common = ['id', 'description', 'kind'];
  switch (r['kind']) {
    case 'pcr-exact':
      onlyKeys(r, [...common, 'bank', 'pcr', 'allowed'], path);
      return {
        ...base,
        pcrExact: {
          hashAlgorithm: algorithm(r['bank'], `${path}.bank`) as 'HASH_ALGORITHM_SHA256',
          pcr: Number(r['pcr']),
          allowed: digests(r['allowed'], `${path}.allowed`),
        },
      };
    case 'event-allowlist':
      onlyKeys(r, [...common, 'pcr', 'eventType', 'bank', 'allowed'], path);
      return {
        ...base,
        eventAllowlist: {
          pcr: Number(r['pcr']),
          eventTypeName: r['eventType'] === undefined ? '' : String(r['eventType']),
          hashAlgorithm: (r['bank'] === undefined
            ? 'HASH_ALGORITHM_UNSPECIFIED'
            : algorithm(r['bank'], `${path}.bank`)) as 'HASH_ALGORITHM_SHA256',
          allowed: digests(r['allowed'], `${path}.allowed`),
        },
      };
    case 'secure-boot-enabled':
      onlyKeys(r, common, path);
      return { ...base, secureBootEnabled: {} };
    case 'dbx-contains':
      onlyKeys(r, [...common, 'required'], path);
      return { ...base, dbxContains: { required: digests(r['required'], `${path}.required`) } };
    case 'forbidden-digests':
      onlyKeys(r, [...common, 'digests'], path);
      return { ...base, forbiddenDigests: { digests: digests(r['digests'], `${path}.digests`) } };
    default:
      throw new InputError(
        `${path}.kind: must be pcr-exact, event-allowlist, secure-boot-enabled, dbx-contains or forbidden-digests`,
      );
  }
}

/** A golden-set JSON file (a draft, or a set as `show --json` prints it) → the proto to publish. */
export function goldenSetFromJson(text: string): GoldenSet {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InputError(`not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(v)) throw new InputError('$: must be a golden-set object');
  // version/createdAt/createdBy/active are what the service assigns: accepted so a shown set can be republished.
  onlyKeys(v, ['class', 'description', 'rules', 'version', 'createdAt', 'createdBy', 'active'], '$');
  if (typeof v['class'] !== 'string') throw new InputError('$.class: must be a string');
  if (!Array.isArray(v['rules'])) throw new InputError('$.rules: must be an array');
  const out: GoldenSet = {
    hostClass: v['class'],
    rules: v['rules'].map((r, i) => ruleFromJson(r, `$.rules[${i}]`)),
  };
  if (v['description'] !== undefined) out.description = String(v['description']);
  return out;
}

// ---- output ----

function write(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

function describeSet(g: GoldenSet__Output): string {
  return `${g.hostClass} v${g.version}${g.active ? ' (active)' : ''}: ${g.rules.length} rules`;
}

function ruleLine(r: Record<string, unknown>): string {
  const { id, kind, description, ...rest } = r;
  const values = Object.entries(rest)
    .map(
      ([k, v]) =>
        `${k}=${Array.isArray(v) ? (v.length <= 3 ? v.join(',') : `${v.length} values`) : String(v)}`,
    )
    .join(' ');
  return `  ${String(id).padEnd(24)} ${String(kind).padEnd(20)} ${values}${description ? `  # ${description}` : ''}`;
}

function verdictToJson(v: Verdict__Output): Record<string, unknown> {
  return {
    verdictId: v.verdictId,
    attestationId: v.attestationId,
    hostId: v.hostId,
    pass: v.pass,
    hostClass: v.hostClass,
    policyVersion: v.policyVersion,
    evaluatedAt: dateFromTimestamp(v.evaluatedAt)?.toISOString() ?? null,
    message: v.message,
    refusals: v.refusals.map((r) => ({ code: r.code, message: r.message, details: r.details })),
    failedRules: v.failedRules.map((f) => {
      const o: Record<string, unknown> = {
        ruleId: f.ruleId,
        kind: f.kind,
        code: f.code,
        reason: f.reason,
        expected: JSON.parse(f.expected || 'null'),
        observed: JSON.parse(f.observed || 'null'),
        message: f.message,
      };
      if (f.eventIndex !== undefined) o['eventIndex'] = f.eventIndex;
      if (f.eventIndices.length > 0) o['eventIndices'] = f.eventIndices;
      return o;
    }),
    passedRuleIds: v.passedRuleIds,
  };
}

// ---- subcommands ----

interface Ctx {
  client: PolicyEvaluatorServiceClient;
  metadata: grpc.Metadata;
  json: boolean;
}

function opts(): grpc.CallOptions {
  return { deadline: deadline() };
}

function positionals(args: string[], min: number, max: number, what: string): string[] {
  if (args.length < min || args.length > max) throw new CliUsageError(`expected ${what}`);
  return args;
}

function version(s: string): number {
  if (!/^[1-9]\d{0,9}$/.test(s) || Number(s) > 0xffffffff)
    throw new CliUsageError(`VERSION must be a positive integer, got '${s}'`);
  return Number(s);
}

async function capture(ctx: Ctx, values: Record<string, unknown>): Promise<number> {
  const host = values['host'];
  if (typeof host !== 'string' || host === '') throw new CliUsageError('capture needs --host ID');
  const res = await unary<{ goldenSet: GoldenSet__Output | null; attestationId: string }>((cb) =>
    ctx.client.Capture(
      {
        hostId: host,
        hostClass: (values['class'] as string | undefined) ?? '',
        activate: values['activate'] === true,
        description: (values['description'] as string | undefined) ?? '',
      },
      ctx.metadata,
      opts(),
      cb,
    ),
  );
  const g = res.goldenSet;
  if (!g) throw new Error('Capture returned no golden set');
  if (ctx.json) write(JSON.stringify({ attestationId: res.attestationId, goldenSet: setToJson(g) }));
  else write(`captured ${describeSet(g)} from host ${host}, attestation ${res.attestationId}`);
  return EXIT_OK;
}

async function list(ctx: Ctx, values: Record<string, unknown>): Promise<number> {
  const sets: GoldenSet__Output[] = [];
  let pageToken = '';
  do {
    const res = await unary<{ goldenSets: GoldenSet__Output[]; nextPageToken: string }>((cb) =>
      ctx.client.ListGoldenSets(
        {
          hostClass: (values['class'] as string | undefined) ?? '',
          activeOnly: values['active'] === true,
          omitRules: !ctx.json,
          pageSize: 1000,
          pageToken,
        },
        ctx.metadata,
        opts(),
        cb,
      ),
    );
    sets.push(...res.goldenSets);
    pageToken = res.nextPageToken;
  } while (pageToken !== '' && sets.length < 100_000);
  if (ctx.json) {
    write(JSON.stringify(sets.map((g) => setToJson(g))));
    return EXIT_OK;
  }
  if (sets.length === 0) {
    write('no golden sets published');
    return EXIT_OK;
  }
  const rows = [['CLASS', 'VERSION', 'ACTIVE', 'CREATED', 'BY', 'DESCRIPTION']];
  for (const g of sets)
    rows.push([
      g.hostClass,
      String(g.version),
      g.active ? 'yes' : '',
      dateFromTimestamp(g.createdAt)?.toISOString() ?? '',
      g.createdBy,
      g.description,
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    write(
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  return EXIT_OK;
}

async function show(ctx: Ctx, args: string[]): Promise<number> {
  const [cls, v] = positionals(args, 1, 2, 'CLASS [VERSION]');
  const res = await unary<{ goldenSet: GoldenSet__Output | null }>((cb) =>
    ctx.client.GetGoldenSet(
      { hostClass: cls, version: v === undefined ? 0 : version(v) },
      ctx.metadata,
      opts(),
      cb,
    ),
  );
  const g = res.goldenSet;
  if (!g) throw new Error('GetGoldenSet returned no golden set');
  if (ctx.json) {
    write(JSON.stringify(setToJson(g)));
    return EXIT_OK;
  }
  write(describeSet(g));
  write(
    `  published ${dateFromTimestamp(g.createdAt)?.toISOString() ?? '?'} by ${g.createdBy}${g.description ? `: ${g.description}` : ''}`,
  );
  for (const r of g.rules) write(ruleLine(ruleToJson(r)));
  return EXIT_OK;
}

async function publish(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<number> {
  const [file] = positionals(args, 1, 1, 'FILE');
  let text: string;
  try {
    const size = (await stat(file!)).size;
    if (size > MAX_FILE_BYTES) throw new InputError(`${file}: ${size} bytes, limit ${MAX_FILE_BYTES}`);
    text = await readFile(file!, 'utf8');
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(
      `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const draft = goldenSetFromJson(text);
  const res = await unary<{ goldenSet: GoldenSet__Output | null }>((cb) =>
    ctx.client.PublishGoldenSet({ goldenSet: draft }, ctx.metadata, opts(), cb),
  );
  let g = res.goldenSet;
  if (!g) throw new Error('PublishGoldenSet returned no golden set');
  if (values['activate'] === true) {
    const act = await unary<{ goldenSet: GoldenSet__Output | null }>((cb) =>
      ctx.client.ActivateGoldenSet(
        { hostClass: g!.hostClass, version: g!.version, reason: 'published with --activate' },
        ctx.metadata,
        opts(),
        cb,
      ),
    );
    g = act.goldenSet ?? g;
  }
  if (ctx.json) write(JSON.stringify(setToJson(g)));
  else write(`published ${describeSet(g)}`);
  return EXIT_OK;
}

async function activate(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<number> {
  const [cls, v] = positionals(args, 2, 2, 'CLASS VERSION');
  const res = await unary<{ goldenSet: GoldenSet__Output | null; previousVersion: number }>((cb) =>
    ctx.client.ActivateGoldenSet(
      { hostClass: cls, version: version(v!), reason: (values['reason'] as string | undefined) ?? '' },
      ctx.metadata,
      opts(),
      cb,
    ),
  );
  if (ctx.json)
    write(JSON.stringify({ class: cls, version: Number(v), previousVersion: res.previousVersion }));
  else write(`${cls} v${v} is active${res.previousVersion ? ` (was v${res.previousVersion})` : ''}`);
  return EXIT_OK;
}

async function deactivate(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<number> {
  const [cls] = positionals(args, 1, 1, 'CLASS');
  const res = await unary<{ previousVersion: number }>((cb) =>
    ctx.client.DeactivateGoldenSet(
      { hostClass: cls, reason: (values['reason'] as string | undefined) ?? '' },
      ctx.metadata,
      opts(),
      cb,
    ),
  );
  if (ctx.json) write(JSON.stringify({ class: cls, previousVersion: res.previousVersion }));
  else
    write(
      `${cls} has no active golden set${res.previousVersion ? ` (was v${res.previousVersion})` : ''}; its hosts are refused NO_POLICY`,
    );
  return EXIT_OK;
}

async function assign(ctx: Ctx, args: string[]): Promise<number> {
  const [host, cls] = positionals(args, 2, 2, 'HOST CLASS');
  const res = await unary<{ previousHostClass: string }>((cb) =>
    ctx.client.AssignHostClass({ hostId: host, hostClass: cls }, ctx.metadata, opts(), cb),
  );
  if (ctx.json) write(JSON.stringify({ hostId: host, class: cls, previousClass: res.previousHostClass }));
  else write(`host ${host} is in class ${cls} (was ${res.previousHostClass})`);
  return EXIT_OK;
}

async function verdicts(ctx: Ctx, args: string[], values: Record<string, unknown>): Promise<number> {
  const [host] = positionals(args, 1, 1, 'HOST');
  const limitText = (values['limit'] as string | undefined) ?? '20';
  if (!/^[1-9]\d{0,3}$/.test(limitText) || Number(limitText) > 1000)
    throw new CliUsageError('--limit must be 1 to 1000');
  const res = await unary<{ verdicts: Verdict__Output[] }>((cb) =>
    ctx.client.ListVerdicts(
      { hostId: host, failedOnly: values['failed'] === true, pageSize: Number(limitText) },
      ctx.metadata,
      opts(),
      cb,
    ),
  );
  if (ctx.json) {
    write(JSON.stringify(res.verdicts.map(verdictToJson)));
    return EXIT_OK;
  }
  if (res.verdicts.length === 0) write(`no verdicts for host ${host}`);
  for (const v of res.verdicts) {
    const when = dateFromTimestamp(v.evaluatedAt)?.toISOString() ?? '?';
    const policy = v.policyVersion ? `${v.hostClass} v${v.policyVersion}` : `${v.hostClass} (no policy)`;
    write(`${when}  ${v.pass ? 'PASS' : 'FAIL'}  ${policy}  attestation ${v.attestationId}`);
    for (const r of v.refusals) write(`    ${r.code}: ${r.message}`);
  }
  return EXIT_OK;
}

function operatorName(values: Record<string, unknown>): string {
  const given = values['operator'];
  if (typeof given === 'string' && given.trim() !== '') return given.trim();
  const env = process.env['HOSTGATE_OPERATOR'];
  if (env !== undefined && env.trim() !== '') return env.trim();
  try {
    return os.userInfo().username;
  } catch {
    return 'anonymous';
  }
}

const SUBCOMMANDS = ['capture', 'list', 'show', 'publish', 'activate', 'deactivate', 'assign', 'verdicts'];

export const command: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === undefined) throw new CliUsageError(`a subcommand is required (${SUBCOMMANDS.join(', ')})`);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const extra: ParseArgsOptionsConfig =
    sub === 'capture'
      ? {
          host: { type: 'string' },
          class: { type: 'string' },
          activate: { type: 'boolean', default: false },
          description: { type: 'string' },
        }
      : sub === 'list'
        ? { class: { type: 'string' }, active: { type: 'boolean', default: false } }
        : sub === 'publish'
          ? { activate: { type: 'boolean', default: false } }
          : sub === 'activate' || sub === 'deactivate'
            ? { reason: { type: 'string' } }
            : sub === 'verdicts'
              ? { failed: { type: 'boolean', default: false }, limit: { type: 'string' } }
              : {};
  if (!SUBCOMMANDS.includes(sub))
    throw new CliUsageError(`unknown subcommand '${sub}' (${SUBCOMMANDS.join(', ')})`);
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...COMMON, ...extra },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  const { values } = parsed;
  if (values['help'] === true) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if ((sub === 'capture' || sub === 'list') && parsed.positionals.length > 0)
    throw new CliUsageError(`unexpected argument '${parsed.positionals[0]}'`);
  const server = values['server'] as string | undefined;
  const address = serviceAddress('policy-evaluator', server);
  const metadata = new grpc.Metadata();
  metadata.set('x-hostgate-operator', operatorName(values));
  // Needed by the calls that change policy when the evaluator has an admin token configured.
  const token = process.env['HOSTGATE_ADMIN_TOKEN'];
  if (token !== undefined && token.trim() !== '') metadata.set('authorization', `Bearer ${token.trim()}`);
  const client = createServiceClient('policy-evaluator', server === undefined ? {} : { server });
  const ctx: Ctx = { client, metadata, json: values['json'] === true };
  try {
    switch (sub) {
      case 'capture':
        return await capture(ctx, values);
      case 'list':
        return await list(ctx, values);
      case 'show':
        return await show(ctx, parsed.positionals);
      case 'publish':
        return await publish(ctx, parsed.positionals, values);
      case 'activate':
        return await activate(ctx, parsed.positionals, values);
      case 'deactivate':
        return await deactivate(ctx, parsed.positionals, values);
      case 'assign':
        return await assign(ctx, parsed.positionals);
      default:
        return await verdicts(ctx, parsed.positionals, values);
    }
  } catch (err) {
    if (err instanceof CliUsageError) throw err;
    const message = err instanceof InputError ? err.message : describeGrpcError(err, address);
    if (ctx.json) write(JSON.stringify({ error: message }));
    process.stderr.write(`hostgate policy ${sub}: ${message}\n`);
    return EXIT_REFUSED;
  } finally {
    client.close();
  }
};
