# Sourced by the scripts that start services of their own (scripts/e2e.sh, scripts/api-check.sh): a scratch database
# and Redis key prefix named after the caller, a work directory, and a cleanup on exit that stops the processes in
# `pids` and removes all three. Needs `scripts/infra.sh env` evaluated first.
#   scratch_begin NAME      sets stamp, admin_url, db_url, prefix, work, pids; KEEP=1 keeps everything for a look
scratch_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $stamp WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$HC_TEST_REDIS_URL" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$HC_TEST_REDIS_URL" DEL >/dev/null 2>&1 || true
  rm -rf "$work"
}

scratch_begin() {
  stamp="$1_$(date +%s)_$$"
  admin_url="$HC_TEST_DATABASE_URL"
  db_url="${admin_url%/*}/$stamp"
  prefix="$1:$stamp:"
  work="$(mktemp -d)"
  pids=()
  [ -n "${KEEP:-}" ] || trap scratch_cleanup EXIT
  psql "$admin_url" -q -c "CREATE DATABASE $stamp"
}
