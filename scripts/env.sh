# Source this (". scripts/env.sh") to put the project's Node 24 first on PATH.
_hg_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
if [ -d "$_hg_root/.tools/node/node_modules/.bin" ]; then
  case ":$PATH:" in
    *":$_hg_root/.tools/node/node_modules/.bin:"*) ;;
    *) PATH="$_hg_root/.tools/node/node_modules/.bin:$PATH" ;;
  esac
  export PATH
fi
export TURBO_TELEMETRY_DISABLED=1
unset _hg_root
