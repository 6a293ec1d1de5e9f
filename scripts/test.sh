#!/usr/bin/env bash
# The whole suite, as README and .ci/run run it: generate, type-check, lint, then every
# test file in one node:test run. Tiers that need Java (Kafka), swtpm/tpm2-tools or
# ../shared/corpus skip themselves, with the reason, when those are absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=/dev/null
. scripts/env.sh
if [ ! -d node_modules ]; then
  echo "test: node_modules is missing; run scripts/setup.sh first" >&2
  exit 2
fi
step() { printf '\n== %s\n' "$*"; }

step "generate + typecheck"
npx turbo run generate typecheck --output-logs=errors-only --log-prefix=task
step "lint"
npx biome check .
step "tests"
# Every test file runs in its own process; two at a time on a 2-core machine.
files=()
while IFS= read -r f; do files+=("$f"); done < <(
  find packages services test-e2e bench -path '*/node_modules' -prune -o -name '*.test.ts' -print | sort)
exec scripts/node --test --test-concurrency="${HOSTGATE_TEST_CONCURRENCY:-2}" \
  --test-timeout="${HOSTGATE_TEST_TIMEOUT_MS:-600000}" "${files[@]}"
