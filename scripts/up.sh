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
# Each service with a database connects as a role of its own (provisioned below), with a password of its own.
for name in identity declaration scoring verification; do
  if ! grep -q "^HC_DB_PASSWORD_$name=" "$run/secrets.env"; then
    (umask 077; echo "HC_DB_PASSWORD_$name=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')" >> "$run/secrets.env")
  fi
done
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
  : >"$run/logs/$name.log"
  if [ "$name" != rendering ]; then
    # The service's own role owns its schema and nothing else; the administrator's URL only provisions it.
    password_var="HC_DB_PASSWORD_$name"
    own_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=f"hc_{sys.argv[2]}:{sys.argv[3]}@{p.hostname}:{p.port or 5432}").geturl())' \
      "$HC_TEST_DATABASE_URL" "$name" "${!password_var}")"
    HC_ADMIN_DATABASE_URL="$HC_TEST_DATABASE_URL" HC__DATABASE__URL="$own_url" "target/debug/$name" provision-database \
      >>"$run/logs/$name.log" 2>&1 || { echo "[up] provisioning $name's role failed; see .run/logs/$name.log" >&2; exit 1; }
  else
    own_url="$HC_TEST_DATABASE_URL"
  fi
  HC__DATABASE__URL="$own_url" HC__SERVER__PORT="$port" nohup "target/debug/$name" >>"$run/logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
done
for entry in "${services[@]}"; do
  read -r name port <<<"$entry"
  for _ in $(seq 120); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" && break
    if ! kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
      if grep -q "the stored persons were sealed or indexed under other keys" "$run/logs/$name.log" && [ -z "${HC_UP_RESET:-}" ]; then
        # Demo data made with other keys (another checkout's .run/secrets.env, or an older index derivation): it is
        # only demo data, so start it again.
        echo "[up] the demo data was made with other keys: resetting the demo schemas and Redis keys"
        scripts/down.sh --services-only
        psql "$HC_TEST_DATABASE_URL" -qc "DROP SCHEMA IF EXISTS identity, declaration, scoring, verification CASCADE" >/dev/null
        redis-cli -u "$HC_TEST_REDIS_URL" --scan --pattern 'hc:*' | xargs -r -n 500 redis-cli -u "$HC_TEST_REDIS_URL" del >/dev/null
        HC_UP_RESET=1 exec "$0" "$@"
      fi
      echo "[up] $name exited; see .run/logs/$name.log" >&2; tail -5 "$run/logs/$name.log" >&2; exit 1
    fi
    sleep 0.5
  done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" || { echo "[up] $name is not ready; see .run/logs/$name.log" >&2; exit 1; }
done

python3 scripts/seed_demo.py "$run"
