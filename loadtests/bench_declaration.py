#!/usr/bin/env python3
"""Declaration benchmarks: bulk import through the HTTP endpoint against psql's \\copy of the same rows, the
service's peak memory at two batch sizes, and declaration POST throughput. Bounded in time; loopback only.

    make bench-declaration            # or: loadtests/bench_declaration.py --rows 1000000 --small 100000

It brings PostgreSQL and Redis up (scripts/infra.sh), builds release binaries, starts identity and declaration on
ports 18081/18082 over a scratch database with the per-IP rate limit off (all load comes from one address), and
removes the scratch database and keys afterwards.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def nth_id(n):
    first17 = "44010619%02d%02d%02d%03d" % (80 + n // 336_000 % 10, 1 + n // 28_000 % 12, 1 + n // 1000 % 28, n % 1000)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def call(method, url, body=None, token=None, headers=None, raw=None, timeout=600):
    req = urllib.request.Request(url, method=method, data=raw if raw is not None else (json.dumps(body).encode() if body is not None else None))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_rows(path_ndjson, path_csv, start, count, lab, shuffle):
    order = list(range(start, start + count))
    if shuffle:
        # A lab's batch comes in sample order, not sorted by ID number. Sorted keys would flatter \copy, whose
        # index then grows only at its right edge, while the service's blind indexes are random either way.
        random.Random(42).shuffle(order)
    with open(path_ndjson, "w") as nd, open(path_csv, "w") as cs:
        for n in order:
            idn = nth_id(n)
            nd.write('{"id_number":"%s","sample_time":"2022-01-04T08:30:00+08:00","result":"negative","lab":"%s"}\n' % (idn, lab))
            cs.write("%s,2022-01-04T08:30:00+08:00,negative,%s\n" % (idn, lab))


def import_file(base, token, batch, path):
    started = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "900", "-X", "POST", "-T", path, f"{base}/v1/imports/nat-results",
         "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/x-ndjson", "-H", f"Idempotency-Key: {batch}"],
        check=True, capture_output=True, text=True).stdout
    elapsed = time.monotonic() - started
    result = json.loads(out)
    assert result.get("state") == "complete", out[:500]
    return elapsed, result


def psql(url, *args):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", *args], check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10, help="duration of the POST load")
    ap.add_argument("--citizens", type=int, default=50)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--sorted", action="store_true", help="rows sorted by ID number (flatters \\copy)")
    args = ap.parse_args()

    subprocess.run([f"{ROOT}/scripts/infra.sh", "up"], check=True)
    env_lines = subprocess.run([f"{ROOT}/scripts/infra.sh", "env"], check=True, capture_output=True, text=True).stdout
    infra = dict(re.findall(r"export (\w+)=(\S+)", env_lines))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins", "--locked", "-q"], check=True, cwd=ROOT)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)

    admin_url = infra["HC_TEST_DATABASE_URL"]
    stamp = f"{int(time.time())}"
    dbname = f"bench_{stamp}"
    db_url = admin_url.rsplit("/", 1)[0] + "/" + dbname
    psql(admin_url, "-c", f"CREATE DATABASE {dbname}")
    work = tempfile.mkdtemp(prefix="hc-bench-")
    procs = []
    try:
        secrets = subprocess.run([f"{ROOT}/target/release/identity", "generate-secrets"], check=True, capture_output=True, text=True).stdout
        env = dict(os.environ)
        env.update(dict(line.split("=", 1) for line in secrets.strip().splitlines()))
        env.update({
            "HC__DATABASE__URL": db_url, "HC__REDIS__URL": infra["HC_TEST_REDIS_URL"], "HC__REDIS__KEY_PREFIX": f"bench:{stamp}:",
            "HC__RATE_LIMIT__PER_IP_PER_SECOND": "0", "HC__IDENTITY__OTP__PER_IP_PER_HOUR": "100000",
            "HC__IDENTITY__SMS__KIND": "dev", "HC__IDENTITY__REAL_NAME__KIND": "dev",
            "HC__AUTH__JWKS_URL": "http://127.0.0.1:18081/v1/auth/keys", "HC__TELEMETRY__LOG_FILTER": "warn",
            "HC__DATABASE__POOL_MAX_SIZE": "32",
        })
        for name, port in (("identity", 18081), ("declaration", 18082)):
            log = open(f"{work}/{name}.log", "w")
            procs.append(subprocess.Popen([f"{ROOT}/target/release/{name}"], env={**env, "HC__SERVER__PORT": str(port)}, stdout=log, stderr=log))
        for port in (18081, 18082):
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
        identity, declaration = "http://127.0.0.1:18081", "http://127.0.0.1:18082"
        admin = call("POST", f"{identity}/v1/auth/token", {"grant_type": "client_credentials", "client_id": "admin",
                                                          "client_secret": env["HC__IDENTITY__ADMIN_KEY"]})["access_token"]
        lab = call("POST", f"{identity}/v1/clients", {"name": "bench lab", "scopes": ["import:nat"]}, token=admin)
        lab_token = call("POST", f"{identity}/v1/auth/token", {"grant_type": "client_credentials", "client_id": lab["client_id"],
                                                              "client_secret": lab["client_secret"]})["access_token"]
        decl_pid = procs[1].pid

        # Imports: a small batch, then the large one (distinct rows), peak RSS after each.
        small_nd, small_csv = f"{work}/small.ndjson", f"{work}/small.csv"
        large_nd, large_csv = f"{work}/large.ndjson", f"{work}/large.csv"
        write_rows(small_nd, small_csv, 0, args.small, "BENCH-S", not args.sorted)
        write_rows(large_nd, large_csv, 0, args.rows, "BENCH-L", not args.sorted)
        rss_start = peak_rss_mib(decl_pid)
        small_s, _ = import_file(declaration, lab_token, "small", small_nd)
        rss_small = peak_rss_mib(decl_pid)
        large_s, large = import_file(declaration, lab_token, "large", large_nd)
        rss_large = peak_rss_mib(decl_pid)

        # The same rows with psql's \copy, into a scratch table with the same unique key, and into a bare one.
        psql(db_url, "-c", "CREATE TABLE scratch_keyed (id_number text, sample_time timestamptz, result text, lab text, "
                           "UNIQUE (id_number, sample_time, lab)); CREATE TABLE scratch_bare (LIKE scratch_keyed)")
        copies = {}
        for table in ("scratch_keyed", "scratch_bare"):
            started = time.monotonic()
            psql(db_url, "-c", f"\\copy {table} FROM '{large_csv}' CSV")
            copies[table] = time.monotonic() - started

        # Declaration POSTs: citizens signed in, then wrk for a bounded time.
        tokens = []
        for i in range(args.citizens):
            phone = "137%08d" % i
            id_number = nth_id(5_000_000 + i)

            def sent_code():
                return subprocess.run(["redis-cli", "-u", infra["HC_TEST_REDIS_URL"], "GET", f"bench:{stamp}:sms:dev:{phone}"],
                                      check=True, capture_output=True, text=True).stdout.strip()
            call("POST", f"{identity}/v1/auth/otp", {"phone": phone, "purpose": "register"})
            call("POST", f"{identity}/v1/persons", {"name": "压测", "id_number": id_number, "phone": phone, "home_region": "440106",
                                                   "phone_code": sent_code(), "real_name_ticket": f"dev:{id_number}"})
            call("POST", f"{identity}/v1/auth/otp", {"phone": phone})
            tokens.append(call("POST", f"{identity}/v1/auth/token", {"grant_type": "otp", "phone": phone, "code": sent_code()})["access_token"])
        lua = f"{work}/declare.lua"
        with open(lua, "w") as f:
            f.write("local tokens = {%s}\n" % ",".join(json.dumps(t) for t in tokens))
            f.write('local body = \'{"current_region":"440106","temperature":36.6,"symptoms":[],"contact_with_case":false,"commitment":true}\'\n')
            f.write('request = function()\n  local t = tokens[math.random(#tokens)]\n'
                    '  return wrk.format("POST", "/v1/declarations", {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. t}, body)\nend\n')
            f.write('done = function(summary, latency, requests)\n  io.write(string.format("non2xx=%d\\n", summary.errors.status))\nend\n')
        wrk = subprocess.run(["wrk", "-t2", "-c32", f"-d{args.seconds}s", "--latency", "-s", lua, f"{declaration}/v1/declarations"],
                             check=True, capture_output=True, text=True, timeout=args.seconds + 60).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
        p99 = re.search(r"99%\s+(\S+)", wrk).group(1)
        non2xx = re.search(r"non2xx=(\d+)", wrk).group(1)

        endpoint_rate = args.rows / large_s
        print(f"""
