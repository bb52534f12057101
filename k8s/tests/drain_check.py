#!/usr/bin/env python3
"""Graceful shutdown, checked from outside: a registration whose body is still arriving when the pod is told to
stop (SIGTERM, as Kubernetes sends after preStop) still gets its answer, and new connections are refused.

    drain_check.py PORT REDIS_URL KEY_PREFIX STOP_COMMAND...

Asks for a registration code (read from the development SMS gateway's key in Redis), then sends the headers and half
the body of POST /v1/persons to 127.0.0.1:PORT, runs STOP_COMMAND in the background
(e.g. `podman pod stop -t 30 identity-pod-0`), waits a second, checks that a new connection is refused, sends the
rest of the body and expects a complete HTTP response (201). Exits 1 otherwise."""

import json
import socket
import subprocess
import sys
import time

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_number(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def registration_code(port: int, redis_url: str, prefix: str, phone: str) -> str:
    request = json.dumps({"phone": phone, "purpose": "register"}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall((f"POST /v1/auth/otp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(request)}\r\nConnection: close\r\n\r\n").encode() + request)
    while s.recv(65536):
        pass
    s.close()
    return subprocess.run(["redis-cli", "-u", redis_url, "GET", f"{prefix}sms:dev:{phone}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def main() -> int:
    port = int(sys.argv[1])
    redis_url, prefix = sys.argv[2:4]
    stop = sys.argv[4:]
    phone, idn = "13900139123", id_number("44010619900101123")
    body = json.dumps({"name": "测试", "id_number": idn, "phone": phone, "home_region": "440106",
                       "phone_code": registration_code(port, redis_url, prefix, phone),
                       "real_name_ticket": f"dev:{idn}"}).encode()
    head = (f"POST /v1/persons HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head + body[: len(body) // 2])
    time.sleep(0.3)
    stopper = subprocess.Popen(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        refused = True
    s.sendall(body[len(body) // 2:])
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    stopper.wait(timeout=60)
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"in-flight request answered: {status or 'nothing (connection cut)'}; new connections refused: {refused}")
    return 0 if status.startswith("HTTP/1.1 201") and refused else 1


if __name__ == "__main__":
    sys.exit(main())
