#!/usr/bin/env bash
# `npm test`: installs what the tests need on a fresh Debian machine, builds,
# and runs every test (unit tests under src/, end-to-end tests under test/).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
  echo "test/run.sh: $*" >&2
  exit 1
}

# ---- system packages (apt) ---------------------------------------------------
# Real peers the interop tests and benches talk to: redis-server (Redis' own replies to
# compare against), redis-cli and redis-benchmark (from redis-tools), influxd 1.x (a stream sink).
APT_PACKAGES=(redis-server redis-tools influxdb)
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
  else
    echo "test/run.sh: not root or no apt-get: not installing ${APT_PACKAGES[*]}" >&2
  fi
fi

# ---- Node.js and npm packages ------------------------------------------------
command -v node >/dev/null 2>&1 || fail "node is not installed (Node.js 20 or newer is required)"
command -v npm >/dev/null 2>&1 || fail "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node.js 20 or newer is required (found $(node --version))"

if [ ! -d node_modules ]; then
  npm install --no-audit --no-fund
fi
for peer in tsx typescript pouchdb pouchdb-adapter-memory ioredis; do
  [ -f "node_modules/$peer/package.json" ] ||
    fail "the npm package '$peer' is missing from node_modules; run 'npm install' (it is a devDependency)"
done

npm run build

# ---- the tests ---------------------------------------------------------------
mapfile -t tests < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
[ "${#tests[@]}" -gt 0 ] || fail "no test files found under src/ or test/"
echo "test/run.sh: running ${#tests[@]} test files" >&2
# --test-force-exit: a file's process ends once its tests have, even if a socket or pipe of
# its test harness is still open (a file of passed tests once waited out the 600 s timeout).
exec node --import tsx --test --test-force-exit --test-concurrency=2 --test-timeout=600000 "${tests[@]}"
