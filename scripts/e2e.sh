#!/usr/bin/env bash
# The citizen's page (e2e/citizen_page.mjs) and the public county map (e2e/county_map.mjs) end to end: identity,
# declaration, scoring and rendering started from the debug build on ports 18281-18284 over a scratch database and
# key prefix, one citizen registered, then a Zhejiang seeded (scripts/seed_map.py), in headless Chromium (Debian's)
# driven by playwright-core. Installs what it lacks; removes its scratch data when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

command -v chromium >/dev/null || { apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }
command -v zbarimg >/dev/null || { apt-get install -y -qq zbar-tools >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq zbar-tools >/dev/null; }; }
command -v npm >/dev/null || { apt-get install -y -qq nodejs npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }; }
(cd e2e && npm ci --no-audit --no-fund --silent)

eval "$(scripts/infra.sh env)"
for bin in identity declaration scoring rendering; do
  [ -x "target/debug/$bin" ] || cargo build -q --locked -p "$bin" --bin "$bin"
done

# shellcheck source=scripts/scratch.sh
. scripts/scratch.sh
KEEP="${E2E_KEEP:-}" scratch_begin e2e

set -a
eval "$(target/debug/identity generate-secrets)"
eval "$(target/debug/rendering generate-secrets)"
HC__DATABASE__URL="$db_url"
HC__REDIS__URL="$HC_TEST_REDIS_URL"
HC__REDIS__KEY_PREFIX="$prefix"
HC__AUTH__JWKS_URL="http://127.0.0.1:18281/v1/auth/keys"
HC__SERVER__CORS_ALLOWED_ORIGINS="http://127.0.0.1:18284"
HC__RENDERING__PAGE_IDENTITY_URL="http://127.0.0.1:18281"
HC__RENDERING__PAGE_DECLARATION_URL="http://127.0.0.1:18282"
HC__RENDERING__PAGE_SCORING_URL="http://127.0.0.1:18283"
HC__RENDERING__SCORING_URL="http://127.0.0.1:18283"
HC__TELEMETRY__LOG_FILTER="warn"
HC__EVENTS__IDLE_MS=20
# The county map's indices every second (a minute by default), so the map's page shows the seeded days at once.
HC__SCORING__COUNTY_MAP__INTERVAL_MS=1000
HC__IDENTITY__SMS__KIND=dev
HC__IDENTITY__REAL_NAME__KIND=dev
set +a
port=18281
for name in identity declaration scoring rendering; do
  HC__SERVER__PORT=$port "target/debug/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
for port in 18281 18282 18283 18284; do
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" || { echo "e2e: port $port not ready" >&2; tail -n 5 "$work"/*.log >&2; exit 1; }
done

phone=13912345678
id_number=440106199001010013
curl -sf -o /dev/null -XPOST http://127.0.0.1:18281/v1/auth/otp -H 'content-type: application/json' \
  -d '{"phone":"'$phone'","purpose":"register"}' || { echo "e2e: no registration code" >&2; exit 1; }
code="$(redis-cli -u "$HC_TEST_REDIS_URL" GET "${prefix}sms:dev:$phone")"
curl -sf -o /dev/null -XPOST http://127.0.0.1:18281/v1/persons -H 'content-type: application/json' \
  -d '{"name":"测试","id_number":"'$id_number'","phone":"'$phone'","home_region":"440106","phone_code":"'$code'","real_name_ticket":"dev:'$id_number'"}' \
  || { echo "e2e: registration failed" >&2; exit 1; }

mkdir -p docs/screenshots
PAGE_URL="http://127.0.0.1:18284/" REDIS_URL="$HC_TEST_REDIS_URL" PREFIX="$prefix" PHONE="$phone" \
  SCREENSHOT="$root/docs/screenshots/citizen-page.png" timeout 180 node e2e/citizen_page.mjs \
  || { echo "e2e: failed; service logs:" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }

# The public county map (e2e/county_map.mjs): a Zhejiang seeded through the API, then the page at rendering's /map
# once scoring's map shows what the seed implies (it recomputes within a second of each import).
python3 scripts/seed_map.py http://127.0.0.1:18281 http://127.0.0.1:18282 http://127.0.0.1:18283 --indices \
  || { echo "e2e: seeding the map, or scoring's map showing it, failed" >&2; tail -n 20 "$work/scoring.log" >&2; exit 1; }
MAP_URL="http://127.0.0.1:18284/map" SCREENSHOT="$root/docs/screenshots/county-map.png" timeout 180 node e2e/county_map.mjs \
  || { echo "e2e: the map failed; service logs:" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
