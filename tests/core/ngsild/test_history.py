"""Specification of history capture: which instances a core write adds to history."""

from __future__ import annotations

from smartcity.core.ngsild.history import from_changes
from smartcity.core.ngsild.instants import parse_instant

D = "https://uri.etsi.org/ngsi-ld/default-context/"
OLD, NOW = "2024-01-01T00:00:00.000000Z", "2024-01-02T00:00:00.000000Z"


def lamp(**attrs: list[dict[str, object]]) -> dict[str, object]:
    return {"id": "urn:lamp:1", "type": [D + "Streetlight"], "createdAt": OLD,
            "modifiedAt": NOW, "attrs": {D + k: v for k, v in attrs.items()}}


def test_only_the_instances_a_write_touched_are_recorded() -> None:
    before = lamp(power=[{"type": "Property", "value": 1, "modifiedAt": OLD}],
                  state=[{"type": "Property", "value": "on", "modifiedAt": OLD}])
    after = lamp(power=[{"type": "Property", "value": 2, "modifiedAt": NOW}],
                 state=[{"type": "Property", "value": "on", "modifiedAt": OLD}])
    history = from_changes([("updated", after, before)], NOW)
    (recorded,) = history.instances
    assert (recorded.attr, recorded.body["value"]) == (D + "power", 2)


def test_the_time_of_an_instance_is_observed_at_when_given_else_the_write_time() -> None:
    after = lamp(power=[{"type": "Property", "value": 2, "modifiedAt": NOW,
                         "observedAt": "2023-12-31T23:00:00Z"}],
                 state=[{"type": "Property", "value": "on", "modifiedAt": NOW}])
    times = {i.attr: i.time for i in from_changes([("created", after, None)], NOW).instances}
    assert times == {D + "power": parse_instant("2023-12-31T23:00:00Z"),
                     D + "state": parse_instant(NOW)}


def test_a_removed_attribute_is_recorded_as_a_deletion_with_ngsi_ld_null() -> None:
    before = lamp(power=[{"type": "Property", "value": 1, "modifiedAt": OLD}],
                  owner=[{"type": "Relationship", "object": "urn:p:1", "modifiedAt": OLD}])
    after = lamp(power=[{"type": "Property", "value": 1, "modifiedAt": OLD}])
    (deleted,) = from_changes([("updated", after, before)], NOW).instances
    assert deleted.body == {"type": "Relationship", "object": "urn:ngsi-ld:null",
                            "deletedAt": NOW}


def test_deleting_the_entity_adds_nothing_the_history_stays() -> None:
    assert not from_changes([("deleted", None, lamp())], NOW)
