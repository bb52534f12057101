#!/usr/bin/env bash
# make fuzz (issue 17): every cargo-fuzz target of libs/fuzz for FUZZ_SECONDS each (default 60), starting from the
# corpus kept in the repo (libs/fuzz/corpus/<target>). Inputs that reach new code are merged into that corpus
# (commit them); a crash, a leak or a timeout is copied to libs/fuzz/regressions/<target>/, which make test replays
# (services/verification/tests/fuzz_corpus.rs), and fails the run. Prints the executions run per target.
# cargo-fuzz 0.13.2 is installed into .run/tools on first use; libFuzzer's -Z flags need RUSTC_BOOTSTRAP=1 on the
# machine's stable toolchain. The run is bounded: FUZZ_SECONDS per target, 10 s per input.
#   FUZZ_SECONDS=300 FUZZ_TARGETS="import_rows events" make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-token_decode trust_list id_number import_rows events venue_code dcc_decode}"
tools="$PWD/.run/tools"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "[fuzz] installing cargo-fuzz 0.13.2 into .run/tools"
  cargo install --locked --quiet cargo-fuzz --version 0.13.2 --root "$tools"
fi
export RUSTC_BOOTSTRAP=1 PATH="$tools/bin:$PATH"
fuzz=(cargo fuzz run --fuzz-dir libs/fuzz)
work=.run/fuzz
echo "[fuzz] building the targets (sanitizer build of their dependencies; the first one takes minutes)"
cargo fuzz build --fuzz-dir libs/fuzz
failed=0
for t in $targets; do
  mkdir -p "$work/$t" "libs/fuzz/corpus/$t"
  log="$work/$t.log"
  if ! "${fuzz[@]}" "$t" "$work/$t" "libs/fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    mkdir -p "libs/fuzz/regressions/$t"
    cp libs/fuzz/artifacts/"$t"/* "libs/fuzz/regressions/$t/" 2>/dev/null || true
    echo "[fuzz] $t FAILED; the input is kept in libs/fuzz/regressions/$t (make test replays it). Its log:"
    grep -A25 -m1 -E "panicked|ERROR: libFuzzer|SUMMARY" "$log" || tail -30 "$log"
    failed=1
    continue
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  "${fuzz[@]}" "$t" "libs/fuzz/corpus/$t" "$work/$t" -- -merge=1 >"$work/$t.merge.log" 2>&1
  echo "[fuzz] $t: $execs executions in ${seconds} s, no failure; corpus $(find "libs/fuzz/corpus/$t" -type f | wc -l) inputs"
done
exit "$failed"
