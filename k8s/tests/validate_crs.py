#!/usr/bin/env python3
"""Offline validation of custom resources against their upstream CRD schemas.

    validate_crs.py CRD_DIR < rendered.yaml

Reads a multi-document YAML stream (the output of `kubectl kustomize`) and, for every document:
  * a built-in kind (API group in the Kubernetes core set) is skipped: kubernetes-validate checks those;
  * a kind whose CRD is in CRD_DIR is validated against that CRD's openAPIV3Schema for the document's version,
    converted to JSON Schema with "no unknown fields" (what the API server rejects under strict field validation);
  * any other kind is an error: an unknown custom kind must not pass.
Prints one line per document (`ok Kind/name`, `FAIL Kind/name: $.json.path: message`, `skip Kind/name (...)`).
Exits 1 if any document failed or no custom resource was validated at all.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import re
import sys
from typing import Any, Iterable, NamedTuple

import jsonschema
import yaml

# API groups served by kube-apiserver itself. An explicit list, not a `*.k8s.io` suffix match: groups such as
# gateway.networking.k8s.io, snapshot.storage.k8s.io or metrics.k8s.io are CRDs or aggregated APIs.
BUILTIN_GROUPS = frozenset({
    "",  # core, apiVersion: v1
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
})

_MAX_ERRORS = 10
_MAX_MESSAGE = 300

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that keeps timestamps as strings, as the API server's YAML-to-JSON decoding does."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# --- OpenAPI v3 (structural schema) -> JSON Schema (draft 2020-12) -------------------------------------------

# Value validations carried over unchanged. `default`, `description`, `example`, `x-kubernetes-*` (list/map types,
# CEL validations) are dropped.
_COPIED = ("enum", "pattern", "format", "minimum", "maximum", "multipleOf", "minLength", "maxLength",
           "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties")


_ORIGINAL_PATTERN = "x-crd-pattern"
_RE2_FLAGS = re.compile(r"\(\?([imsU]+)\)")


def python_pattern(pattern: str) -> str:
    """Translates a CRD `pattern` (Go RE2 syntax) to Python `re` with the same meaning: `$` and `\\z` mean the
    end of the text (Python's `$` also matches before a final newline), and a flag group such as `(?i)` after
    the start (RE2: applies to the rest of the enclosing group; Python: an error) becomes a scoped `(?i:...)`."""
    out: list[str] = []
    closers = [0]  # per open group (the bottom one is the whole pattern): scoped-flag groups to close with it
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            esc = pattern[i:i + 2]
            out.append("\\Z" if esc == "\\z" and not in_class else esc)
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            j = i + 1
            if pattern[j:j + 1] == "^":
                j += 1
            if pattern[j:j + 1] == "]":  # a leading ] is literal
                j += 1
            out.append(pattern[i:j])
            i = j
            continue
        elif c == "$":
            c = "\\Z"
        elif c == "(" and i > 0 and (m := _RE2_FLAGS.match(pattern, i)):
            out.append(f"(?{m.group(1)}:")
            closers[-1] += 1
            i = m.end()
            continue
        elif c == "(":
            closers.append(0)
        elif c == ")" and len(closers) > 1:
            c = ")" * closers.pop() + ")"
        out.append(c)
        i += 1
    out.append(")" * closers[0])
    return "".join(out)


def convert_schema(s: dict[str, Any], *, branch: bool = False) -> dict[str, Any]:
    """Converts one OpenAPI v3 schema node. `branch` is set inside anyOf/oneOf/allOf/not, where a structural
    schema only adds value validations (no unknown-field closing there: pruning follows the main schema)."""
    out: dict[str, Any] = {}
    nullable = s.get("nullable") is True and not branch
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = s.get("x-kubernetes-int-or-string") is True

    types: list[str] = []
    if int_or_string:
        types = ["integer", "string"]
    elif "type" in s:
        types = [s["type"]]
    if types:
        if nullable:
            types.append("null")
        out["type"] = types[0] if len(types) == 1 else types

    for key in _COPIED:
        if key in s:
            out[key] = s[key]
    if "pattern" in out:
        out["pattern"] = python_pattern(out["pattern"])
        if out["pattern"] != s["pattern"]:
            out[_ORIGINAL_PATTERN] = s["pattern"]  # for error messages
    if nullable and "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    # OpenAPI 3.0 exclusiveMinimum/exclusiveMaximum are booleans modifying minimum/maximum.
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if s.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)

    if "properties" in s:
        props = s["properties"]
        out["properties"] = {name: convert_schema(sub, branch=branch) for name, sub in props.items()}
        if not branch and not preserve and "additionalProperties" not in s:
            out["additionalProperties"] = False
    if "required" in s:
        # The API server defaults before it validates: a required field with a default (Cluster spec.instances)
        # is filled in whenever its parent object is present, so it may be omitted.
        props = s.get("properties", {})
        required = [n for n in s["required"] if not (isinstance(props.get(n), dict) and "default" in props[n])]
        if required:
            out["required"] = required
    if "additionalProperties" in s:
        ap = s["additionalProperties"]
        out["additionalProperties"] = convert_schema(ap, branch=branch) if isinstance(ap, dict) else ap
    if "items" in s:
        items = s["items"]
        out["items"] = convert_schema(items, branch=branch) if isinstance(items, dict) else {}

    for key in ("anyOf", "oneOf", "allOf"):
        if key in s:
            branches = [convert_schema(b, branch=True) for b in s[key]]
            # Int-or-string fields carry anyOf [{type: integer}, {type: string}]: already expressed by `type`.
            if int_or_string and key == "anyOf" and all(set(b) <= {"type"} for b in branches):
                continue
            out[key] = branches
    if "not" in s:
        out["not"] = convert_schema(s["not"], branch=True)
    return out


# Root metadata is ObjectMeta, validated by the API server itself: only require a name here.
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}


def resource_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    schema = convert_schema(openapi)
    schema.setdefault("properties", {})["metadata"] = _METADATA
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError("not an RFC 3339 date-time")
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


# --- CRDs -----------------------------------------------------------------------------------------------------

class Crd(NamedTuple):
    path: pathlib.Path
    versions: dict[str, dict[str, Any]]  # version name -> CRD version entry


class CrdSet:
    def __init__(self, crds: dict[tuple[str, str], Crd]):
        self.crds = crds
        self._validators: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}

    def find(self, group: str, kind: str) -> Crd | None:
        return self.crds.get((group, kind))

    def validator(self, group: str, kind: str, version: str) -> jsonschema.protocols.Validator:
        key = (group, kind, version)
        if key not in self._validators:
            openapi = self.crds[(group, kind)].versions[version]["schema"]["openAPIV3Schema"]
            self._validators[key] = jsonschema.Draft202012Validator(
                resource_schema(openapi), format_checker=_FORMATS)
        return self._validators[key]


def load_crds(crd_dir: str | pathlib.Path) -> CrdSet:
    crds: dict[tuple[str, str], Crd] = {}
    files = sorted(p for p in pathlib.Path(crd_dir).iterdir() if p.suffix in (".yaml", ".yml"))
    for path in files:
        with path.open("rb") as f:
            for doc in yaml.load_all(f, Loader=_Loader):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                key = (spec["group"], spec["names"]["kind"])
                if key in crds:
                    raise SystemExit(f"{path}: CRD for {key[1]}.{key[0]} already loaded from {crds[key].path}")
                crds[key] = Crd(path, {v["name"]: v for v in spec["versions"]})
    if not crds:
        raise SystemExit(f"{crd_dir}: no CustomResourceDefinition found")
    return CrdSet(crds)


# --- Documents ------------------------------------------------------------------------------------------------

class Result(NamedTuple):
    status: str  # "ok", "FAIL" or "skip"
    label: str
    message: str = ""

    def line(self) -> str:
        if self.status == "ok":
            return f"ok {self.label}"
        if self.status == "skip":
            return f"skip {self.label} ({self.message})"
        return f"FAIL {self.label}: {self.message}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern" and isinstance(error.schema, dict) and _ORIGINAL_PATTERN in error.schema:
        return f"{error.instance!r} does not match {error.schema[_ORIGINAL_PATTERN]!r}"
    return error.message


def check_document(doc: Any, index: int, crds: CrdSet) -> Result | None:
    if doc is None:
        return None  # empty document (a stray `---`)
    if not isinstance(doc, dict):
        return Result("FAIL", f"document #{index}", "not a mapping")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    label = f"{kind}/{name}" if kind else f"document #{index}"
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return Result("FAIL", label, "apiVersion and kind are required")
    group, _, version = api_version.rpartition("/")
    if group in BUILTIN_GROUPS:
        return Result("skip", label, f"built-in {api_version}")
    crd = crds.find(group, kind)
    if crd is None:
        return Result("FAIL", label, f"unknown custom kind {kind} in {group}: no CRD for it in the CRD directory")
    entry = crd.versions.get(version)
    if entry is None or not entry.get("served", False):
        served = ", ".join(n for n, v in crd.versions.items() if v.get("served")) or "none"
        return Result("FAIL", label, f"version {version} of {kind}.{group} is not served (served: {served})")
    errors = sorted(crds.validator(group, kind, version).iter_errors(doc),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return Result("ok", label)
    messages = [f"{e.json_path}: {_short(_message(e))}" for e in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        messages.append(f"... and {len(errors) - _MAX_ERRORS} more")
    return Result("FAIL", label, "; ".join(messages))


def check_stream(stream: Any, crds: CrdSet) -> list[Result]:
    results: list[Result] = []
    try:
        for index, doc in enumerate(yaml.load_all(stream, Loader=_Loader), start=1):
            result = check_document(doc, index, crds)
            if result is not None:
                results.append(result)
    except yaml.YAMLError as e:
        results.append(Result("FAIL", "input", f"invalid YAML: {e}"))
    return results


def exit_code(results: Iterable[Result], allow_none: bool = False) -> int:
    results = list(results)
    if any(r.status == "FAIL" for r in results):
        return 1
    return 0 if allow_none or any(r.status == "ok" for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crd_dir", help="directory of CustomResourceDefinition YAML files")
    parser.add_argument("--allow-none", action="store_true",
                        help="pass input that holds built-in kinds only (an overlay without custom resources)")
    args = parser.parse_args(argv)
    crds = load_crds(args.crd_dir)
    results = check_stream(sys.stdin.buffer, crds)
    for r in results:
        print(r.line())
    code = exit_code(results, args.allow_none)
    if code and not any(r.status == "FAIL" for r in results):
        print("FAIL: no custom resource was checked (empty input, or built-in kinds only)")
    return code


if __name__ == "__main__":
    sys.exit(main())
