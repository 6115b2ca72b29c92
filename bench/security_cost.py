"""What access control and the audit log cost: the core benchmarks with and without them.

    python bench/security_cost.py [--entities 20000] [--seconds 10] [--db postgresql://...]

Runs the same server twice on a fresh database (SQLite by default): once with
``--auth none``, once with access control on, the requests carrying a lighting
operator's bearer token (every request authenticated, every entity checked against the
policy, every write recorded in the audit log). Prints batch upsert rate and
retrieve-entity throughput (wrk) for each, and the difference; then the retrieve rate of
a personal entity by care staff with a current assignment (the costliest read: the
assignment is looked up and the read is recorded).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from live_server import free_port, start_server
from ngsild_core import GET_BODY, bench_upsert, make_entity, run_wrk, wrk_script

ANNA, SARA = "urn:ngsi-ld:Person:anna", "urn:ngsi-ld:Person:sara"


def make_client(db: str, name: str, roles: list[str], person: str | None = None) -> str:
    """A client of the platform at ``db`` (made before it starts); its secret."""
    command = [sys.executable, "-m", "smartcity", "accounts", "add", "client", name,
               "--db", db, *[a for role in roles for a in ("--role", role)]]
    if person:
        command += ["--person", person]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return out.strip().rsplit(" ", 1)[-1]


def token(origin: str, name: str, secret: str) -> dict[str, str]:
    response = httpx.post(f"{origin}/auth/token", auth=(name, secret),
                          data={"grant_type": "client_credentials"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def measure(db: str, auth: str, entities: list[dict[str, Any]], seconds: int,
            workdir: Path) -> dict[str, Any]:
    secrets = {}
    if auth == "on":
        secrets = {name: make_client(db, name, roles, person) for name, roles, person in (
            ("admin-bench", ["admin"], None), ("lighting-bench", ["lighting"], None),
            ("care-bench", ["care"], SARA))}
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    server = start_server(db, port, settings={"SMARTCITY_AUTH": auth,
                                              "SMARTCITY_CLIENT_RATE": "1000000",
                                              "SMARTCITY_CLIENT_BURST": "1000000"})
    try:
        headers = token(origin, "lighting-bench", secrets["lighting-bench"]) \
            if auth == "on" else {}
        base = origin + "/ngsi-ld/v1"
        figures: dict[str, Any] = {"upsert": bench_upsert(base, entities, 1, headers)}
        figures["retrieve"] = run_wrk(origin, wrk_script(len(entities), GET_BODY, headers),
                                      seconds, workdir)
        if auth == "on":
            figures["personal"] = personal_reads(origin, secrets, seconds, workdir)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=10)


def personal_reads(origin: str, secrets: dict[str, str], seconds: int,
                   workdir: Path) -> dict[str, float]:
    """Retrieve rate of Anna's door by Sara, assigned to her (all attributes shown)."""
    admin = token(origin, "admin-bench", secrets["admin-bench"])
    with httpx.Client(base_url=origin + "/ngsi-ld/v1", headers=admin) as http:
        http.post("/entities", json={
            "id": "urn:ngsi-ld:Lock:000000", "type": "Lock",
            "owner": {"type": "Property", "value": [ANNA]},
            "address": {"type": "Property", "value": {"streetAddress": "Hantverkargatan 3"}},
            "lockState": {"type": "Property", "value": "locked"}}).raise_for_status()
        http.post("/entities", json={
            "id": "urn:ngsi-ld:CareAssignment:1", "type": "CareAssignment",
            "refStaff": {"type": "Relationship", "object": SARA},
            "refClient": {"type": "Relationship", "object": ANNA},
            "startDate": {"type": "Property", "value": "2020-01-01T00:00:00Z"},
            "endDate": {"type": "Property", "value": "2099-01-01T00:00:00Z"}}
        ).raise_for_status()
    body = 'return wrk.format("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Lock:000000")'
    return run_wrk(origin, wrk_script(1, body, token(origin, "care-bench",
                                                     secrets["care-bench"])),
                   seconds, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--db", default="", help="a postgresql:// URL (its schema is "
                        "emptied) instead of a SQLite file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    rng = random.Random(7)
    entities = [make_entity(i, rng) for i in range(args.entities)]
    results = {}
    for auth in ("none", "on"):
        workdir = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
        db = args.db or str(workdir / "bench.db")
        if args.db:
            empty_schema(args.db)
        try:
            results[auth] = measure(db, auth, entities, args.seconds, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    off, on = results["none"], results["on"]
    print(f"entities: {args.entities:,} with 5 attributes; one worker; "
          f"{'PostgreSQL' if args.db else 'SQLite'}")
    print(f"batch upsert (1000/request): {off['upsert']:,.0f} entities/s without access "
          f"control, {on['upsert']:,.0f} with it ({_change(off['upsert'], on['upsert'])})")
    for label, key in (("retrieve entity", "rate"), ("retrieve p50 ms", "p50"),
                       ("retrieve p99 ms", "p99")):
        a, b = off["retrieve"][key], on["retrieve"][key]
        print(f"{label}: {a:,.2f} without, {b:,.2f} with ({_change(a, b)})")
    personal = on["personal"]
    print(f"retrieve a personal entity by assigned care staff: {personal['rate']:,.0f} "
          f"req/s, p50 {personal['p50']:.2f} ms, p99 {personal['p99']:.2f} ms, "
          f"non-2xx {personal['non2xx']:.0f}")
    if on["retrieve"]["non2xx"] or off["retrieve"]["non2xx"]:
        print("WARNING: some retrieves did not answer 2xx")


def _change(before: float, after: float) -> str:
    return f"{(after - before) / before * 100:+.1f}%"


def empty_schema(url: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            schema = await conn.fetchval("SELECT current_schema()")
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; "
                               f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()
    asyncio.run(run())


if __name__ == "__main__":
    main()
