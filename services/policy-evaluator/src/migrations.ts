// Schema of the policy-evaluator store, in order; an applied migration is never edited (checksummed).
import type { Migration } from '@hostgate/service-runtime';

export const migrations: readonly Migration[] = [];
