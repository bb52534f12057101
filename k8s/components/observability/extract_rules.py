#!/usr/bin/env python3
"""Prints the `spec` of the PrometheusRule in a manifest (the `groups:` document) as a plain Prometheus rule file,
so promtool checks and tests the very rules that are deployed:

    python3 extract_rules.py prometheus-rule.yaml > /tmp/rules.yaml

It also refuses (exit 1) an alert without `for`, a `severity` label, or `summary`, `description` and
`runbook_url` annotations. With `--dashboard dashboard.json`, it checks that every recording rule the dashboard
queries is defined here. Needs PyYAML.
"""

import argparse
import json
import re
import sys

import yaml

REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    # Multi-line expressions and descriptions stay readable: literal blocks, not escaped one-liners.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def find_rule(path):
    with open(path, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    rules = [d for d in documents if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        sys.exit(f"{path}: expected one PrometheusRule, found {len(rules)}")
    spec = rules[0].get("spec") or {}
    if not isinstance(spec.get("groups"), list) or not spec["groups"]:
        sys.exit(f"{path}: the PrometheusRule has no spec.groups")
    return spec


def lint(spec):
    problems = []
    for group in spec["groups"]:
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            if "for" not in rule:
                problems.append(f"alert {name}: no `for`")
            if "severity" not in (rule.get("labels") or {}):
                problems.append(f"alert {name}: no severity label")
            annotations = rule.get("annotations") or {}
            for key in REQUIRED_ANNOTATIONS:
                if not annotations.get(key):
                    problems.append(f"alert {name}: no {key} annotation")
            runbook = annotations.get("runbook_url", "")
            if runbook and not runbook.startswith("docs/deploy.md#"):
                problems.append(f"alert {name}: runbook_url is not a docs/deploy.md anchor")
    return problems


def recorded(spec):
    return {r["record"] for g in spec["groups"] for r in g.get("rules", []) if "record" in r}


def dashboard_problems(path, names):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    problems = []
    exprs = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            exprs.append((panel.get("title", "?"), target.get("expr", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if variable.get("type") == "query":
            exprs.append((f"variable {variable.get('name')}", query or ""))
    # Recording-rule names are the only metric names with colons.
    for title, expr in exprs:
        for name in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+", expr):
            if name not in names:
                problems.append(f"dashboard, {title}: {name} is not a recording rule")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="the PrometheusRule manifest (prometheus-rule.yaml)")
    parser.add_argument("--dashboard", help="also check this Grafana dashboard's recording-rule references")
    args = parser.parse_args()

    spec = find_rule(args.manifest)
    problems = lint(spec)
    if args.dashboard:
        problems += dashboard_problems(args.dashboard, recorded(spec))
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1)
    yaml.dump({"groups": spec["groups"]}, sys.stdout, Dumper=_Dumper, sort_keys=False, width=120)


if __name__ == "__main__":
    main()
