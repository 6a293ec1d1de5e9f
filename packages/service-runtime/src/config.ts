// Typed service configuration: defaults in code, overridden by a plain object (a config
// file, a test) and then by HOSTGATE_* environment variables. Unknown keys are an error
// and every value is validated before the service starts, so a typo fails loudly at boot
// instead of silently running on a default.

/** One configuration key: how to read it from a string (env) or a JSON value (object). */
export interface Field<T> {
  readonly kind: string;
  readonly default: T;
  readonly doc: string;
  /** Absolute environment variable name instead of `<prefix><KEY_IN_SNAKE_CASE>`. */
  readonly env?: string;
  /** Returns the parsed value or throws an Error whose message says what is wrong. */
  parse(raw: unknown): T;
}

export type Schema = Record<string, Field<unknown>>;

/** The typed configuration a schema describes. */
export type ConfigOf<S extends Schema> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : never };

export type ConfigErrorCode = 'CONFIG_UNKNOWN_KEY' | 'CONFIG_INVALID_VALUE';

export interface ConfigProblem {
  readonly code: ConfigErrorCode;
  /** Where the bad key or value came from: `env HOSTGATE_X` or `config key x`. */
  readonly source: string;
  readonly message: string;
}

/** Every problem found in one pass, so an operator fixes them all at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code: ConfigErrorCode;
  readonly problems: readonly ConfigProblem[];
  constructor(component: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.source}: ${p.message}`);
    super(`invalid configuration for ${component}:\n${lines.join('\n')}`);
    this.problems = problems;
    this.code = problems[0]?.code ?? 'CONFIG_INVALID_VALUE';
  }
}

function describe(raw: unknown): string {
  const s = typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function field<T>(kind: string, def: T, doc: string, parse: (raw: unknown) => T, env?: string): Field<T> {
  return env === undefined ? { kind, default: def, doc, parse } : { kind, default: def, doc, parse, env };
}

export interface FieldOptions {
  env?: string;
}

export function string(
  def: string,
  doc: string,
  opts: FieldOptions & { nonEmpty?: boolean } = {},
): Field<string> {
  return field(
    'string',
    def,
    doc,
    (raw) => {
      if (typeof raw !== 'string') throw new Error(`expected a string, got ${describe(raw)}`);
      if (opts.nonEmpty && raw.trim() === '') throw new Error('must not be empty');
      return raw;
    },
    opts.env,
  );
}

/** A string that may be absent (undefined when unset or empty). */
export function optionalString(doc: string, opts: FieldOptions = {}): Field<string | undefined> {
  return field<string | undefined>(
    'string?',
    undefined,
    doc,
    (raw) => {
      if (raw === undefined || raw === null || raw === '') return undefined;
      if (typeof raw !== 'string') throw new Error(`expected a string, got ${describe(raw)}`);
      return raw;
    },
    opts.env,
  );
}

export function integer(
  def: number,
  doc: string,
  opts: FieldOptions & { min?: number; max?: number } = {},
): Field<number> {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  return field(
    'integer',
    def,
    doc,
    (raw) => {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && /^-?\d+$/.test(raw.trim())) n = Number(raw.trim());
      else throw new Error(`expected an integer, got ${describe(raw)}`);
      if (!Number.isSafeInteger(n)) throw new Error(`expected an integer, got ${describe(raw)}`);
      if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
      return n;
    },
    opts.env,
  );
}

export function boolean(def: boolean, doc: string, opts: FieldOptions = {}): Field<boolean> {
  return field(
    'boolean',
    def,
    doc,
    (raw) => {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase();
        if (v === 'true' || v === '1' || v === 'yes') return true;
        if (v === 'false' || v === '0' || v === 'no') return false;
      }
      throw new Error(`expected true or false, got ${describe(raw)}`);
    },
    opts.env,
  );
}

