#!/usr/bin/env bash
# Makes a container engine and sumac's test target images available. Idempotent: every step checks
# before it acts, so a second run on the same machine only confirms and rebuilds from the layer cache.
#
#   bash test/targets/engine.sh            # engine + base image + all target images
#   bash test/targets/engine.sh engine     # engine only
#   bash test/targets/engine.sh base       # engine + base image
#   bash test/targets/engine.sh build NAME # engine + base + one image (linux-target, ...)
#
# Environment: SUMAC_BASE_IMAGE (default sumac/base:bookworm), SUMAC_DOCKERD_LOG
# (default /var/log/sumac-dockerd.log), SUMAC_DEBIAN_MIRROR (default: the machine's apt source).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base_image=${SUMAC_BASE_IMAGE:-sumac/base:bookworm}
dockerd_log=${SUMAC_DOCKERD_LOG:-/var/log/sumac-dockerd.log}
# Every image of the test bed: NAME=DIRECTORY[:STAGE]. test/support/images.ts reads this line.
images="linux-target=linux-target:plain linux-target-node=linux-target:node windows-standin=windows-standin scm-peer=scm-peer nats=nats"

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_engine() {
  if engine_answers; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "no container engine answers and installing one needs root (apt-get install docker.io)"
    say "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
  fi
  # Debian's package ships /usr/bin/docker; a client elsewhere on PATH talks to the same socket.
  if ! engine_answers; then
    say "starting dockerd (log: $dockerd_log)"
    mkdir -p "$(dirname "$dockerd_log")"
    nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
      engine_answers && break
      sleep 1
    done
    engine_answers || die "dockerd did not answer within 60 s; see $dockerd_log"
  fi
  say "engine ready: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
}

debian_mirror() {
  if [ -n "${SUMAC_DEBIAN_MIRROR:-}" ]; then echo "$SUMAC_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then return 0; fi
  say "making base image $base_image"
  if timeout 60 docker pull debian:bookworm >/dev/null 2>&1; then
    docker tag debian:bookworm "$base_image"
    say "base image pulled from a registry"
    return 0
  fi
  say "no registry reachable: debootstrapping bookworm (about 2 minutes)"
  command -v debootstrap >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq debootstrap >/dev/null
  }
  local dir
  dir=$(mktemp -d /var/tmp/sumac-base.XXXXXX)
  trap 'rm -rf "$dir"' RETURN
  debootstrap --variant=minbase bookworm "$dir" "$(debian_mirror)" >/dev/null
  # The image uses the same mirror as the machine that made it.
  rm -f "$dir/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$dir/etc/apt/sources.list.d/" 2>/dev/null ||
    echo "deb $(debian_mirror) bookworm main" >"$dir/etc/apt/sources.list"
  tar -C "$dir" -c . | docker import --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  say "base image imported"
}

build_image() {
  local name=$1 spec="" entry dir stage
  for entry in $images; do
    [ "${entry%%=*}" = "$name" ] && spec=${entry#*=}
  done
  [ -n "$spec" ] || die "unknown image '$name' (have: $(for e in $images; do printf '%s ' "${e%%=*}"; done))"
  dir=${spec%%:*}
  stage=""
  [ "$spec" != "$dir" ] && stage=${spec#*:}
  say "building sumac/$name"
  docker build -q --build-arg "BASE=$base_image" --label sumac.test=1 ${stage:+--target "$stage"} \
    -t "sumac/$name:latest" "$here/$dir" >/dev/null
}

case "${1:-all}" in
  engine) ensure_engine ;;
  base) ensure_engine; ensure_base ;;
  build)
    [ $# -ge 2 ] || die "usage: engine.sh build NAME"
    ensure_engine; ensure_base; build_image "$2" ;;
  all)
    ensure_engine; ensure_base
    for entry in $images; do build_image "${entry%%=*}"; done ;;
  *) die "unknown command '$1' (engine, base, build NAME, all)" ;;
esac
