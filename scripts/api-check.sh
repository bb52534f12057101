#!/usr/bin/env bash
# The OpenAPI documents against the running services: schemathesis (scripts/requirements-api.txt) with every check,
# as an official client holding every scope and as a signed-in citizen, API_CHECK_SECONDS (default 8) per service and
# caller, from seed API_CHECK_SEED (default 1). The five services run from the debug build on ports 18291-18295 over a scratch database and key prefix.
# Fails on any failure or error (a 5xx, an undocumented status or content type, a schema-invalid request accepted, a
# wrong Allow header, ...); scripts/schemathesis.toml says how 422 is read. Removes its scratch data when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seconds="${API_CHECK_SECONDS:-8}"
py="$(scripts/pyenv.sh api)"
eval "$(scripts/infra.sh env)"
for bin in identity declaration scoring rendering verification; do
  [ -x "target/debug/$bin" ] || cargo build -q --locked --workspace --bins
done

# shellcheck source=scripts/scratch.sh
. scripts/scratch.sh
scratch_begin api

set -a
eval "$(target/debug/identity generate-secrets)"
eval "$(target/debug/rendering generate-secrets)"
eval "$(target/debug/verification generate-secrets)"
HC__VERIFICATION__PSEUDONYM_KEYS="$HC__RENDERING__PSEUDONYM_KEYS"
HC__DATABASE__URL="$db_url"
HC__REDIS__URL="$HC_TEST_REDIS_URL"
HC__REDIS__KEY_PREFIX="$prefix"
HC__AUTH__JWKS_URL="http://127.0.0.1:18291/v1/auth/keys"
HC__RENDERING__SCORING_URL="http://127.0.0.1:18293"
HC__VERIFICATION__OWN_KEYS_URL="http://127.0.0.1:18294/v1/trust/keys"
HC__TELEMETRY__LOG_FILTER="warn"
HC__IDENTITY__SMS__KIND=dev
HC__IDENTITY__REAL_NAME__KIND=dev
# Generated requests come fast from one address: the per-IP limits would answer most of them 429.
HC__RATE_LIMIT__PER_IP_PER_SECOND=100000
HC__RATE_LIMIT__PER_IP_BURST=100000
set +a
port=18291
for name in identity declaration scoring rendering verification; do
  HC__SERVER__PORT=$port "target/debug/$name" >"$work/$name.log" 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
for port in 18291 18292 18293 18294 18295; do
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" || { echo "api-check: port $port not ready" >&2; tail -n 5 "$work"/*.log >&2; exit 1; }
done

# The two callers: an official client with every scope of a city, and a registered, signed-in citizen.
"$py" - "$work" <<'PY'
import json, os, subprocess, sys, urllib.error, urllib.request
work = sys.argv[1]
identity = "http://127.0.0.1:18291"
def call(path, body, token=None, headers=None):
    request = urllib.request.Request(identity + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"api-check: POST {path}: {e.code} {e.read().decode()}")
def sent_code(phone):
    key = os.environ["HC__REDIS__KEY_PREFIX"] + f"sms:dev:{phone}"
    return subprocess.run(["redis-cli", "-u", os.environ["HC__REDIS__URL"], "GET", key],
                          capture_output=True, text=True, check=True).stdout.strip()
admin = call("/v1/auth/token", {"grant_type": "client_credentials", "client_id": "admin",
                                "client_secret": os.environ["HC__IDENTITY__ADMIN_KEY"]})["access_token"]
scopes = ["person:read", "import:nat", "import:cases", "import:visits", "risk:write", "rules:write",
          "appeals:resolve", "staff:read", "verify", "verify:id", "trace:read"]
client = call("/v1/clients", {"name": "api check", "region": "440100", "scopes": scopes}, admin,
              {"Idempotency-Key": "api-check"})
official = call("/v1/auth/token", {"grant_type": "client_credentials", **{k: client[k] for k in ("client_id", "client_secret")}})
phone, idn = "13800138999", "440106199003074512"
call("/v1/auth/otp", {"phone": phone, "purpose": "register"})
call("/v1/persons", {"name": "接口检查", "id_number": idn, "phone": phone, "home_region": "440106",
                     "phone_code": sent_code(phone), "real_name_ticket": f"dev:{idn}"})
call("/v1/auth/otp", {"phone": phone})
citizen = call("/v1/auth/token", {"grant_type": "otp", "phone": phone, "code": sent_code(phone)})
open(f"{work}/official", "w").write(official["access_token"])
open(f"{work}/citizen", "w").write(citizen["access_token"])
PY

failed=0
for caller in official citizen; do
  port=18291
  for name in identity declaration scoring rendering verification; do
    out="$work/$caller-$name.txt"
    # From the scratch directory: schemathesis keeps its example database in the working directory.
    if (cd "$work" && PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks "$root/$(dirname "$py")/schemathesis" \
        --config-file "$root/scripts/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
        -H "Authorization: Bearer $(cat "$work/$caller")" --checks all --max-time "$seconds" -w 1 --no-color \
        --seed "${API_CHECK_SEED:-1}" >"$out" 2>&1); then
      echo "api-check: $name as $caller: $(tail -1 "$out" | tr -d '=' | sed 's/^ *//')"
    else
      failed=1
      echo "api-check: $name as $caller FAILED:" >&2
      sed -n '/^=* \(ERRORS\|FAILURES\) =*/,/^=* SUMMARY/p' "$out" | head -80 >&2
      tail -3 "$out" >&2
    fi
    port=$((port + 1))
  done
done
exit "$failed"
