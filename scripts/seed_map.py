#!/usr/bin/env python3
"""Seeds a Zhejiang county map for the demo and the map's end-to-end test, through the public API: a provincial
health commission's client, a few residents, case lists (cases rising in 西湖区, many in 余杭区, steady in 义乌市, …),
close contacts, and 14 days of carrier trajectories and venue check-ins, so every level of the five-colour map and
both indices have data. Idempotent: batch keys carry `tag`.

Usage: seed_map.py IDENTITY DECLARATION [SCORING [--indices]] (the admin key and Redis from the environment, as
seed_demo.py). With SCORING, waits until its map shows the seed (see `shows_seed`)."""
import datetime
import json
import os
import random
import sys
import time
import urllib.request

from seed_demo import call, id_number, register

CHINA = datetime.timezone(datetime.timedelta(hours=8))
# County: (cases in the last 7 days, cases 8-13 days ago, cases 15-20 days ago, close contacts).
COUNTIES = {
    "330110": (30, 30, 0, 12),  # 余杭区: 60 cases, red
    "330106": (8, 4, 0, 6),     # 西湖区: 12 rising, red
    "330782": (5, 6, 0, 4),     # 义乌市: 11 steady, orange
    "330212": (3, 1, 0, 2),     # 鄞州区: 4 rising, orange
    "330302": (0, 2, 0, 0),     # 鹿城区: 2, yellow
    "330681": (1, 0, 0, 0),     # 诸暨市: 1, yellow
    "330402": (0, 0, 0, 3),     # 南湖区: contacts only, blue
    "331002": (0, 0, 1, 0),     # 椒江区: a case 15-20 days ago, blue
}
# Residents registered per county (their check-ins and travel give the flow index).
RESIDENTS = ["330106", "330782", "330212", "330402", "330104", "330203"]
# Counties with carrier trajectories and venue check-ins (the control index).
BUSY = ["330106", "330110", "330782", "330212", "330402", "330104", "330203", "330302"]


def person(county, n):
    """The n-th made-up person of a county: a valid ID number born in the 1980s."""
    return id_number(f"{county}198{n % 10}{1 + n // 10 % 12:02}{1 + n // 120 % 28:02}{n % 1000:03}")


