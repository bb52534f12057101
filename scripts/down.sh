#!/usr/bin/env bash
# `make down`: stops the services `make up` started, then the PostgreSQL and Redis it started (and only those).
set -euo pipefail
cd "$(dirname "$0")/.."
for pidfile in .run/*.pid; do
  [ -e "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
[ "${1:-}" = "--services-only" ] && exit 0
scripts/infra.sh down
