#!/usr/bin/env bash
# `make up`: PostgreSQL and Redis (ours or the ones already answering), a build, every service started with
# its migrations, demo data seeded, and where to look printed at the end. Safe to run again: it restarts
# the services and re-seeds idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
run="$root/.run"
mkdir -p "$run/logs"

command -v curl >/dev/null || { echo "[up] installing curl"; apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
command -v python3 >/dev/null || { echo "[up] installing python3"; apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }

scripts/infra.sh up
eval "$(scripts/infra.sh env)"

echo "[up] building the services (debug profile; the first build takes a few minutes)"
cargo build --workspace --bins --locked -q

if [ ! -f "$run/secrets.env" ]; then
  echo "[up] generating development secrets into .run/secrets.env"
  (umask 077; target/debug/identity generate-secrets > "$run/secrets.env")
fi
if ! grep -q '^HC__RENDERING__SIGNING_KEYS=' "$run/secrets.env"; then
  (umask 077; target/debug/rendering generate-secrets >> "$run/secrets.env")
fi
if ! grep -q '^HC__VERIFICATION__ROOT_KEY=' "$run/secrets.env"; then
  (umask 077; target/debug/verification generate-secrets >> "$run/secrets.env")
fi
set -a
# shellcheck disable=SC1091
. "$run/secrets.env"
set +a
# Verification opens the codes' pseudonyms that rendering seals: the same secret.
export HC__VERIFICATION__PSEUDONYM_KEYS="$HC__RENDERING__PSEUDONYM_KEYS"
export HC__DATABASE__URL="$HC_TEST_DATABASE_URL"
export HC__REDIS__URL="$HC_TEST_REDIS_URL"
# The demo's codes and real-name tickets come from the development stand-ins (codes kept in Redis for the reader).
export HC__IDENTITY__SMS__KIND=dev HC__IDENTITY__REAL_NAME__KIND=dev
# The citizen's page is served by rendering on 8084 and calls identity, declaration and scoring from the browser.
export HC__SERVER__CORS_ALLOWED_ORIGINS="http://127.0.0.1:8084,http://localhost:8084"

# Service name and port; later services join this list.
services=("identity 8081" "declaration 8082" "scoring 8083" "rendering 8084" "verification 8085")

scripts/down.sh --services-only
for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  if curl -s -o /dev/null "http://127.0.0.1:$port/health/live"; then
    echo "[up] port $port is taken by something that is not ours; stop it first" >&2
    exit 1
  fi
  HC__SERVER__PORT="$port" nohup "target/debug/$name" >"$run/logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
done
for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  for _ in $(seq 120); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" && break
    kill -0 "$(cat "$run/$name.pid")" 2>/dev/null || { echo "[up] $name exited; see .run/logs/$name.log" >&2; tail -5 "$run/logs/$name.log" >&2; exit 1; }
    sleep 0.5
  done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" || { echo "[up] $name is not ready; see .run/logs/$name.log" >&2; exit 1; }
done

python3 scripts/seed_demo.py "$run"
