#!/usr/bin/env python3
"""Self-test of validate_crs.py against the vendored CRDs: `python3 k8s/tests/test_validate_crs.py`."""

import io
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import validate_crs  # noqa: E402

CRDS = validate_crs.load_crds(HERE / "crds")

CLUSTER = """
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: hc-postgres
spec:
  instances: 3
  storage:
    size: 1Gi
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: declaration
spec:
  selector: {matchLabels: {app: declaration}}
  template:
    metadata: {labels: {app: declaration}}
    spec:
      containers: [{name: declaration, image: declaration:dev}]
"""


def check(text):
    return validate_crs.check_stream(io.StringIO(text), CRDS)


def only(text):
    results = check(text)
    assert len(results) == 1, results
    return results[0]


def test_valid_minimal_cluster_passes():
    r = only(CLUSTER)
    assert r.status == "ok", r
    assert r.line() == "ok Cluster/hc-postgres", r.line()
    # spec.instances is required but has a default (1), which the API server applies first.
    assert only(CLUSTER.replace("  instances: 3\n", "")).status == "ok"


def test_misspelt_spec_field_fails():
    r = only(CLUSTER.replace("instances:", "instnces:"))
    assert r.status == "FAIL", r
    assert "$.spec" in r.message and "instnces" in r.message, r.message
    # Nested too: storage.sizee.
    r = only(CLUSTER.replace("size: 1Gi", "sizee: 1Gi"))
    assert r.status == "FAIL" and "$.spec.storage" in r.message and "sizee" in r.message, r


def test_instances_as_string_fails():
    r = only(CLUSTER.replace("instances: 3", 'instances: "three"'))
    assert r.status == "FAIL", r
    assert "$.spec.instances" in r.message and "integer" in r.message, r.message


def test_int_or_string_and_missing_name():
    monitor = """
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: declaration}
spec:
  selector: {matchLabels: {app: declaration}}
  podMetricsEndpoints: [{port: http, targetPort: %s, path: /metrics}]
"""
    assert only(monitor % "8080").status == "ok", only(monitor % "8080")
    assert only(monitor % "http").status == "ok"
    r = only(monitor % "[8080]")
    assert r.status == "FAIL" and "targetPort" in r.message, r
    r = only(CLUSTER.replace("  name: hc-postgres\n", "  labels: {app: x}\n"))
    assert r.status == "FAIL" and "$.metadata" in r.message and "name" in r.message, r


def test_go_regexp_patterns():
    # RE2 allows `(?i)` after `^` (Python does not), and its `$` does not match before a final newline.
    rule = """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: hc}
spec:
  groups: [{name: hc, partial_response_strategy: %s, rules: [{alert: A, expr: up, for: 5m}]}]
"""
    assert only(rule % "WARN").status == "ok", only(rule % "WARN")
    r = only(rule % '"warn\\n"')
    assert r.status == "FAIL" and "'^(?i)(abort|warn)?$'" in r.message, r
    r = only(rule.replace("for: 5m", "for: 5 minutes") % "abort")
    assert r.status == "FAIL" and "$.spec.groups[0].rules[0].for" in r.message, r
    # int32 range.
    r = only(CLUSTER.replace("instances: 3", "instances: 3\n  startDelay: 4294967296"))
    assert r.status == "FAIL" and "int32" in r.message, r


def test_unknown_kind_fails():
    r = only("apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: bar}\n")
    assert r.status == "FAIL" and "unknown custom kind" in r.message, r
    # A *.k8s.io group that is not built in is not skipped either.
    r = only("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\n")
    assert r.status == "FAIL", r
    # A known kind at a version the CRD does not serve.
    r = only(CLUSTER.replace("postgresql.cnpg.io/v1", "postgresql.cnpg.io/v2"))
    assert r.status == "FAIL" and "not served" in r.message, r


def test_builtin_deployment_skipped():
    r = only(DEPLOYMENT)
    assert r.status == "skip", r
    assert only("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {bogus: 1}\n").status == "skip"


def test_command_line():
    script = str(HERE / "validate_crs.py")

    def run(text):
        return subprocess.run([sys.executable, script, str(HERE / "crds")], input=text,
                              capture_output=True, text=True)

    p = run(DEPLOYMENT + "---\n" + CLUSTER)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.splitlines() == ["skip Deployment/declaration (built-in apps/v1)", "ok Cluster/hc-postgres"], p.stdout
    p = run(CLUSTER + "---\napiVersion: example.com/v1\nkind: Foo\nmetadata: {name: bar}\n")
    assert p.returncode == 1 and "FAIL Foo/bar:" in p.stdout, p.stdout
    # Nothing checked (built-ins only, or empty input) is a failure.
    assert run(DEPLOYMENT).returncode == 1
    assert run("").returncode == 1


def test_converted_schemas_are_valid_json_schema():
    for (group, kind), crd in CRDS.crds.items():
        for version in crd.versions:
            v = CRDS.validator(group, kind, version)
            type(v).check_schema(v.schema)


if __name__ == "__main__":
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    for name, fn in tests:
        fn()
        print(f"ok {name}")
    print(f"{len(tests)} tests passed")
