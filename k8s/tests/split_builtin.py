#!/usr/bin/env python3
"""Prints the documents of a YAML stream whose kinds are built into Kubernetes (for kubernetes-validate, which
only warns about kinds it does not know); validate_crs.py checks the rest."""

import sys

import yaml

from validate_crs import BUILTIN_GROUPS


def main() -> int:
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    builtin = [d for d in docs if str(d.get("apiVersion", "")).rpartition("/")[0] in BUILTIN_GROUPS]
    yaml.safe_dump_all(builtin, sys.stdout, sort_keys=False)
    return 0 if builtin else 1


if __name__ == "__main__":
    sys.exit(main())
