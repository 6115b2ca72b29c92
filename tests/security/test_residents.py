"""Residents' rights: a copy of everything linked to me, the public register of
personal data, and the log of who accessed my data, kept in a chain no one can alter
unnoticed."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from typing import Any

import httpx
import orjson
from typer.testing import CliRunner

from smartcity.cli import app
from tests.security.conftest import City

ANNA = "urn:ngsi-ld:Person:anna-r"
SARA = "urn:ngsi-ld:Person:sara-r"
LOCK = "urn:ngsi-ld:Lock:anna-r-front"


def _setup(city: City) -> dict[str, dict[str, str]]:
    with city.http(city.admin) as admin:
        for entity in (
                {"id": LOCK, "type": "Lock", "owner": {"type": "Property", "value": [ANNA]},
                 "address": {"type": "Property", "value": {"streetAddress": "Ringvägen 9"}},
                 "lockState": {"type": "Property", "value": "locked"}},
                {"id": "urn:ngsi-ld:CareAssignment:r1", "type": "CareAssignment",
                 "refStaff": {"type": "Relationship", "object": SARA},
                 "refClient": {"type": "Relationship", "object": ANNA},
                 "startDate": {"type": "Property", "value": "2026-01-01T00:00:00Z"},
                 "endDate": {"type": "Property", "value": "2099-01-01T00:00:00Z"}}):
            if admin.get(f"/entities/{entity['id']}").status_code == 404:
                assert admin.post("/entities", json=entity).status_code == 201
        assert admin.patch(f"/entities/{LOCK}/attrs", json={
            "lockState": {"type": "Property", "value": "unlocked"}}).status_code == 204
    return {"anna": city.account(["resident"], person=ANNA),
            "sara": city.account(["care"], person=SARA)}


def test_a_resident_downloads_everything_linked_to_them(city: City) -> None:
    people = _setup(city)
    response = httpx.get(f"{city.url}/me/data", headers=people["anna"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert {"README.txt", "entities.jsonld", "history.jsonld", "entities.csv",
            "consents.json", "access-log.json", "register.json"} <= set(archive.namelist())
    entities = orjson.loads(archive.read("entities.jsonld"))["entities"]
    assert {LOCK, "urn:ngsi-ld:CareAssignment:r1"} <= {e["id"] for e in entities}
    rows = list(csv.DictReader(io.StringIO(archive.read("entities.csv").decode())))
    states = {(r["value"], r["current"]) for r in rows if r["entity"] == LOCK
              and r["attribute"] == "lockState"}
    assert {("unlocked", "yes"), ("locked", "no")} <= states


def test_the_copy_is_only_for_residents(city: City) -> None:
    operator = city.account(["lighting"])
    response = httpx.get(f"{city.url}/me/data", headers=operator)
    assert response.status_code == 403 and "resident" in response.json()["detail"]
    assert httpx.get(f"{city.url}/me/data").status_code == 401


def _access_log(city: City, headers: dict[str, str], who: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:  # the audit log is written in the background, within moments
        log = httpx.get(f"{city.url}/me/access", headers=headers).json()
        if any(entry["actor"] == who for entry in log) or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def test_a_resident_sees_who_read_their_personal_data_and_why(city: City) -> None:
    people = _setup(city)
    with city.http(people["sara"]) as http:
        assert "address" in http.get(f"/entities/{LOCK}").json()
    sara = httpx.get(f"{city.url}/me", headers=people["sara"]).json()["subject"]
    log = _access_log(city, people["anna"], sara)
    [read, *_] = [e for e in log if e["actor"] == sara and e["action"] == "read"]
    assert read["target"] == LOCK and read["roles"] == ["care"]
    assert "Home care" in read["purpose"]
    assert "address" in read["detail"]["attributes"]
    assert ANNA in read["subjects"]


def test_the_register_of_personal_data_is_public(city: City) -> None:
    register = httpx.get(f"{city.url}/privacy/register").json()
    lock = next(e for e in register if e["id"] == "urn:ngsi-ld:PrivacyObject:Lock")
    assert lock["type"] == "PrivacyObject"
    assert lock["isPersonalData"]["value"] is True
    assert lock["retentionPeriod"]["value"] == "P1Y"
    assert "Home care" in lock["purpose"]["value"]


def _audit(db: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["audit", *args, "--db", db])


def test_writes_refusals_and_administration_are_in_an_intact_chain(city: City) -> None:
    people = _setup(city)
    with city.http(people["sara"]) as http:
        assert http.get("/entities", params={"type": "Streetlight"}).status_code == 403
    db = city.live.platform.settings.db
    deadline = time.monotonic() + 5
    while True:
        listed = _audit(db, "list", "--limit", "100000")
        rows = [orjson.loads(line) for line in listed.output.splitlines()]
        if any(r["action"] == "denied" for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    actions = {(r["action"], r["what"]) for r in rows}
    assert {("write", "entities"), ("denied", "GET"), ("administer", "account"),
            ("login", "token")} <= actions
    verified = _audit(db, "verify")
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output


def test_a_new_resident_s_copy_leaves_out_the_former_resident_s_personal_history(
        city: City) -> None:
    former, new = "urn:ngsi-ld:Person:former-r", "urn:ngsi-ld:Person:new-r"
    door = "urn:ngsi-ld:Lock:moved-r"
    with city.http(city.admin) as admin:
        assert admin.post("/entities", json={
            "id": door, "type": "Lock", "owner": {"type": "Property", "value": [former]},
            "lockState": {"type": "Property", "value": "former's state"},
            "name": {"type": "Property", "value": "Door"}}).status_code == 201
        assert admin.patch(f"/entities/{door}/attrs", json={
            "owner": {"type": "Property", "value": [new]},
            "lockState": {"type": "Property", "value": "new state"}}).status_code == 204
    headers = city.account(["resident"], person=new)
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(f"{city.url}/me/data",
                                                   headers=headers).content))
    history = archive.read("history.jsonld").decode()
    assert "former's state" not in history and former not in history
    assert "Door" in history
    assert "new state" in archive.read("entities.jsonld").decode()
