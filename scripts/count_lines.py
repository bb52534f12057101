#!/usr/bin/env python3
"""Lines of Rust in a commit, the measure of issue 15's "the code gets shorter": non-blank lines that are not `//`
comments, split into production code (services/*/src, libs/*/src, loadtests/src), the test harness
(libs/hc-platform/src/testing*) and tests (tests/ and benches/ directories, `#[cfg(test)] mod` blocks, to their closing brace).

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
        test_file = "tests" in parts or "benches" in parts or name == "tests.rs" or name.endswith("_tests.rs")
        is_harness = "hc-platform" in parts and "testing" in path.split("hc-platform", 1)[1]
        module_end = None  # the closing line of the `#[cfg(test)] mod` being read (rustfmt puts it at the mod's indent)
        for i, line in enumerate(lines):
            text = line.strip()
            if module_end is None and text.startswith("#[cfg(test)]"):
                following = lines[i + 1] if i + 1 < len(lines) else ""
                if following.strip().startswith(("mod ", "pub mod")) and following.rstrip().endswith("{"):
                    module_end = following[: len(following) - len(following.lstrip())] + "}"
            in_tests = test_file or module_end is not None
            if module_end is not None and line.rstrip() == module_end:
                module_end = None
            if not text or text.startswith("//"):
                continue
            if in_tests:
                tests += 1
            elif is_harness:
                harness += 1
            else:
                prod += 1
print(prod, harness, tests, prod + harness + tests)
