#!/usr/bin/env bash
# `make capacity-runs`: every run behind docs/capacity.md, one after the other, each bounded in time, each against
# a suite of its own (scratch database, ports 19081-19085, loopback only), the suite confined to CPU 0 with a CFS
# quota of SUITE_CORES cores and the generator to CPU 1. Results: loadtests/results/*.json. Then the report.
# `make capacity-report` (scripts/capacity.sh report) only rewrites docs/capacity.md and its plots from the results.
#
# Knobs (environment): SUITE_CORES (0.5), PEOPLE (3000), KNEE_FROM_HARDENED (200), KNEE_FROM_NAIVE (20),
# STEP_SECONDS (12), PLAN_SCALE (default: 70 % of the naive knee as the baseline), ONLY (a space-separated subset of:
# knees knees-1m costs plans ablation ablation-knees map seed), MAP_FACTORS ("3 10"), MAP_HOLDS ("10 30"), SEED_PEOPLE (1000000: the
# seeding speed, about 20 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
report() {
  "$(scripts/pyenv.sh)" -c 'import matplotlib' 2>/dev/null || "$(scripts/pyenv.sh)" -m pip install -q 'matplotlib>=3.8,<4'
  cargo build --release --workspace --bins --locked -q
  target/release/loadtest report --results loadtests/results --out docs/capacity.md
  "$(scripts/pyenv.sh)" loadtests/plots.py loadtests/results docs/capacity
}
if [ "${1:-}" = report ]; then report; exit 0; fi

cargo build --release --workspace --bins --locked -q
lt() { SKIP_BUILD=1 scripts/loadtest.sh "$@"; }
people="${PEOPLE:-3000}"; step="${STEP_SECONDS:-12}"; scale="${PLAN_SCALE:-0.03}"
only=" ${ONLY:-knees knees-1m costs plans ablation ablation-knees map seed} "

if [[ "$only" == *" knees "* ]]; then
  lt knee --profile hardened --people "$people" --scale 1 --from "${KNEE_FROM_HARDENED:-200}" --factor 1.5 --steps 9 \
    --duration "$step" --name knee-hardened
  lt knee --profile naive --people "$people" --scale 1 --from "${KNEE_FROM_NAIVE:-20}" --factor 1.5 --steps 9 \
    --duration "$step" --name knee-naive
fi
# The same sweeps over a population of a million, both profiles over one seeding (seeding is not timed, but takes
# about half an hour here; run them on a machine with nothing else to do).
if [[ "$only" == *" knees-1m "* ]]; then
  lt knee --profile hardened --people 1000000 --scale 1 --from 60 --factor 1.5 --steps 9 --then naive@8 \
    --duration "$step" --name knee-hardened-1m
fi
knee_of() { python3 -c "import json,sys;print(round(json.load(open('loadtests/results/knee-$1.json'))['knee_per_s'] or 0))" 2>/dev/null || echo 0; }
if [[ "$only" == *" costs "* ]]; then
  lt costs --profile hardened --people "$people" --rate 100 --duration 12
fi
if [[ "$only" == *" plans "* || "$only" == *" map "* ]]; then
  knee="$(knee_of hardened)"; naive_knee="$(knee_of naive)"
  # The city's normal peak at 70 % of the naive knee, so that both profiles hold it: the surge then shows what a
  # 10x surge does to each, and whether each comes back once it ends (the metastability test).
  if [ -z "${PLAN_SCALE:-}" ] && [ "$naive_knee" -gt 0 ]; then scale=$(python3 -c "print(round(0.7*$naive_knee/20000, 5))"); fi
  # The same plans at 40 % of the hardened knee: its 10x surge is 3x the hardened knee (naive is down already).
  high_scale=$(python3 -c "print(round(0.4*max($knee, 1)/20000, 5))")
  # Launch day's peak minute (9,785/s at full scale) at the knee.
  launch_scale="${LAUNCH_SCALE:-$(python3 -c "print(round(max($knee, 100)/9785, 5))")}"
  echo "[capacity] hardened knee $knee/s: plan scale $scale, launch-day scale $launch_scale"
fi
if [[ "$only" == *" plans "* ]]; then
  for profile in hardened naive; do
    lt run --plan mass-testing --profile "$profile" --people "$people" --scale "$scale" --duration 90 \
      --name "mass-testing-$profile"
    lt run --plan retry-storm --profile "$profile" --people "$people" --scale "$scale" --duration 90 \
      --name "retry-storm-$profile"
  done
  for profile in hardened naive; do
    lt run --plan retry-storm --profile "$profile" --people "$people" --scale "$high_scale" --duration 75 \
      --surge-hold 20 --name "retry-storm-high-$profile"
  done
  lt run --plan recolour-under-load --profile hardened --people "$people" --scale "$scale" --duration 60 \
    --name recolour-under-load-hardened
  lt run --plan launch-day --profile hardened --people "$people" --scale "$launch_scale" --duration 120 \
    --name launch-day-hardened
fi
if [[ "$only" == *" ablation "* ]]; then
  # One defence off at a time, each at the same overload: 1.5x the hardened knee, 15 s.
  rate="${ABLATION_RATE:-$(python3 -c "import json;print(round(1.5*(json.load(open('loadtests/results/knee-hardened.json'))['knee_per_s'] or 500)))")}"
  for profile in hardened without-render-cache without-in-process-caches without-admission without-request-timeouts \
                 without-pool-wait-limit without-circuit-breaker without-stale-fallback without-import-cap naive; do
    lt run --plan steady --profile "$profile" --people "$people" --scale 1 --rate "$rate" --duration 15 \
      --name "ablation-$profile"
  done
fi
if [[ "$only" == *" ablation-knees "* ]]; then
  # The knee of each configuration (one defence off at a time), swept the same way side by side, hardened included.
  for profile in hardened without-render-cache without-in-process-caches without-admission without-request-timeouts \
                 without-pool-wait-limit without-circuit-breaker without-stale-fallback without-import-cap; do
    lt knee --profile "$profile" --people "$people" --scale 1 --from "${ABLATION_KNEE_FROM:-100}" --factor 1.35 \
      --steps 7 --duration 10 --name "knee-ablation-$profile"
  done
fi
if [[ "$only" == *" map "* ]]; then
  # The vulnerability map: surge size x duration, with retrying clients, recovered or not.
  for profile in hardened naive; do
    for factor in ${MAP_FACTORS:-3 10}; do
      for hold in ${MAP_HOLDS:-10 30}; do
        lt run --plan retry-storm --profile "$profile" --people "$people" --scale "$scale" --duration $((hold + 60)) \
          --surge-factor "$factor" --surge-hold "$hold" --name "map-$profile-x$factor-${hold}s"
      done
    done
  done
fi
if [[ "$only" == *" seed "* ]]; then
  n="${SEED_PEOPLE:-1000000}"
  target/release/loadtest seed --people "$n" >"loadtests/results/seed-$n.json"
fi
report
