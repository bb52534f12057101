#!/usr/bin/env bash
# The Secrets the dev overlay references, made with fresh development keys and applied to the current kubectl
# context (namespace health-code): hc-secrets (the services' keys), hc-postgres-app and hc-postgres-superuser (the
# in-namespace PostgreSQL's user and password), and hc-db-<service> (each service's own role). Nothing is written
# to the repository. Production: docs/deploy.md, "Secrets".
#   scripts/k8s-dev-secrets.sh            applies them
#   scripts/k8s-dev-secrets.sh --print    prints the manifests instead
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release; [ -x "$bin/identity" ] || bin=target/debug
[ -x "$bin/identity" ] || cargo build --workspace --bins --locked -q
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
(umask 077
 { "$bin/identity" generate-secrets; "$bin/rendering" generate-secrets; "$bin/verification" generate-secrets; } >"$work/env"
 # Verification opens the pseudonyms rendering seals: the same keys.
 sed -n 's/^HC__RENDERING__PSEUDONYM_KEYS=/HC__VERIFICATION__PSEUDONYM_KEYS=/p' "$work/env" >>"$work/env")
password="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
manifests() {
  kubectl create namespace health-code --dry-run=client -o yaml
  kubectl -n health-code create secret generic hc-secrets --from-env-file="$work/env" --dry-run=client -o yaml
  kubectl -n health-code create secret generic hc-postgres-app --from-literal=username=hc \
    --from-literal=password="$password" --dry-run=client -o yaml
  # The in-namespace PostgreSQL's user is its superuser: the roles Job provisions with it.
  kubectl -n health-code create secret generic hc-postgres-superuser --from-literal=username=hc \
    --from-literal=password="$password" --dry-run=client -o yaml
  # Each service's own role (hc-db-roles makes it).
  for name in identity declaration scoring verification; do
    kubectl -n health-code create secret generic "hc-db-$name" --from-literal=username="hc_$name" \
      --from-literal=password="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" --dry-run=client -o yaml
  done
}
if [ "${1:-}" = --print ]; then manifests; else manifests | kubectl apply -f -; fi