## Declaration benchmarks ({time.strftime('%Y-%m-%d')}, `loadtests/bench_declaration.py --rows {args.rows} --small {args.small}{' --sorted' if args.sorted else ''}`, rows {'sorted by ID number' if args.sorted else 'in random order'})

| measurement | result |
|---|---|
| import {args.small:,} NAT rows via `POST /v1/imports/nat-results` | {small_s:.1f} s, {args.small / small_s:,.0f} rows/s |
| import {args.rows:,} NAT rows via the endpoint (accepted {large['accepted']:,}) | {large_s:.1f} s, **{endpoint_rate:,.0f} rows/s** |
| `psql \\copy` of the same rows into a table with the same unique key | {copies['scratch_keyed']:.1f} s, {args.rows / copies['scratch_keyed']:,.0f} rows/s |
| `psql \\copy` of the same rows into a bare table | {copies['scratch_bare']:.1f} s, {args.rows / copies['scratch_bare']:,.0f} rows/s |
| endpoint / keyed `\\copy` | **{endpoint_rate / (args.rows / copies['scratch_keyed']) * 100:.0f} %** |
| endpoint / bare `\\copy` | {endpoint_rate / (args.rows / copies['scratch_bare']) * 100:.0f} % |
| declaration service peak RSS: at start / after {args.small:,} rows / after {args.rows:,} rows | {rss_start:.0f} / {rss_small:.0f} / {rss_large:.0f} MiB |
| `POST /v1/declarations`, wrk -t2 -c32 {args.seconds} s, {args.citizens} citizens | **{rps:,.0f} req/s**, p99 {p99}, non-2xx {non2xx} |
""")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(admin_url, "-c", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        subprocess.run(f"redis-cli -u {infra['HC_TEST_REDIS_URL']} --scan --pattern 'bench:{stamp}:*' | xargs -r redis-cli -u {infra['HC_TEST_REDIS_URL']} DEL",
                       shell=True, check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
