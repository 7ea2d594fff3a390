# Sourced, not run: puts a Node.js >= 22.12 first on PATH (see deploy/node.sh) and keeps npm's
# global config. npm reads that config (the registry's CA file, mirrors) from the prefix of the node
# running it, so a private Node first on PATH would otherwise lose the machine's.
#   . deploy/node-env.sh
if [ -z "${NPM_CONFIG_GLOBALCONFIG:-}" ] && command -v npm >/dev/null 2>&1; then
  NPM_CONFIG_GLOBALCONFIG=$(npm config get globalconfig 2>/dev/null || true)
  if [ -f "$NPM_CONFIG_GLOBALCONFIG" ]; then export NPM_CONFIG_GLOBALCONFIG; else unset NPM_CONFIG_GLOBALCONFIG; fi
fi
PATH="$(bash "$(dirname "${BASH_SOURCE[0]}")/node.sh"):$PATH"
export PATH
