#!/usr/bin/env python3
"""Lines of Rust in a commit, the measure of issue 15's "the code gets shorter": non-blank lines that are not `//`
comments, split into production code (services/*/src, libs/*/src, loadtests/src), the test harness
(libs/hc-platform/src/testing*) and tests (tests/ and benches/ directories, `#[cfg(test)] mod` blocks).

    scripts/count_lines.py [COMMIT]     (default HEAD; prints: production harness tests total)"""
import io
import subprocess
import sys
import tarfile

commit = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
archive = subprocess.run(["git", "archive", commit, "services", "libs", "loadtests"], check=True,
                         capture_output=True).stdout
prod = harness = tests = 0
with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
    for member in tar.getmembers():
        path = member.name
        parts = path.split("/")
        if not path.endswith(".rs") or "target" in parts or "fuzz" in parts:
            continue
        lines = tar.extractfile(member).read().decode("utf-8", "replace").split("\n")
        name = parts[-1]
        in_tests = "tests" in parts or "benches" in parts or name == "tests.rs" or name.endswith("_tests.rs")
        is_harness = "hc-platform" in parts and "testing" in path.split("hc-platform", 1)[1]
        for i, line in enumerate(lines):
            text = line.strip()
            if text.startswith("#[cfg(test)]"):
                following = lines[i + 1].strip() if i + 1 < len(lines) else ""
                if following.startswith(("mod ", "pub mod")):
                    in_tests = True
            if not text or text.startswith("//"):
                continue
            if in_tests:
                tests += 1
            elif is_harness:
                harness += 1
            else:
                prod += 1
print(prod, harness, tests, prod + harness + tests)
