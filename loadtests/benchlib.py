"""Shared pieces of the benchmark drivers: the scratch platform's helpers (ID numbers, HTTP calls, psql, readiness)
and wrk with its parsed figures. Loopback only; every wrk run is bounded by its duration."""
import json
import os
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


class CpuSplit:
    """CPU time taken between `start()` and `stop()` by each program running at `start()` (by command name, all its
    processes and threads, from /proc), by the programs this script ran and waited for meanwhile (wrk), and by the
    kernel's interrupts. `stop()` returns {name: cores used on average}, with `idle` the cores left over: where the
    machine went during a run."""

    HZ = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _programs():
        ticks = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            # utime and stime are fields 14 and 15 of stat(5), the 12th and 13th after the name.
            ticks[name] = ticks.get(name, 0) + int(fields[11]) + int(fields[12])
        return ticks

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            cpu = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal
        return {"idle": cpu[3] + cpu[4], "interrupts": cpu[5] + cpu[6], "steal": cpu[7]}

    @staticmethod
    def _children():
        # Programs this script ran and waited for (wrk) are gone from /proc when the run ends; their time is here.
        t = os.times()
        return t.children_user + t.children_system

    def start(self):
        self.t0, self.p0, self.m0, self.c0 = time.monotonic(), self._programs(), self._machine(), self._children()
        return self

    def stop(self):
        elapsed = time.monotonic() - self.t0
        p1, m1 = self._programs(), self._machine()
        split = {name: (ticks - self.p0.get(name, 0)) / self.HZ / elapsed for name, ticks in p1.items()
                 if name in self.p0}
        split["wrk (load generator)"] = (self._children() - self.c0) / elapsed
        split.update({name: (m1[name] - self.m0[name]) / self.HZ / elapsed for name in m1})
        return {name: cores for name, cores in sorted(split.items(), key=lambda kv: -kv[1]) if cores >= 0.005}


def ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


class Scratch:
    """The stack a benchmark drives: PostgreSQL and Redis up (scripts/infra.sh), release binaries built, wrk at hand,
    a scratch database and key prefix, and the services it starts with development secrets, all removed on exit."""

    def __init__(self, name, ports, build=True, secrets=("identity", "rendering")):
        ensure_free(*ports)
        subprocess.run([f"{ROOT}/scripts/infra.sh", "up"], check=True)
        env_lines = subprocess.run([f"{ROOT}/scripts/infra.sh", "env"], check=True, capture_output=True,
                                   text=True).stdout
        infra = dict(re.findall(r"export (\w+)=(\S+)", env_lines))
        if build:
            subprocess.run(["cargo", "build", "--release", "--workspace", "--bins", "--locked", "-q"], check=True,
                           cwd=ROOT)
            subprocess.run(["cargo", "build", "--release", "-p", "rendering", "--example", "plaintext", "--locked",
                            "-q"], check=True, cwd=ROOT)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        self.admin_url = infra["HC_TEST_DATABASE_URL"]
        stamp = f"{int(time.time())}"
        self.dbname = f"{name}_{stamp}"
        self.db_url = self.admin_url.rsplit("/", 1)[0] + "/" + self.dbname
        self.redis_url = infra["HC_TEST_REDIS_URL"]
        self.prefix = f"bench:{stamp}:"
        self.procs = []
        self.work = tempfile.mkdtemp(prefix=f"hc-{name}-")
        psql(self.admin_url, "-c", f"CREATE DATABASE {self.dbname}")
        generated = "".join(subprocess.run([f"{ROOT}/target/release/{s}", "generate-secrets"], check=True,
                                           capture_output=True, text=True).stdout for s in secrets)
        self.env = dict(os.environ)
        self.env.update(dict(line.split("=", 1) for line in generated.strip().splitlines()))
        self.env.update({
            "HC__DATABASE__URL": self.db_url, "HC__REDIS__URL": self.redis_url, "HC__REDIS__KEY_PREFIX": self.prefix,
            "HC__RATE_LIMIT__PER_IP_PER_SECOND": "0", "HC__IDENTITY__OTP__PER_IP_PER_HOUR": "100000",
            "HC__IDENTITY__SMS__KIND": "dev", "HC__IDENTITY__REAL_NAME__KIND": "dev",
            "HC__AUTH__JWKS_URL": "http://127.0.0.1:18081/v1/auth/keys", "HC__TELEMETRY__LOG_FILTER": "warn",
        })
        self.env.pop("APP_ENV", None)

    def start(self, name, port, extra=None, binary=None, args=()):
        log = open(f"{self.work}/{name}-{port}.log", "w")
        p = subprocess.Popen([binary or f"{ROOT}/target/release/{name}", *args], cwd=ROOT,
                             env={**self.env, "HC__SERVER__PORT": str(port), **(extra or {})}, stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def start_plaintext(self, port=18090):
        self.start("plaintext", port, binary=f"{ROOT}/target/release/examples/plaintext", args=(str(port),))

    def sent_code(self, phone):
        """The last code the development SMS gateway sent to `phone`."""
        return subprocess.run(["redis-cli", "-u", self.redis_url, "GET", f"{self.prefix}sms:dev:{phone}"],
                              check=True, capture_output=True, text=True).stdout.strip()

    def citizen_token(self, n, phone, id_offset):
        """Registers a citizen in Tianhe (the phone proven by a code, the ID number by the development verifier's
        ticket) and signs them in with the one-time code the development gateway left."""
        identity = "http://127.0.0.1:18081"
        id_number = nth_id(id_offset + n)
        call("POST", f"{identity}/v1/auth/otp", {"phone": phone, "purpose": "register"})
        call("POST", f"{identity}/v1/persons", {"name": "压测", "id_number": id_number, "phone": phone,
                                               "home_region": "440106", "phone_code": self.sent_code(phone),
                                               "real_name_ticket": f"dev:{id_number}"})
        call("POST", f"{identity}/v1/auth/otp", {"phone": phone})
        return call("POST", f"{identity}/v1/auth/token",
                    {"grant_type": "otp", "phone": phone, "code": self.sent_code(phone)})["access_token"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if exc[0] is not None:
            # The scratch directory goes with the run: show why a service failed (never ready, say) before it does.
            for log in sorted(os.listdir(self.work)):
                if log.endswith(".log"):
                    with open(f"{self.work}/{log}", errors="replace") as f:
                        tail = f.readlines()[-40:]
                    print(f"--- last lines of {log}:\n{''.join(tail)}", file=sys.stderr)
        psql(self.admin_url, "-c", f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        subprocess.run(f"redis-cli -u {self.redis_url} --scan --pattern '{self.prefix}*' | "
                       f"xargs -r redis-cli -u {self.redis_url} DEL", shell=True, check=False, capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)
        return False