export function oneOf<const V extends string>(
  values: readonly V[],
  def: V,
  doc: string,
  opts: FieldOptions = {},
): Field<V> {
  return field(
    `one of ${values.join('|')}`,
    def,
    doc,
    (raw) => {
      if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as V;
      throw new Error(`expected one of ${values.join(', ')}, got ${describe(raw)}`);
    },
    opts.env,
  );
}

/** `host:port` (IPv6 hosts in brackets); port 0 asks the kernel for a free one. */
export function address(def: string, doc: string, opts: FieldOptions = {}): Field<string> {
  return field(
    'host:port',
    def,
    doc,
    (raw) => {
      if (typeof raw !== 'string') throw new Error(`expected host:port, got ${describe(raw)}`);
      parseAddress(raw);
      return raw;
    },
    opts.env,
  );
}

/** Splits `host:port`, `[v6]:port`; throws with a readable message when malformed. */
export function parseAddress(raw: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw.trim());
  if (m === null) throw new Error(`expected host:port (e.g. 127.0.0.1:50051), got ${describe(raw)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`port must be at most 65535, got ${port}`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

/** camelCase key to the env name under a prefix: dataDir -> HOSTGATE_DATA_DIR. */
export function envName(prefix: string, key: string): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export interface LoadConfigOptions {
  /** Name used in error messages, e.g. `quote-collector`. */
  component: string;
  /**
   * Environment variable prefix owned by this component, e.g. `HOSTGATE_QUOTE_COLLECTOR_`.
   * Every variable starting with it must name a key of the schema.
   */
  envPrefix: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Values from a config file or a caller; keys must exist in the schema. */
  values?: Record<string, unknown>;
}

/** Resolves a schema: defaults, then `values`, then the environment; throws ConfigError listing every problem. */
export function loadConfig<S extends Schema>(schema: S, opts: LoadConfigOptions): ConfigOf<S> {
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const out: Record<string, unknown> = {};
  const ownedEnv = new Map<string, string>();
  for (const [key, f] of Object.entries(schema)) ownedEnv.set(f.env ?? envName(opts.envPrefix, key), key);

  for (const key of Object.keys(opts.values ?? {})) {
    if (!Object.hasOwn(schema, key))
      problems.push({
        code: 'CONFIG_UNKNOWN_KEY',
        source: `config key ${key}`,
        message: `unknown key (known: ${Object.keys(schema).join(', ')})`,
      });
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith(opts.envPrefix) && !ownedEnv.has(name))
      problems.push({
        code: 'CONFIG_UNKNOWN_KEY',
        source: `env ${name}`,
        message: `unknown variable (known: ${[...ownedEnv.keys()].filter((n) => n.startsWith(opts.envPrefix)).join(', ')})`,
      });
  }

  for (const [key, f] of Object.entries(schema)) {
    const name = f.env ?? envName(opts.envPrefix, key);
    const fromEnv = env[name];
    const fromValues = opts.values?.[key];
    let raw: unknown;
    let source: string;
    if (fromEnv !== undefined) {
      raw = fromEnv;
      source = `env ${name}`;
    } else if (fromValues !== undefined) {
      raw = fromValues;
      source = `config key ${key}`;
    } else {
      out[key] = f.default;
      continue;
    }
    try {
      out[key] = f.parse(raw);
    } catch (err) {
      problems.push({
        code: 'CONFIG_INVALID_VALUE',
        source,
        message: err instanceof Error ? err.message : String(err),
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(opts.component, problems);
  return out as ConfigOf<S>;
}

/** One line per key for docs and `--help`: env name, kind, default, meaning. */
export function describeSchema(schema: Schema, envPrefix: string): string[] {
  return Object.entries(schema).map(([key, f]) => {
    const def = f.default === undefined ? '(unset)' : JSON.stringify(f.default);
    return `${f.env ?? envName(envPrefix, key)}  ${f.kind}  default ${def}  ${f.doc}`;
  });
}
