#!/usr/bin/env bash
# A private Python environment (.run/pyenv) with the independent checkers' packages from PyPI; made once, then
# reused while scripts/requirements-check.txt is unchanged. Prints the interpreter's path.
#   scripts/pyenv.sh          .run/pyenv from scripts/requirements-check.txt
#   scripts/pyenv.sh api      .run/pyenv-api from scripts/requirements-api.txt (schemathesis, whose pins would fight
#                             checkov's in one environment)
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=.run/pyenv${1:+-$1}
requirements=scripts/requirements-${1:-check}.txt
stamp="$env_dir/.requirements"
if [ ! -x "$env_dir/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
  if ! python3 -m venv "$env_dir" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$env_dir"
  fi
  "$env_dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
echo "$env_dir/bin/python"
