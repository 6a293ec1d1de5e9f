// Publication: a draft becomes version N+1 of its class; a published (class, version) never changes.
import { PolicyStateError } from './errors.ts';
import { deepFreeze } from './freeze.ts';
import type { GoldenSet, GoldenSetDraft } from './types.ts';
import { LIMITS, validateGoldenSet, validateGoldenSetDraft } from './validate.ts';

export interface PublishOptions {
  /** Publication time; the current time when absent. */
  readonly now?: Date;
}

/** Key-sorted JSON, so two sets with the same content compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function content(s: GoldenSetDraft): string {
  return canonicalJson({ class: s.class, description: s.description, rules: s.rules });
}

/** Highest published version of a class, 0 when none. */
export function latestVersion(existing: readonly GoldenSet[], cls: string): number {
  let max = 0;
  for (const s of existing) if (s.class === cls && s.version > max) max = s.version;
  return max;
}

/**
 * Publishes `input` as the next version of its class and returns the frozen golden set.
 * `input` is validated (it may come straight from JSON). If it names a version:
 * - already published with the same content → that published set is returned (a retried publish);
 * - already published with other content → PolicyStateError VERSION_PUBLISHED (published sets are immutable);
 * - not the next version → PolicyStateError VERSION_CONFLICT (someone else published meanwhile).
 */
export function publish(
  existing: readonly GoldenSet[],
  input: unknown,
  opts: PublishOptions = {},
): GoldenSet {
  const hasVersion = typeof input === 'object' && input !== null && 'version' in input;
  let draft: GoldenSetDraft;
  let wanted: number | undefined;
  if (hasVersion) {
    const { version, createdAt: _ignored, ...rest } = input as Record<string, unknown>;
    const checked = validateGoldenSet({ ...rest, version, createdAt: new Date(0).toISOString() });
    wanted = checked.version;
    draft =
      checked.description === undefined
        ? { class: checked.class, rules: checked.rules }
        : { class: checked.class, description: checked.description, rules: checked.rules };
  } else {
    draft = validateGoldenSetDraft(input);
  }
  const cls = draft.class;
  const latest = latestVersion(existing, cls);
  if (wanted !== undefined) {
    const published = existing.find((s) => s.class === cls && s.version === wanted);
    if (published) {
      if (content(published) === content(draft)) return deepFreeze(published);
      throw new PolicyStateError(
        'VERSION_PUBLISHED',
        `golden set ${cls} v${wanted} is already published and cannot change; publish a new version instead`,
        cls,
        wanted,
      );
    }
    if (wanted !== latest + 1) {
      throw new PolicyStateError(
        'VERSION_CONFLICT',
        `golden set ${cls}: asked to publish v${wanted} but the next version is v${latest + 1}`,
        cls,
        wanted,
      );
    }
  }
  const version = latest + 1;
  if (version > LIMITS.maxVersion) {
    throw new PolicyStateError('VERSION_LIMIT', `golden set ${cls}: no versions left`, cls, null);
  }
  const createdAt = (opts.now ?? new Date()).toISOString();
  return deepFreeze({ ...draft, version, createdAt });
}
