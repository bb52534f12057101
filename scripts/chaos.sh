#!/usr/bin/env bash
# `make chaos`: faults under load. The steady mix at 70 % of the hardened knee (317/s of the 453/s measured on half a
# core, docs/capacity.md) against a suite the load generator starts from release builds, the suite on CPU 0 with
# half a core and the generator on CPU 1, as in `make loadtest`. Each fault runs in its own 60 s run, on a suite and
# a seeded population of its own: Redis killed and back empty, Redis killed and back from its AOF, PostgreSQL
# killed, the network to Redis or to PostgreSQL slow (500 ms each way) or lossy, a second rendering replica cut off
# from Redis or from scoring and a second replica of verification, identity, declaration or scoring cut off from Redis
# in a network namespace, and each service killed (SIGKILL) and started again; injected at 20 s, ended 10 s later. After
# each run the writes acknowledged to the clients are accounted for in PostgreSQL and Redis. Fails when a fault breaks
# a promise (docs/reliability.md). About 45 minutes with the build cached (18 faults, each about a minute of
# seeding, a minute of load and up to five of settling); loopback and the namespace's veth only, every run bounded
# in time.
# Reports: loadtests/results/chaos-*.chaos.json (and each run's own JSON and goose reports).
#
#   scripts/chaos.sh                          # every fault
#   FAULTS="redis-empty kill-scoring" scripts/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The partition fault puts a replica in a network namespace and drops its packets to Redis: iproute2 and iptables,
# as root.
if ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
  echo "== installing iproute2 and iptables (the partition fault)"
  apt-get install -y -qq iproute2 iptables >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq iproute2 iptables >/dev/null; }
fi
faults=()
for f in ${FAULTS:-}; do faults+=(--fault "$f"); done
exec scripts/loadtest.sh chaos --people "${PEOPLE:-3000}" --duration "${DURATION:-60}" \
  --fault-at "${FAULT_AT:-20}" --fault-for "${FAULT_FOR:-10}" ${RATE:+--rate "$RATE"} "${faults[@]}"
