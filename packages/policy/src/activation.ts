// One active golden-set version per class. Pure transitions over PolicyState: the store persists the
// lists in order (sets by publication, activations append-only) and replays them through these functions.
import { PolicyStateError } from './errors.ts';
import { deepFreeze } from './freeze.ts';
import { latestVersion, type PublishOptions, publish } from './publish.ts';
import type { ActivationRecord, GoldenSet, PolicyState } from './types.ts';

export interface ActivationOptions {
  readonly now?: Date;
  /** Who did it, for the audit trail. */
  readonly actor?: string;
}

export interface ClassSummary {
  readonly class: string;
  readonly versions: readonly number[];
  readonly latest: number;
  readonly active: number | null;
}

export const EMPTY_POLICY_STATE: PolicyState = deepFreeze({ sets: [], activations: [] });

/** Active version of a class: the last activation record wins; null when none or deactivated. */
export function activeVersion(activations: readonly ActivationRecord[], cls: string): number | null {
  for (let i = activations.length - 1; i >= 0; i--) {
    const a = activations[i]!;
    if (a.class === cls) return a.version;
  }
  return null;
}

/** The golden set a host of `cls` is judged against, or undefined (→ NO_POLICY). */
export function activeGoldenSet(state: PolicyState, cls: string): GoldenSet | undefined {
  const version = activeVersion(state.activations, cls);
  if (version === null) return undefined;
  return state.sets.find((s) => s.class === cls && s.version === version);
}

/** Publishes into the state; see `publish` for the rules. */
export function publishInState(
  state: PolicyState,
  input: unknown,
  opts: PublishOptions = {},
): { state: PolicyState; set: GoldenSet } {
  const set = publish(state.sets, input, opts);
  if (state.sets.includes(set)) return { state, set };
  return { state: deepFreeze({ sets: [...state.sets, set], activations: state.activations }), set };
}

function record(
  state: PolicyState,
  cls: string,
  version: number | null,
  opts: ActivationOptions,
): PolicyState {
  const rec: ActivationRecord = {
    class: cls,
    version,
    at: (opts.now ?? new Date()).toISOString(),
    ...(opts.actor === undefined ? {} : { actor: opts.actor }),
  };
  return deepFreeze({ sets: state.sets, activations: [...state.activations, rec] });
}

/**
 * Makes `version` the active one for `cls` (any published version: forward, or back for a rollback).
 * Activating the version already active returns the state unchanged, so a retried call adds no record.
 */
export function activate(
  state: PolicyState,
  cls: string,
  version: number,
  opts: ActivationOptions = {},
): PolicyState {
  if (!state.sets.some((s) => s.class === cls && s.version === version)) {
    throw new PolicyStateError(
      'UNKNOWN_VERSION',
      `golden set ${cls} v${version} is not published (latest: ${latestVersion(state.sets, cls) || 'none'})`,
      cls,
      version,
    );
  }
  if (activeVersion(state.activations, cls) === version) return state;
  return record(state, cls, version, opts);
}

/** Leaves `cls` with no active version: its hosts are refused NO_POLICY until one is activated. */
export function deactivate(state: PolicyState, cls: string, opts: ActivationOptions = {}): PolicyState {
  if (activeVersion(state.activations, cls) === null) return state;
  return record(state, cls, null, opts);
}

/** One line per class for `hostgate policy list`. */
export function summarizeClasses(state: PolicyState): readonly ClassSummary[] {
  const byClass = new Map<string, number[]>();
  for (const s of state.sets) {
    const list = byClass.get(s.class) ?? [];
    list.push(s.version);
    byClass.set(s.class, list);
  }
  for (const a of state.activations) if (!byClass.has(a.class)) byClass.set(a.class, []);
  return deepFreeze(
    [...byClass.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([cls, versions]) => {
        const sorted = [...versions].sort((x, y) => x - y);
        return {
          class: cls,
          versions: sorted,
          latest: sorted.at(-1) ?? 0,
          active: activeVersion(state.activations, cls),
        };
      }),
  );
}
