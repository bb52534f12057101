#!/usr/bin/env bash
# `make test`: formatting, lints, then every test against a real PostgreSQL and Redis. Servers this script
# started are stopped again when it ends, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

scripts/toolchain.sh
# A CI run builds once from nothing: incremental caches would only double the disk it needs.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# The rendering tests decode QR codes with independent tools: zbarimg, and rsvg-convert for the SVG.
if ! command -v zbarimg >/dev/null || ! command -v rsvg-convert >/dev/null; then
  echo "== installing zbar-tools and librsvg2-bin (QR decoding in the rendering tests)"
  apt-get install -y -qq zbar-tools librsvg2-bin >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq zbar-tools librsvg2-bin >/dev/null; }
fi
started_here=0
if [ ! -f .run/started-postgres ] && [ ! -f .run/started-redis ] && [ ! -f .run/started-redis-cluster ]; then started_here=1; fi
scripts/infra.sh up
if [ "$started_here" = 1 ]; then trap 'scripts/infra.sh down' EXIT; fi
eval "$(scripts/infra.sh env)"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
echo "== cargo deny: licences, a second major version of a crate, refused crates, sources (deny.toml)"
scripts/deny.sh
echo "== the load generator: every persona against a small suite, every answer checked (loadtest smoke)"
cargo build --workspace --bins --locked -q
target/debug/loadtest smoke
echo "== faults under load, short: Redis killed and back empty, declaration killed; nothing acknowledged lost (loadtest chaos)"
chaos_out="$(mktemp -d)"
target/debug/loadtest chaos --bin-dir target/debug --people 300 --rate 30 --duration 20 --fault-at 6 --fault-for 4 \
  --settle 30 --fault redis-empty --fault kill-declaration --out "$chaos_out"
rm -rf "$chaos_out"
echo "== the container image: built from the debug binaries, run non-root on a read-only root (podman)"
SKIP_BUILD=1 PROFILE=debug IMAGE=localhost/health-code:test scripts/image.sh build
IMAGE=localhost/health-code:test scripts/image.sh smoke
echo "== Kubernetes: overlays rendered and validated, policies, Prometheus rules, the dev overlay under podman kube play"
IMAGE=localhost/health-code:test scripts/k8s-check.sh
echo "== token test vectors, checked independently (Python: cbor2, cryptography, base45)"
"$(scripts/pyenv.sh)" scripts/check_token_vectors.py
echo "== the OpenAPI documents against the running services (schemathesis, every check, 8 s per service and caller)"
scripts/api-check.sh
echo "== the citizen's page end to end (headless Chromium)"
scripts/e2e.sh
echo "== make test took $(( $(date +%s) - start )) s"
