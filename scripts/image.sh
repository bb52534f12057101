#!/usr/bin/env bash
# `make image`: the runtime image localhost/health-code:dev from the Containerfile, with podman.
# PROFILE=debug takes the debug binaries (make test, which has built them already, with SKIP_BUILD=1).
# `scripts/image.sh smoke`: the image (built first if missing) runs a service as a non-root user on a read-only root
# filesystem and answers /health/ready against this machine's PostgreSQL and Redis (make test runs it).
#
# Where a registry can be reached, `podman build -f Containerfile .` (or docker build) builds the binaries in the
# Rust builder stage on a distroless runtime. This machine reaches none, so the binaries come from the host's
# `cargo build --release` (BINARIES=host) and the runtime base is a Debian bookworm made locally with debootstrap
# (minbase and CA certificates) and imported into podman. Prints why and exits 0 where podman cannot run here,
# unless REQUIRE_PODMAN=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
image="${IMAGE:-localhost/health-code:dev}"
base="localhost/debian:bookworm"
export CONTAINERS_CONF="$root/scripts/podman/containers.conf"

say() { echo "[image] $*"; }
cannot() {
  say "SKIPPED: $*"
  if [ "${REQUIRE_PODMAN:-0}" = 1 ]; then exit 1; fi
  exit 0
}

install_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || cannot "podman, runc and debootstrap are missing and installing them needs root"
    say "installing ${missing[*]} (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || cannot "could not install ${missing[*]}"
  fi
  podman info >/dev/null 2>&1 || cannot "podman does not run here: $(podman info 2>&1 | tail -1)"
}

# The runtime base: a minimal Debian with CA certificates, no registry needed.
ensure_base() {
  podman image exists "$base" && return 0
  local rootfs
  rootfs="$(mktemp -d /var/tmp/hc-rootfs.XXXXXX)"
  say "making $base with debootstrap (about a minute)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" http://deb.debian.org/debian \
    >/dev/null || { rm -rf "$rootfs"; cannot "debootstrap failed (no Debian mirror reachable?)"; }
  tar -C "$rootfs" -c . | podman import -q - "$base" >/dev/null
  rm -rf "$rootfs"
}

build() {
  install_tools
  ensure_base
  local profile="${PROFILE:-release}" flag=--release
  [ "$profile" = debug ] && flag=
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building the $profile binaries"
    cargo build ${flag:+"$flag"} --workspace --bins --locked -q
  fi
  # Stripped copies: the image needs no symbols (and debug builds would otherwise add 1.5 GB).
  rm -rf target/image && mkdir -p target/image
  for bin in identity declaration scoring rendering verification hc-verify hc-hub loadtest; do
    strip -o "target/image/$bin" "target/$profile/$bin"
  done
  say "building $image"
  podman build --pull=never -q -f Containerfile \
    --build-arg BINARIES=host --build-arg RUNTIME_IMAGE="$base" \
    --build-arg VERSION="$(git describe --always --dirty 2>/dev/null || echo dev)" \
    --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -t "$image" . >/dev/null
  say "built $image ($(podman image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
}

smoke() {
  install_tools
  podman image exists "$image" || build
  eval "$(scripts/infra.sh env)"
  db="hc_image_smoke_$$" port=19181 name="hc-image-smoke-$$"
  admin="${HC_TEST_DATABASE_URL%/*}"
  psql "$admin/postgres" -qc "CREATE DATABASE $db" >/dev/null
  cleanup() {
    podman rm -f "$name" >/dev/null 2>&1 || true
    psql "$admin/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  }
  trap cleanup EXIT
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then say "FAILED: port $port is taken"; exit 1; fi
  local secrets
  secrets="$(podman run --rm --read-only --network none "$image" generate-secrets)"
  local env_args=()
  while IFS= read -r line; do [ -n "$line" ] && env_args+=(-e "$line"); done <<<"$secrets"
  # The image's own user (no --user): the check is that the image does not run as root by itself.
  podman run -d --name "$name" --read-only --network host --cap-drop ALL --security-opt no-new-privileges \
    -e HC__SERVER__HOST=127.0.0.1 -e HC__SERVER__PORT="$port" \
    -e HC__DATABASE__URL="$admin/$db" -e HC__REDIS__URL="$HC_TEST_REDIS_URL" \
    -e HC__REDIS__KEY_PREFIX="hc:image-smoke-$$:" -e HC__IDENTITY__SMS__KIND=dev -e HC__IDENTITY__REAL_NAME__KIND=dev \
    "${env_args[@]}" "$image" >/dev/null
  local ready=""
  for _ in $(seq 60); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; then ready=1; break; fi
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || break
    sleep 0.5
  done
  if [ -z "$ready" ]; then
    podman logs "$name" 2>&1 | tail -20
    say "FAILED: the image never answered /health/ready"
    exit 1
  fi
  [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || { say "FAILED: the container exited"; exit 1; }
  local user readonly uid
  user="$(podman inspect -f '{{.Config.User}}' "$name")"
  readonly="$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$name")"
  uid="$(podman top "$name" huser | tail -1 | tr -d ' ')"
  [ "$readonly" = true ] || { say "FAILED: root filesystem not read-only"; exit 1; }
  [ "$uid" != 0 ] && [ "$uid" != root ] || { say "FAILED: the service runs as root"; exit 1; }
  say "ok: $image answered /health/ready as user $user (uid $uid) on a read-only root filesystem"
}

case "${1:-build}" in
  build) build ;;
  smoke) smoke ;;
  *) echo "usage: scripts/image.sh [build|smoke]" >&2; exit 2 ;;
esac
