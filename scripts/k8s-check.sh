#!/usr/bin/env bash
# The Kubernetes deliverables, checked offline (make test runs it; `make k8s-check` alone):
#   1. every overlay rendered with `kubectl kustomize`;
#   2. built-in kinds validated with kubernetes-validate --strict (Kubernetes 1.32 schemas);
#   3. custom resources (CloudNativePG, prometheus-operator) validated against their upstream CRDs
#      (k8s/tests/crds, sources named there); an unknown custom kind fails;
#   4. checkov on the rendered prod overlay (skips listed with reasons in k8s/README.md), hadolint on the
#      Containerfile;
#   5. the Prometheus rules with promtool (check and unit tests);
#   6. the dev overlay's Deployments run for real with `podman kube play` from the image (scripts/image.sh), against
#      this machine's PostgreSQL and Redis, each pod's readiness endpoint answering (skipped with a message where
#      podman cannot run; REQUIRE_PODMAN=1 makes that a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
py="$(scripts/pyenv.sh)"
bin="$(dirname "$py")"
out="$(mktemp -d /tmp/hc-k8s.XXXXXX)"
trap 'rm -rf "$out"' EXIT
k8s_version=1.32.0
say() { echo "[k8s] $*"; }

command -v kubectl >/dev/null || { say "kubectl (with kustomize) is missing: it comes with this machine's image"; exit 1; }

say "rendering the overlays"
for overlay in dev prod; do
  kubectl kustomize "k8s/overlays/$overlay" >"$out/$overlay.yaml"
  say "  $overlay: $(grep -c '^kind:' "$out/$overlay.yaml") objects"
done

say "built-in kinds: kubernetes-validate --strict (Kubernetes $k8s_version)"
for overlay in dev prod; do
  # Custom resources are left to the next step (kubernetes-validate only warns about them).
  "$py" k8s/tests/split_builtin.py <"$out/$overlay.yaml" >"$out/$overlay.builtin.yaml"
  "$bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$out/$overlay.builtin.yaml"
done

say "custom resources against their CRDs"
"$py" k8s/tests/test_validate_crs.py >/dev/null
for overlay in dev prod; do
  # dev holds no custom resource of its own (only built-in kinds); prod must have some checked.
  allow=(); [ "$overlay" = dev ] && allow=(--allow-none)
  status=0
  "$py" k8s/tests/validate_crs.py k8s/tests/crds "${allow[@]}" <"$out/$overlay.yaml" >"$out/crs-$overlay.txt" || status=$?
  grep -v '^skip ' "$out/crs-$overlay.txt" | sed "s/^/[k8s]   $overlay: /" || true
  [ "$status" = 0 ] || { say "custom resources of $overlay failed"; exit 1; }
done

say "checkov (policies; skips and reasons in k8s/README.md)"
skips="$(sed -n 's/^| *`\(CKV[A-Z0-9_]*\)`.*/\1/p' k8s/README.md | paste -sd, -)"
for overlay in dev prod; do
  "$bin/checkov" --quiet --compact --skip-download --framework kubernetes --skip-check "$skips" \
    -f "$out/$overlay.yaml" >"$out/checkov-$overlay.txt" 2>&1 \
    || { cat "$out/checkov-$overlay.txt"; say "checkov found problems in $overlay"; exit 1; }
  say "  $overlay: $(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' "$out/checkov-$overlay.txt" || echo 'no findings')"
done

say "hadolint Containerfile"
"$bin/hadolint" Containerfile

say "Prometheus rules (promtool)"
if ! command -v promtool >/dev/null; then
  say "installing promtool (Debian's prometheus package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
fi
k8s/components/observability/test.sh

say "the dev overlay under podman kube play"
scripts/kube-play.sh "$out/dev.yaml"
say "all Kubernetes checks passed"
