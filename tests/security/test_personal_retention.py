"""Personal data is kept no longer than the register says."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from smartcity.config import Settings
from tests.conftest import LiveServer


def _history(api: httpx.Client, entity_id: str, attr: str) -> list[Any]:
    body = api.get(f"/temporal/entities/{entity_id}").json()
    instances = body.get(attr, [])
    return [i["value"] for i in (instances if isinstance(instances, list) else [instances])]


def test_personal_history_older_than_its_retention_is_deleted(db: str) -> None:
    """Lock.lockState is personal, kept a year (bundled register); name is not."""
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = "2020-01-01T00:00:00Z"
    lock = {"id": "urn:ngsi-ld:Lock:retained", "type": "Lock",
            "lockState": [{"type": "Property", "value": "locked", "observedAt": old},
                          {"type": "Property", "value": "unlocked", "observedAt": recent}],
            "name": [{"type": "Property", "value": "Back door", "observedAt": old}]}
    with LiveServer(Settings(db=db, retention_interval=0.2)) as url, \
            httpx.Client(base_url=url + "/ngsi-ld/v1") as api:
        assert api.post("/temporal/entities", json=lock).status_code == 201
        deadline = time.monotonic() + 10
        while _history(api, lock["id"], "lockState") != ["unlocked"]:
            assert time.monotonic() < deadline, "the old lock state was never deleted"
            time.sleep(0.1)
        assert _history(api, lock["id"], "name") == ["Back door"]
