#!/bin/sh
# The quick start's component: "installs" one small text file and reports its version. It needs no
# network and touches nothing else, so it is harmless to run as root.
#   sh hello.sh version   prints the installed version and exits 0, or exits 1 when not installed
#   sh hello.sh install   writes $SUMAC_QUICKSTART_DIR/hello.txt (default /var/tmp/sumac-quickstart)
set -eu
VERSION=1.0.0
DIR="${SUMAC_QUICKSTART_DIR:-/var/tmp/sumac-quickstart}"
FILE="$DIR/hello.txt"

case "${1:-}" in
  version)
    [ -f "$FILE" ] || exit 1
    sed -n 's/^version //p' "$FILE"
    ;;
  install)
    echo "sumac:progress 10"
    mkdir -p "$DIR"
    # Write then rename, so a reader never sees half a file.
    printf 'version %s\ninstalled by sumac at %s\n' "$VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$FILE.tmp"
    mv "$FILE.tmp" "$FILE"
    echo "installed hello $VERSION in $DIR"
    ;;
  *)
    echo "usage: sh hello.sh version|install" >&2
    exit 2
    ;;
esac
