#!/usr/bin/env bash
# Brings PostgreSQL and Redis up for `make up` and `make test`, or stops what it started.
#
#   scripts/infra.sh up     use servers already answering on 127.0.0.1:5432 / :6379, otherwise install what is
#                           missing (Debian packages) and start private instances under .run/; also a private
#                           three-node Redis Cluster on 7001-7003 for the cluster-mode tests
#   scripts/infra.sh down   stop only the instances this script started (marked in .run/)
#   scripts/infra.sh env    print the connection settings the services and tests use
#
# Connection settings come from PGHOST/PGPORT/PGUSER/PGPASSWORD and REDIS_URL when set.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
run="$root/.run"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
PGPASSWORD="${PGPASSWORD:-postgres}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
# A private three-node Redis Cluster for the tests of cluster mode (no standard port to reuse).
CLUSTER_PORTS=(7001 7002 7003)

log() { printf '[infra] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_install() {
  log "installing $* from Debian's packages"
  if [ ! -f "$run/.apt-updated" ]; then as_root apt-get update -qq; touch "$run/.apt-updated"; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }; done
  return 1
}

# The private cluster lives in .run/postgres, unless the checkout sits where the postgres user cannot reach (a
# clone under /root): then under /var/tmp, keyed by the checkout's path. The choice is remembered in .run/.
pg_datadir() {
  if [ -f "$run/postgres.dir" ]; then cat "$run/postgres.dir"; return; fi
  local dir="$run/postgres"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$run" 2>/dev/null; then
    dir="/var/tmp/hc-platform-$(printf '%s' "$root" | sha256sum | cut -c1-12)/postgres"
  fi
  echo "$dir" > "$run/postgres.dir"
  echo "$dir"
}

pg_answers() {
  command -v pg_isready >/dev/null && pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 2
}

redis_answers() {
  command -v redis-cli >/dev/null && [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = "PONG" ]
}

# Runs a command as the owner of the private cluster: PostgreSQL refuses to run as root.
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if ! command -v pg_isready >/dev/null; then apt_install postgresql-client; fi
  if pg_answers; then log "PostgreSQL already answers on $PGHOST:$PGPORT: using it"; return; fi
  local bin; bin="$(pg_bindir)" || {
    apt_install postgresql; bin="$(pg_bindir)"
    # Where the package starts its own cluster, stop it: ours takes the port, with known credentials.
    if pg_answers; then as_root pg_ctlcluster --force "$(basename "$(dirname "$bin")")" main stop || true; fi
  }
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --home-dir /var/lib/postgresql postgres; fi
  local data; data="$(pg_datadir)"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$data"; fi
    local pwfile; pwfile="$(mktemp)"; echo "$PGPASSWORD" > "$pwfile"; chmod 644 "$pwfile"
    as_pg_owner "$bin/initdb" -D "$data" -U "$PGUSER" --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  log "starting PostgreSQL on $PGHOST:$PGPORT"
  as_pg_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-h $PGHOST -p $PGPORT -k /tmp -c max_connections=300 -c shared_buffers=256MB -c autovacuum_naptime=5" start >/dev/null
  touch "$run/started-postgres"
}

start_redis() {
  if redis_answers; then log "Redis already answers at $REDIS_URL: using it"; return; fi
  command -v redis-server >/dev/null || apt_install redis-server redis-tools
  mkdir -p "$run/redis"
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  # appendonly with fsync every second: Redis carries events, so a restart should not drop them.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$run/redis" --daemonize yes \
    --pidfile "$run/redis/redis.pid" --logfile "$run/redis/redis.log" --appendonly yes --save "" >/dev/null
  for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
  redis_answers || { log "Redis did not start; see $run/redis/redis.log"; exit 1; }
  touch "$run/started-redis"
}

cluster_answers() {
  command -v redis-cli >/dev/null && redis-cli -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok'
}

start_redis_cluster() {
  if cluster_answers; then log "Redis Cluster already answers on ${CLUSTER_PORTS[*]}: using it"; return; fi
  local port nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do
    local dir="$run/redis-cluster/$port"
    rm -rf "$dir"; mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes --cluster-enabled yes \
      --cluster-config-file nodes.conf --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no >/dev/null
    nodes+=("127.0.0.1:$port")
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 50); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  done
  log "creating a Redis Cluster on ${CLUSTER_PORTS[*]}"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do cluster_answers && break; sleep 0.1; done
  cluster_answers || { log "the Redis Cluster did not form; see $run/redis-cluster/*/redis.log"; exit 1; }
  touch "$run/started-redis-cluster"
}

stop_redis_cluster() {
  [ -f "$run/started-redis-cluster" ] || return 0
  log "stopping the private Redis Cluster"
  local port
  for port in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  rm -f "$run/started-redis-cluster"
}

stop_postgres() {
  [ -f "$run/started-postgres" ] || return 0
  local bin; bin="$(pg_bindir)"
  log "stopping the private PostgreSQL"
  as_pg_owner "$bin/pg_ctl" -D "$(pg_datadir)" -m fast -w stop >/dev/null || true
  rm -f "$run/started-postgres"
}

stop_redis() {
  [ -f "$run/started-redis" ] || return 0
  log "stopping the private Redis"
  redis-cli -u "$REDIS_URL" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$run/started-redis"
}

print_env() {
  echo "export HC_TEST_DATABASE_URL=postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/postgres"
  echo "export HC_TEST_REDIS_URL=$REDIS_URL"
  local urls; urls=$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
  echo "export HC_TEST_REDIS_CLUSTER_URLS=${urls%,}"
}

mkdir -p "$run"
case "${1:-}" in
  up) start_postgres; start_redis; start_redis_cluster ;;
  down) stop_redis_cluster; stop_redis; stop_postgres ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
