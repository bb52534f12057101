"""Shared pieces of the benchmark drivers: the scratch platform's helpers (ID numbers, HTTP calls, psql, readiness)
and wrk with its parsed figures. Loopback only; every wrk run is bounded by its duration."""
import json
import os
import re
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def nth_id(n):
    first17 = "44010619%02d%02d%02d%03d" % (80 + n // 336_000 % 10, 1 + n // 28_000 % 12, 1 + n // 1000 % 28, n % 1000)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def call(method, url, body=None, token=None, timeout=60):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def psql(url, *args):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", *args], check=True, capture_output=True, text=True)


def ensure_free(*ports):
    """A service of an earlier run still on one of our ports would answer in place of ours (with other keys)."""
    import socket
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} is already in use (an earlier benchmark still running?)")


def wait_ready(port, path="/health/ready"):
    # A minute: on a busy two-core box two services migrating one fresh database can take half of it.
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"port {port} never became ready")


def wrk(url, seconds, connections, script=None, extra=()):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s", *extra]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"non2xx=(\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {"rps": rps, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0,
            "timeouts": int(timeouts.group(1)) if timeouts else 0}


def ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


