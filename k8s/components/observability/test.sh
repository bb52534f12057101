#!/usr/bin/env bash
# Checks and unit-tests the Prometheus rules of prometheus-rule.yaml with promtool: the PrometheusRule's spec is
# extracted to a plain rule file (extract_rules.py), `promtool check rules` lints it, `promtool test rules` runs
# rules.test.yaml against it. Also checks that dashboard.json is JSON and only queries recording rules that exist.
# Runs from anywhere; needs promtool (Debian: the `prometheus` package) and Python 3 with PyYAML.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
  echo "test.sh: promtool not found; install it (Debian/Ubuntu: apt-get install prometheus, or a release binary from" >&2
  echo "https://github.com/prometheus/prometheus/releases on PATH) and run again." >&2
  exit 1
fi

# Python with PyYAML: the project's environment (scripts/pyenv.sh) when run from the repository root, else python3.
python=""
if [ "$PWD" = "$root" ] && [ -x scripts/pyenv.sh ]; then
  if candidate="$(scripts/pyenv.sh)"; then
    case "$candidate" in /*) ;; *) candidate="$root/$candidate" ;; esac
    if "$candidate" -c 'import yaml' 2>/dev/null; then
      python="$candidate"
    else
      echo "test.sh: $candidate has no PyYAML; trying python3" >&2
    fi
  else
    echo "test.sh: scripts/pyenv.sh failed; trying python3" >&2
  fi
fi
if [ -z "$python" ]; then
  if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
    python=python3
  else
    echo "test.sh: no Python with PyYAML (add PyYAML to scripts/requirements-check.txt, or install python3-yaml)" >&2
    exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" "$here/extract_rules.py" --dashboard "$here/dashboard.json" "$here/prometheus-rule.yaml" >"$work/rules.yaml"
cp "$here/rules.test.yaml" "$work/rules.test.yaml"

"$promtool" check rules "$work/rules.yaml"
(cd "$work" && "$promtool" test rules rules.test.yaml)
echo "observability rules: OK"
