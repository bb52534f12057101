#!/usr/bin/env python3
"""Turns the rendered dev overlay into what `podman kube play` runs on this machine, changing only what a single
host without a cluster needs, and printing every change:
  * the Deployments of the five services and their ConfigMaps are kept (PostgreSQL and Redis are this machine's);
  * pods use the host's network (no cluster DNS or Services here): the in-cluster addresses in the settings become
    127.0.0.1 and a port of the test's range, and the containers listen there (probes name that port by number);
  * the Secrets' values come from the test's own generated secrets (podman has no Kubernetes Secrets);
  * the image is the test's local one.
Everything else (image entrypoints, commands, the security context, probes, env from ConfigMaps) stays as rendered.

    for_podman.py IMAGE BASE_PORT DATABASE_URL REDIS_URL REDIS_PREFIX SECRETS_ENV < dev.yaml > play.yaml
"""

import sys

import yaml

SERVICES = ["identity", "declaration", "scoring", "rendering", "verification"]


def main() -> int:
    image, base_port, db_url, redis_url, prefix, secrets_file = sys.argv[1:7]
    base_port = int(base_port)
    port = {s: base_port + i for i, s in enumerate(SERVICES)}
    secrets = {}
    for line in open(secrets_file):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            secrets[k] = v
    secrets["HC__VERIFICATION__PSEUDONYM_KEYS"] = secrets["HC__RENDERING__PSEUDONYM_KEYS"]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    kept = []

    def address(value: str) -> str:
        for s in SERVICES:
            value = value.replace(f"http://{s}/", f"http://127.0.0.1:{port[s]}/")
            if value == f"http://{s}":
                value = f"http://127.0.0.1:{port[s]}"
        return value

    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "ConfigMap" and any(name.startswith(p) for p in ["hc-common"] + SERVICES):
            data = d.get("data", {})
            for k, v in list(data.items()):
                new = address(v)
                if k == "HC__REDIS__URL":
                    new = redis_url
                if k == "HC__SERVER__PORT":
                    new = str(port[name.rsplit("-", 1)[0]])
                if k == "HC__SERVER__HOST":
                    new = "127.0.0.1"
                if new != v:
                    print(f"changed: ConfigMap {name} {k}", file=sys.stderr)
                    data[k] = new
            kept.append(d)
        elif kind == "Deployment" and name in SERVICES:
            spec = d["spec"]["template"]["spec"]
            spec["hostNetwork"] = True
            c = spec["containers"][0]
            c["image"] = image
            # Host network: the container listens on the host's port itself (podman refuses port mappings then), and
            # the probes name the port by number.
            c.pop("ports", None)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "httpGet" in c.get(probe, {}):
                    c[probe]["httpGet"]["port"] = port[name]
            env = []
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if e["name"] in ("HC_DB_USER", "HC_DB_PASSWORD"):
                    continue
                if e["name"] == "HC__DATABASE__URL":
                    env.append({"name": e["name"], "value": db_url})
                elif ref and ref["key"] not in secrets and ref.get("optional"):
                    continue
                elif ref:
                    env.append({"name": e["name"], "value": secrets[ref["key"]]})
                else:
                    env.append(e)
            env.append({"name": "HC__REDIS__KEY_PREFIX", "value": prefix})
            c["env"] = env
            print(f"changed: Deployment {name}: host network, port {port[name]}, image {image}, "
                  "secrets and database URL from the test", file=sys.stderr)
            kept.append(d)
    assert sum(d["kind"] == "Deployment" for d in kept) == len(SERVICES), "a service's Deployment is missing"
    yaml.safe_dump_all(kept, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
