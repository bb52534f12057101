#!/usr/bin/env bash
# Makes sure cargo's formatter and linter are present (a minimal rustup profile lacks them).
set -euo pipefail
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null || { echo "cargo fmt/clippy missing and no rustup to add them" >&2; exit 1; }
  rustup component add rustfmt clippy
fi
