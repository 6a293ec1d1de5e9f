#!/usr/bin/env bash
# One-time setup for a fresh clone: Node.js 24 when the system's is older than 22, then
# the npm packages. With --system (CI, or a root shell) it also installs swtpm and
# tpm2-tools from Debian and fetches the pinned Kafka jars, so every test tier can run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

NODE_VERSION=24
major=0
if command -v node >/dev/null 2>&1; then major=$(node -p 'process.versions.node.split(".")[0]'); fi
if [ "$major" -lt 22 ] && [ ! -x .tools/node/node_modules/.bin/node ]; then
  echo "setup: system Node is $(node --version 2>/dev/null || echo absent); installing node@$NODE_VERSION into .tools/node"
  mkdir -p .tools/node
  npm install --prefix .tools/node --no-save --no-package-lock "node@$NODE_VERSION" >/dev/null
fi
# shellcheck source=/dev/null
. scripts/env.sh
echo "setup: using Node $(node --version)"

if [ "${1:-}" = "--system" ]; then
  if ! command -v swtpm >/dev/null || ! command -v tpm2_quote >/dev/null || ! command -v openssl >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing swtpm, swtpm-tools, tpm2-tools"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swtpm swtpm-tools tpm2-tools openssl >/dev/null
    else
      echo "setup: swtpm/tpm2-tools missing and not root; the TPM test tier will be skipped" >&2
    fi
  fi
fi

npm ci --no-audit --no-fund
# Types generated from protos/ (packages/protos/src/gen is not committed; npm test regenerates them too).
npx turbo run generate --output-logs=errors-only
# The embedded database's initdb, once per user, so the first npm start is quick.
scripts/node scripts/warm-pglite.ts

if [ "${1:-}" = "--system" ] && [ -x scripts/kafka.sh ] && command -v java >/dev/null && command -v mvn >/dev/null; then
  scripts/kafka.sh fetch
fi
