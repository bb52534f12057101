#!/usr/bin/env bash
# Runs the dev overlay's Deployments (rendered: the file given) with `podman kube play` from the local image, against
# this machine's PostgreSQL and Redis, and checks that every service's container runs as non-root on a read-only
# root filesystem and answers its readiness endpoint (/health/ready, the probe the Deployment declares).
# What this proves and what only a cluster proves: k8s/README.md. Skips with a message where podman cannot run
# (REQUIRE_PODMAN=1: fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."
rendered="$1"
image="${IMAGE:-localhost/health-code:test}"
export CONTAINERS_CONF="$PWD/scripts/podman/containers.conf"
say() { echo "[kube-play] $*"; }
if ! command -v podman >/dev/null || ! podman info >/dev/null 2>&1; then
  say "SKIPPED: podman cannot run here"
  [ "${REQUIRE_PODMAN:-0}" = 1 ] && exit 1
  exit 0
fi
podman image exists "$image" || { say "no image $image: run scripts/image.sh first"; exit 1; }
py="$(scripts/pyenv.sh)"
eval "$(scripts/infra.sh env)"
admin="${HC_TEST_DATABASE_URL%/*}"
db="hc_kube_play_$$"
base_port=19281
work="$(mktemp -d /tmp/hc-kube-play.XXXXXX)"
cleanup() {
  [ -f "$work/play.yaml" ] && podman kube down "$work/play.yaml" >/dev/null 2>&1 || true
  psql "$admin/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for p in $(seq "$base_port" $((base_port + 4))); do
  if curl -s -o /dev/null "http://127.0.0.1:$p/"; then say "port $p is taken"; exit 1; fi
done
psql "$admin/postgres" -qc "CREATE DATABASE $db" >/dev/null
{
  podman run --rm --network none --entrypoint /usr/local/bin/identity "$image" generate-secrets
  podman run --rm --network none --entrypoint /usr/local/bin/rendering "$image" generate-secrets
  podman run --rm --network none --entrypoint /usr/local/bin/verification "$image" generate-secrets
} >"$work/secrets.env"
"$py" k8s/tests/for_podman.py "$image" "$base_port" "$admin/$db" "$HC_TEST_REDIS_URL" "hc:kube-play-$$:" \
  "$work/secrets.env" <"$rendered" >"$work/play.yaml" 2>"$work/changes.txt"
sed 's/^/[kube-play]   /' "$work/changes.txt"
# (podman without systemd complains that it cannot schedule the liveness healthchecks: noise here.)
podman kube play --quiet "$work/play.yaml" >/dev/null 2>"$work/play.log" || { cat "$work/play.log"; exit 1; }
services=(identity declaration scoring rendering verification)
failed=0
for i in "${!services[@]}"; do
  name="${services[$i]}"; port=$((base_port + i)); ready=""
  for _ in $(seq 120); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready"; then ready=1; break; fi
    sleep 0.5
  done
  # podman kube play names a Deployment's container {deployment}-pod-{n}-{container}.
  ctr="$name-pod-0-$name"
  if [ -z "$ready" ]; then
    say "FAILED: $name never answered /health/ready on $port"
    podman logs "$ctr" 2>&1 | tail -10
    failed=1; continue
  fi
  ro="$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ctr")"
  uid="$(podman top "$ctr" huser | tail -1 | tr -d ' ')"
  if [ "$ro" != true ] || [ "$uid" = 0 ] || [ "$uid" = root ]; then
    say "FAILED: $name runs with read-only root $ro as uid $uid"; failed=1; continue
  fi
  say "ok: $name ready on $port (container $ctr, uid $uid, read-only root filesystem)"
done
[ "$failed" = 0 ] || exit 1
say "every Deployment of the dev overlay is ready under podman kube play"
# The load-test Job's command (k8s/components/load-test) from the same image, attached to these pods as the Job is
# to the Ingress: a short steady run, every answer checked (it fails on a wrong answer).
secret() { sed -n "s/^$1=//p" "$work/secrets.env" | head -1; }
targets=()
for i in "${!services[@]}"; do targets+=(--target-service "${services[$i]}=http://127.0.0.1:$((base_port + i))"); done
podman run --rm --network host --read-only --tmpfs /results --user 65532:65532 \
  -e HC__IDENTITY__ADMIN_KEY="$(secret HC__IDENTITY__ADMIN_KEY)" \
  -e HC__IDENTITY__SIGNING_KEYS="$(secret HC__IDENTITY__SIGNING_KEYS)" \
  -e HC__DATABASE__URL="$admin/$db" -e HC__REDIS__URL="$HC_TEST_REDIS_URL" -e HC__REDIS__KEY_PREFIX="hc:kube-play-$$:" \
  --entrypoint /usr/local/bin/loadtest "$image" run --plan steady --scale 1 --rate 20 --duration 5 --people 100 \
  --out /results --name kube-play "${targets[@]}" >"$work/loadtest.log" 2>&1 \
  || { tail -20 "$work/loadtest.log"; say "FAILED: the load-test Job's command against the pods"; exit 1; }
say "ok: the load-test Job's command ran against the pods: $(grep -o 'offered.*cores' "$work/loadtest.log" | head -1)"
# Graceful shutdown: SIGTERM (what the kubelet sends after preStop) lets a request in flight finish, refuses new
# ones, and the process exits 0 well within terminationGracePeriodSeconds.
out="$(python3 k8s/tests/drain_check.py "$base_port" "$HC_TEST_REDIS_URL" "hc:kube-play-$$:" podman pod stop -t 30 identity-pod-0)" \
  || { say "FAILED: identity did not drain on SIGTERM: $out"; exit 1; }
code="$(podman inspect -f '{{.State.ExitCode}}' identity-pod-0-identity)"
[ "$code" = 0 ] || { say "FAILED: identity exited with $code after SIGTERM"; exit 1; }
say "ok: identity drained on SIGTERM ($out) and exited 0"
