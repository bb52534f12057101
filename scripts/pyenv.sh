#!/usr/bin/env bash
# A private Python environment (.run/pyenv) with the independent checkers' packages from PyPI; made once, then
# reused while scripts/requirements-check.txt is unchanged. Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=.run/pyenv
stamp="$env_dir/.requirements"
if [ ! -x "$env_dir/bin/python" ] || ! cmp -s scripts/requirements-check.txt "$stamp"; then
  command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
  if ! python3 -m venv "$env_dir" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$env_dir"
  fi
  "$env_dir/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-check.txt >&2
  cp scripts/requirements-check.txt "$stamp"
fi
echo "$env_dir/bin/python"
