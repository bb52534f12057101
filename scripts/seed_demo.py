#!/usr/bin/env python3
"""Seeds the demo data through the public API (idempotently) and prints where to look.

Called by scripts/up.sh with the .run directory; reads the admin key from the environment."""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

RUN = sys.argv[1] if len(sys.argv) > 1 else ""
IDENTITY = "http://127.0.0.1:8081"
DECLARATION = "http://127.0.0.1:8082"
SCORING = "http://127.0.0.1:8083"
RENDERING = "http://127.0.0.1:8084"
VERIFICATION = "http://127.0.0.1:8085"
# Batch ids carry a tag of this checkout's secrets: two checkouts sharing one PostgreSQL (each with its own blind-index
# key) must not replay each other's batches, whose rows are keyed by the other key's indexes.
SECRETS_TAG = hashlib.sha256(os.environ.get("HC__PRIVACY__BLIND_INDEX_KEY", "").encode()).hexdigest()[:8]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_number(first17):
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


CITIZENS = [
    ("张伟", id_number("44010619850315002"), "13800138001", "440106"),
    ("李娜", id_number("61011319920708004"), "13800138002", "610113"),
    ("王芳", id_number("33010619780120006"), "13800138003", "330106"),
]


def call(method, url, body=None, token=None, headers=None):
    req = urllib.request.Request(url, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(req, data, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def sent_code(phone):
    """The last code the development SMS gateway (HC__IDENTITY__SMS__KIND=dev) sent to `phone`."""
    key = os.environ.get("HC__REDIS__KEY_PREFIX", "hc:") + f"sms:dev:{phone}"
    return subprocess.run(["redis-cli", "-u", os.environ["HC__REDIS__URL"], "GET", key],
                          check=True, capture_output=True, text=True).stdout.strip()


def register(name, idn, phone, region, admin, identity=IDENTITY):
    """Registers a demo citizen as the page would: a code to the phone, then the development verifier's ticket.
    A citizen registered by an earlier run is looked up (audited) instead, which costs none of the phone's codes."""
    status, _ = call("GET", f"{identity}/v1/persons/by-id-number/{idn}?reason=demo%20seeding", token=admin)
    if status == 200:
        return
    status, body = call("POST", f"{identity}/v1/auth/otp", {"phone": phone, "purpose": "register"})
    assert status == 202, (status, body)
    status, body = call("POST", f"{identity}/v1/persons",
                        {"name": name, "id_number": idn, "phone": phone, "home_region": region,
                         "phone_code": sent_code(phone), "real_name_ticket": f"dev:{idn}"})
    assert status in (200, 201), (status, body)


def main():
    admin_key = os.environ["HC__IDENTITY__ADMIN_KEY"]
    status, body = call("POST", f"{IDENTITY}/v1/auth/token",
                        {"grant_type": "client_credentials", "client_id": "admin", "client_secret": admin_key})
    assert status == 200, (status, body)
    admin = body["access_token"]
    for name, idn, phone, region in CITIZENS:
        register(name, idn, phone, region, admin)

    creds_file = os.path.join(RUN, "demo-official-v2.json")
    creds = json.load(open(creds_file)) if os.path.exists(creds_file) else None
    if creds is None or call("POST", f"{IDENTITY}/v1/auth/token", {"grant_type": "client_credentials", **creds})[0] != 200:
        status, body = call("POST", f"{IDENTITY}/v1/clients",
                            {"name": "Demo health commission", "region": "440100",
                             "scopes": ["person:read", "import:nat", "import:cases", "import:visits", "risk:write",
                                        "rules:write", "appeals:resolve", "staff:read", "verify", "verify:id"]},
                            token=admin, headers={"Idempotency-Key": f"demo-official-{os.urandom(6).hex()}"})
        assert status == 201, (status, body)
        creds = {"client_id": body["client_id"], "client_secret": body["client_secret"]}
        with open(os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(creds, f)

    # A lab's test results for the demo citizens (idempotent by batch id), so their facts are not empty.
    official = call("POST", f"{IDENTITY}/v1/auth/token", {"grant_type": "client_credentials", **creds})[1]["access_token"]
    rows = "".join(json.dumps({"id_number": idn, "sample_time": "2022-01-04T08:30:00+08:00",
                               "result": "negative", "lab": "Guangzhou KingMed"}) + "\n" for _, idn, _, _ in CITIZENS)
    req = urllib.request.Request(f"{DECLARATION}/v1/imports/nat-results", data=rows.encode(), method="POST")
    req.add_header("Authorization", f"Bearer {official}")
    req.add_header("Content-Type", "application/x-ndjson")
    req.add_header("Idempotency-Key", f"demo-nat-1-{SECRETS_TAG}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status in (200, 201), resp.status

    # A carrier saw 张伟 in Baiyun district three days ago, and Baiyun is medium risk: scoring turns him yellow,
    # with the reason, the rule and until when.
    seen = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    visit = {"id_number": CITIZENS[0][1], "region": "440111", "first_seen": (seen - datetime.timedelta(hours=5)).isoformat(),
             "last_seen": seen.isoformat(), "source": "carrier"}
    req = urllib.request.Request(f"{DECLARATION}/v1/imports/visits", data=(json.dumps(visit) + "\n").encode(), method="POST")
    req.add_header("Authorization", f"Bearer {official}")
    req.add_header("Content-Type", "application/x-ndjson")
    req.add_header("Idempotency-Key", f"demo-visits-{seen.date()}-{SECRETS_TAG}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status in (200, 201), resp.status
    status, body = call("PUT", f"{SCORING}/v1/regions/440111/risk", {"level": "medium"}, token=official)
    assert status == 202, (status, body)
    coloured = False
    for _ in range(50):
        status, body = call("POST", f"{SCORING}/v1/status/lookup", {"id_number": CITIZENS[0][1], "reason": "demo seed check"},
                            token=official)
        if status == 200 and body["status"]["colour"] == "yellow":
            coloured = True
            break
        time.sleep(0.2)
    assert coloured, ("张伟 did not turn yellow", status, body)
    # A Zhejiang with cases, contacts and 14 days of trajectories and check-ins: the public county map at /map.
    import seed_map  # here, not at the top: it imports this file's helpers
    zhejiang = seed_map.seed(IDENTITY, DECLARATION, admin, SECRETS_TAG, os.path.join(RUN, "demo-zhejiang.json"),
                             SCORING)
    status, body = call("GET", f"{RENDERING}/v1/trust/keys")
    assert status == 200 and body["keys"], (status, body)

    # A metro gate in Tianhe that admits green codes, with the demo official client as its checkpoint device; 张伟
    # (yellow) is turned away at it on the ID-card path, with the rule that decided.
    status, body = call("PUT", f"{VERIFICATION}/v1/venues/metro-tiyuxilu-a",
                        {"name": "体育西路地铁站 A 口", "region": "440106", "devices": [creds["client_id"]],
                         "policy": {"colours": ["green"], "nat_within_hours": 72, "international_admitted": True,
                                    "hours": None}}, token=admin)
    assert status == 200, (status, body)
    venue_code = body["venue_code"]
    judged = None
    for _ in range(50):
        status, judged = call("POST", f"{VERIFICATION}/v1/verify", {"id_number": CITIZENS[0][1]}, token=official)
        if status == 200 and judged["reason"] != "not_registered":
            break
        time.sleep(0.2)
    assert status == 200 and judged["reason"] == "colour_not_admitted", ("the gate did not turn 张伟 away", status, judged)

    print(f"""
The health-code platform is up.

  identity      {IDENTITY}
                  OpenAPI  {IDENTITY}/openapi.json
                  health   {IDENTITY}/health/ready      metrics {IDENTITY}/metrics
                  keys     {IDENTITY}/v1/auth/keys
  declaration   {DECLARATION}
                  OpenAPI  {DECLARATION}/openapi.json     health {DECLARATION}/health/ready
  scoring       {SCORING}
                  OpenAPI  {SCORING}/openapi.json     health {SCORING}/health/ready
                  public risk map  {SCORING}/v1/regions/risk
                  five-colour county map  {SCORING}/v1/map?province=330000   rules {SCORING}/v1/map/rules
                  one county, its history and its indices' inputs  {SCORING}/v1/map/counties/330106
  rendering     {RENDERING}
                  OpenAPI  {RENDERING}/openapi.json     health {RENDERING}/health/ready
                  public keys of the codes  {RENDERING}/v1/trust/keys
                  the citizen's page  {RENDERING}/
                  the public county map (Zhejiang, seeded; indices within a minute)  {RENDERING}/map
  verification  {VERIFICATION}
                  OpenAPI  {VERIFICATION}/openapi.json     health {VERIFICATION}/health/ready
                  signed trust list  {VERIFICATION}/v1/trust/list     root key {VERIFICATION}/v1/trust/root
  logs          .run/logs/          secrets .run/secrets.env        stop: make down

Demo citizens (sign in with a one-time code; the development SMS gateway leaves it in Redis; registering takes a
code sent with "purpose":"register" and the development real-name ticket "dev:<ID number>"):""")
    for name, idn, phone, region in CITIZENS:
        print(f"  {name}  phone {phone}  ID {idn}  home {region}")
    print(f"""
  curl -s -XPOST {IDENTITY}/v1/auth/otp -H 'content-type: application/json' -d '{{"phone":"13800138001"}}'
  CODE=$(redis-cli GET hc:sms:dev:13800138001)
  curl -s -XPOST {IDENTITY}/v1/auth/token -H 'content-type: application/json' \\
       -d '{{"grant_type":"otp","phone":"13800138001","code":"'$CODE'"}}'

Administrator (bootstrap):  client_id admin   client_secret {admin_key}
Official client (Guangzhou: person:read import:nat import:cases import:visits risk:write rules:write
                 appeals:resolve staff:read verify verify:id):
  client_id {creds['client_id']}   client_secret {creds['client_secret']}
  curl -s -XPOST {IDENTITY}/v1/auth/token -H 'content-type: application/json' \\
       -d '{{"grant_type":"client_credentials","client_id":"{creds['client_id']}","client_secret":"{creds['client_secret']}"}}'

Zhejiang's health commission (import:nat import:cases import:visits risk:write over 330000) overrides a county's
level on the map (audited; lift with POST .../override/lift and a reason):
  client_id {zhejiang['client_id']}   client_secret {zhejiang['client_secret']}
  curl -s -XPUT {SCORING}/v1/map/counties/330782/override -H "authorization: Bearer $ZHEJIANG_TOKEN" \\
       -H 'content-type: application/json' -d '{{"level":"yellow","reason":"cluster traced and closed"}}'

A citizen's declaration and their test results (the demo lab batch demo-nat-1 is imported):
  curl -s -XPOST {DECLARATION}/v1/declarations -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d '{{"current_region":"440106","temperature":36.5,"symptoms":[],"contact_with_case":false,"commitment":true}}'
  curl -s {DECLARATION}/v1/facts/me -H "authorization: Bearer $TOKEN"

The citizen's colour, its reasons and what to do (张伟 is yellow: Baiyun 440111 is medium risk and a carrier saw
him there three days ago):
  curl -s {SCORING}/v1/status/me -H "authorization: Bearer $TOKEN"
  curl -s {SCORING}/v1/rules/000000 -H "authorization: Bearer $OFFICIAL_TOKEN"     # the rules, as data

The citizen's code (the signed HCQ1 token of docs/token-format.md), as a QR code or its payload:
  curl -s "{RENDERING}/v1/codes/me?format=payload" -H "authorization: Bearer $TOKEN"
  curl -s "{RENDERING}/v1/codes/me?format=png" -H "authorization: Bearer $TOKEN" -o code.png

A checkpoint (the official client above is the device of venue metro-tiyuxilu-a, green codes only) verifies a code
or an ID card; 张伟 is denied (yellow), the scan is recorded:
  curl -s -XPOST {VERIFICATION}/v1/verify -H "authorization: Bearer $OFFICIAL_TOKEN" -H 'content-type: application/json' \\
       -d "{{\\"code\\":\\"$(curl -s "{RENDERING}/v1/codes/me?format=payload" -H "authorization: Bearer $TOKEN" | python3 -c 'import json,sys;print(json.load(sys.stdin)["code"])')\\"}}"
  curl -s -XPOST {VERIFICATION}/v1/verify -H "authorization: Bearer $OFFICIAL_TOKEN" -H 'content-type: application/json' \\
       -d '{{"id_number":"{CITIZENS[0][1]}"}}'
  -> {judged["decision"]}: {judged["reasons"][0]["en"]} (rule {judged["rule"]})
A citizen checks in with the venue's code ({venue_code}; the QR: {VERIFICATION}/v1/venues/metro-tiyuxilu-a/code):
  curl -s -XPOST {VERIFICATION}/v1/checkins -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d '{{"venue_code":"{venue_code}"}}'
  curl -s {VERIFICATION}/v1/checkins/exposure -H "authorization: Bearer $TOKEN"    # the co-traveller self-check
Offline, with the trust list saved to a file:
  curl -s {VERIFICATION}/v1/trust/list > trust.json
  target/debug/hc-verify --trust-list trust.json --root "$(curl -s {VERIFICATION}/v1/trust/root | python3 -c 'import json,sys;k=json.load(sys.stdin);print(k["region"]+"="+k["kid"]+":"+k["x"])')" "$CODE"
""")


if __name__ == "__main__":
    main()
