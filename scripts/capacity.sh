#!/usr/bin/env bash
# `make capacity-runs`: every run behind docs/capacity.md, one after the other, each bounded in time, each against
# a suite of its own (scratch database, ports 19081-19085, loopback only), the suite confined to CPU 0 with a CFS
# quota of SUITE_CORES cores and the generator to CPU 1. Results: loadtests/results/*.json. Then the report.
# `make capacity-report` (scripts/capacity.sh report) only rewrites docs/capacity.md and its plots from the results.
#
# Knobs (environment): SUITE_CORES (0.5), PEOPLE (5000), KNEE_FROM_HARDENED (200), KNEE_FROM_NAIVE (20),
# STEP_SECONDS (15), PLAN_SCALE (0.03: baseline 600/s of Xi'an's 20,000/s; the 10x surge of show-code and imports
# takes it to about 4,400/s), ONLY (a space-separated subset of: knees plans ablation map).
set -euo pipefail
cd "$(dirname "$0")/.."
report() {
  "$(scripts/pyenv.sh)" -c 'import matplotlib' 2>/dev/null || "$(scripts/pyenv.sh)" -m pip install -q 'matplotlib>=3.8,<4'
  cargo build --release -p loadtests --locked -q
  target/release/loadtest report --results loadtests/results --out docs/capacity.md
  "$(scripts/pyenv.sh)" loadtests/plots.py loadtests/results docs/capacity
}
if [ "${1:-}" = report ]; then report; exit 0; fi

cargo build --release --workspace --bins --locked -q
lt() { SKIP_BUILD=1 scripts/loadtest.sh "$@"; }
people="${PEOPLE:-5000}"; step="${STEP_SECONDS:-15}"; scale="${PLAN_SCALE:-0.03}"
only=" ${ONLY:-knees plans ablation map} "

if [[ "$only" == *" knees "* ]]; then
  lt knee --profile hardened --people "$people" --scale 1 --from "${KNEE_FROM_HARDENED:-200}" --factor 1.5 --steps 9 \
    --duration "$step" --name knee-hardened
  lt knee --profile naive --people "$people" --scale 1 --from "${KNEE_FROM_NAIVE:-20}" --factor 1.5 --steps 9 \
    --duration "$step" --name knee-naive
fi
if [[ "$only" == *" plans "* ]]; then
  for profile in hardened naive; do
    lt run --plan mass-testing --profile "$profile" --people "$people" --scale "$scale" --duration 120 \
      --name "mass-testing-$profile"
    lt run --plan retry-storm --profile "$profile" --people "$people" --scale "$scale" --duration 120 \
      --name "retry-storm-$profile"
  done
  lt run --plan recolour-under-load --profile hardened --people "$people" --scale "$scale" --duration 60 \
    --name recolour-under-load-hardened
  lt run --plan launch-day --profile hardened --people "$people" --scale "${LAUNCH_SCALE:-0.1}" --duration 120 \
    --name launch-day-hardened
fi
if [[ "$only" == *" ablation "* ]]; then
  # One defence off at a time, each at the same overload: 1.5x the hardened knee, 20 s.
  rate="${ABLATION_RATE:-$(python3 -c "import json;print(round(1.5*(json.load(open('loadtests/results/knee-hardened.json'))['knee_per_s'] or 500)))")}"
  for profile in hardened without-render-cache without-in-process-caches without-admission without-request-timeouts \
                 without-pool-wait-limit without-circuit-breaker without-stale-fallback naive; do
    lt run --plan steady --profile "$profile" --people "$people" --scale 1 --rate "$rate" --duration 20 \
      --name "ablation-$profile"
  done
fi
if [[ "$only" == *" map "* ]]; then
  # The vulnerability map: surge size x duration, with retrying clients, recovered or not.
  for profile in hardened naive; do
    for factor in 3 10; do
      for hold in 10 30; do
        lt run --plan retry-storm --profile "$profile" --people "$people" --scale "$scale" --duration $((hold + 60)) \
          --surge-factor "$factor" --surge-hold "$hold" --name "map-$profile-x$factor-${hold}s"
      done
    done
  done
fi
report