def post_ndjson(url, token, rows, key):
    req = urllib.request.Request(url, data="".join(json.dumps(r) + "\n" for r in rows).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/x-ndjson")
    req.add_header("Idempotency-Key", key)
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status in (200, 201), resp.status
        body = json.loads(resp.read())
        assert body.get("rejected", 0) == 0, body


def shows_seed(body, indices=False):
    """Whether a `GET /v1/map?province=330000` answer shows the seed's levels (西湖区 red, 南湖区 blue), and with
    `indices` also its indices (ten days of 西湖区's, today's flow in 义乌市), which scoring's scheduled round computes."""
    m = {c["region"]: c for c in body["counties"]}
    levels = m["330106"]["level"] == "red" and m["330402"]["level"] == "blue"
    yiwu = m["330782"]["indices"]
    return levels and (not indices or (len(m["330106"]["indices"]) >= 10 and bool(yiwu) and yiwu[-1]["flow"] is not None))


def seed(identity, declaration, admin, tag, creds_file=None, scoring=None, indices=False):
    """Seeds the map; returns the Zhejiang client's credentials (kept in `creds_file` across runs when given). With
    `scoring`, waits (up to 30 s) until its map shows what the seed implies (`shows_seed`)."""
    creds = json.load(open(creds_file)) if creds_file and os.path.exists(creds_file) else None
    token = lambda: call("POST", f"{identity}/v1/auth/token", {"grant_type": "client_credentials", **creds})
    if creds is None or token()[0] != 200:
        status, body = call("POST", f"{identity}/v1/clients",
                            {"name": "Demo Zhejiang health commission", "region": "330000",
                             "scopes": ["import:nat", "import:cases", "import:visits", "risk:write"]},
                            token=admin, headers={"Idempotency-Key": f"demo-zhejiang-{os.urandom(6).hex()}"})
        assert status == 201, (status, body)
        creds = {"client_id": body["client_id"], "client_secret": body["client_secret"]}
        if creds_file:
            with open(os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(creds, f)
    official = token()[1]["access_token"]

    now = datetime.datetime.now(CHINA)
    today = now.date()
    residents = []
    for i, county in enumerate(RESIDENTS):
        for k in range(2):
            idn = person(county, 900 + k)
            register("示例居民", idn, f"1380013{8100 + 2 * i + k}", county, admin, identity)
            residents.append((county, idn))

    day = lambda ago: (today - datetime.timedelta(days=ago)).isoformat()
    cases = []
    for county, (recent, earlier, old, contacts) in COUNTIES.items():
        n = 0
        for count, ages in ((recent, range(0, 7)), (earlier, range(8, 14)), (old, range(15, 21))):
            for j in range(count):
                cases.append({"id_number": person(county, n), "status": "confirmed", "since": day(ages[j % len(ages)]),
                              "region": county})
                n += 1
        for j in range(contacts):
            cases.append({"id_number": person(county, 500 + j), "status": "close_contact", "since": day(j % 5),
                          "region": county})
    # A resident of 鄞州区 listed as a close contact two days ago, tested since: the control index's third share.
    cases.append({"id_number": residents[4][1], "status": "close_contact", "since": day(2), "region": "330212"})
    post_ndjson(f"{declaration}/v1/imports/cases", official, cases, f"demo-zj-cases-{today}-{tag}")
    sample = (now - datetime.timedelta(days=1)).isoformat()
    post_ndjson(f"{declaration}/v1/imports/nat-results", official,
                [{"id_number": residents[4][1], "sample_time": sample, "result": "negative", "lab": "Hangzhou lab"}],
                f"demo-zj-nat-{today}-{tag}")

    rng = random.Random(20220101)
    visits = []
    latest = now - datetime.timedelta(minutes=5)
    for ago in range(14):
        start = min(datetime.datetime.combine(today - datetime.timedelta(days=ago), datetime.time(9), CHINA), latest)
        span = lambda hours: {"first_seen": start.isoformat(),
                              "last_seen": min(start + datetime.timedelta(hours=hours), latest).isoformat()}
        for c, county in enumerate(BUSY):
            seen = rng.randint(4, 8)
            checked = rng.randint(seen // 2, seen)
            for j in range(seen):
                idn = person(county, 600 + 10 * ago + j)
                visits.append({"id_number": idn, "region": county, "source": "carrier", **span(3)})
                if j < checked:
                    visits.append({"id_number": idn, "region": county, "source": "venue", **span(1)})
        for k, (county, idn) in enumerate(residents):
            if rng.random() < 0.8:
                visits.append({"id_number": idn, "region": county, "source": "venue", **span(1)})
            if rng.random() < 0.3:
                visits.append({"id_number": idn, "region": BUSY[(k + ago) % len(BUSY)], "source": "carrier", **span(2)})
    post_ndjson(f"{declaration}/v1/imports/visits", official, visits, f"demo-zj-visits-{today}-{tag}")
    for _ in range(150 if scoring else 0):
        status, body = call("GET", f"{scoring}/v1/map?province=330000")
        if status == 200 and shows_seed(body, indices):
            break
        time.sleep(0.2)
    else:
        assert not scoring, "scoring's county map never showed the seeded levels"
    return creds


if __name__ == "__main__":
    IDENTITY, DECLARATION = sys.argv[1], sys.argv[2]
    SCORING = sys.argv[3] if len(sys.argv) > 3 else None
    status, body = call("POST", f"{IDENTITY}/v1/auth/token",
                        {"grant_type": "client_credentials", "client_id": "admin",
                         "client_secret": os.environ["HC__IDENTITY__ADMIN_KEY"]})
    assert status == 200, (status, body)
    seed(IDENTITY, DECLARATION, body["access_token"], os.environ.get("SEED_TAG", "e2e"), scoring=SCORING,
         indices="--indices" in sys.argv[4:])
