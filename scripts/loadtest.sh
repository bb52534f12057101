#!/usr/bin/env bash
# `make loadtest`: a short mass-testing run of the hardened profile against a suite the load generator starts
# from release builds, the suite confined to part of the machine and the generator to the rest, with thresholds
# that fail the run when the hardened profile misses its targets. Bounded in time (about 4 minutes with the
# build cached), loopback only. Reports: loadtests/results/loadtest-mass-testing.{json,goose.html,goose.json,goose.md}.
#
#   scripts/loadtest.sh                    # the short run
#   scripts/loadtest.sh run --plan ...     # any loadtest command, with the same set-up (see loadtests/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/toolchain.sh
scripts/infra.sh up
eval "$(scripts/infra.sh env)"
command -v taskset >/dev/null || { echo "[loadtest] taskset is missing (util-linux)" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "[loadtest] building release binaries (the first build takes several minutes)"
  cargo build --release --workspace --bins --locked -q
fi

# The suite on CPU 0 with a CFS quota (cgroup v1), the generator on CPU 1. Where the cgroup cannot be written (not
# root, or no cgroup v1 cpu controller), the suite is only pinned and the report says so.
SUITE_CORES="${SUITE_CORES:-0.5}"
confine=(--suite-cpus 0)
if [ -w /sys/fs/cgroup/cpu ]; then
  confine+=(--suite-cores "$SUITE_CORES")
else
  echo "[loadtest] /sys/fs/cgroup/cpu is not writable: the suite is pinned to CPU 0 without a CPU quota" >&2
fi
generator=(target/release/loadtest --generator-cpus 1)
# A run stopped by a signal cannot give PostgreSQL and Redis their CPUs back itself: whatever is left in a load
# test's cgroup goes back to the whole machine when this script ends.
release_cgroups() {
  local group pid
  for group in /sys/fs/cgroup/cpu/hc-loadtest-*; do
    [ -d "$group" ] || continue
    for pid in $(cat "$group/cgroup.procs" 2>/dev/null); do
      echo "$pid" > /sys/fs/cgroup/cpu/cgroup.procs 2>/dev/null || true
      taskset -a -p -c "0-$(( $(nproc) - 1 ))" "$pid" >/dev/null 2>&1 || true
    done
    rmdir "$group" 2>/dev/null || true
  done
}
trap release_cgroups EXIT

if [ $# -gt 0 ]; then
  cmd="$1"; shift
  case "$cmd" in
    run|knee|seed|costs|chaos) "${generator[@]}" "$cmd" "${confine[@]}" "$@" ;;
    *) "${generator[@]}" "$cmd" "$@" ;;
  esac
  exit 0
fi

# The short mass-testing run: 90 s, a 10x surge of code displays and imports held for 25 s, the hardened page's
# clients. Scale 0.0015 of Xi'an's design rate (20,000/s) is 30 requests/s at baseline and about 220/s in the surge:
# below the hardened profile's knee on half a core (294/s, docs/capacity.md), so it must hold the surge with p99
# under a second and no failures, and be back under 200 ms within 30 s of its end.
"${generator[@]}" run "${confine[@]}" --plan mass-testing --profile hardened --scale "${SCALE:-0.0015}" \
  --people "${PEOPLE:-3000}" --duration 90 --surge-hold 25 --name loadtest-mass-testing \
  --require-recovery 30 --threshold "p99<1s for GET show code" --threshold "error-rate<1%"
