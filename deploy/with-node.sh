#!/usr/bin/env bash
# Runs a command with a Node.js >= 22.12 first on PATH (see deploy/node.sh) and the project's
# dependencies installed from package-lock.json (npm install, only when node_modules is missing or
# older than the lock file; see .ci/run for why not npm ci). npm scripts go through it, so they work on a machine whose Node is older.
#
#   bash deploy/with-node.sh node --test 'test/**/*.test.ts'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/deploy/node-env.sh"
marker="$root/node_modules/.package-lock.json"
if [ ! -f "$marker" ] || [ "$root/package-lock.json" -nt "$marker" ]; then
  echo "with-node: installing dependencies (npm install)" >&2
  (cd "$root" && npm install --silent --no-audit --no-fund >&2)
fi
exec "$@"
