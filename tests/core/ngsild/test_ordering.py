"""orderBy (clause 4.23): keys, directions, collations and distance."""

from __future__ import annotations

from typing import Any

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.ordering import parse_order_by, sort_entities

EX = "https://example.org/"


def expand(name: str) -> str:
    return name if ":" in name else EX + name


def lamp(entity_id: str, **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": [EX + "Lamp"],
            "attrs": {EX + k: [v if isinstance(v, dict) and "type" in v
                               else {"type": "Property", "value": v}]
                      for k, v in attrs.items()}}


def ids(entities: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entities]


def order(text: str | list[str], entities: list[dict[str, Any]], **kw: Any) -> list[str]:
    return ids(sort_entities(entities, parse_order_by(text, expand, **kw)))


def test_ascending_and_descending_on_an_attribute() -> None:
    lamps = [lamp("b", level=2), lamp("a", level=1), lamp("c", level=3)]
    assert order("level", lamps) == ["a", "b", "c"]
    assert order("level;desc", lamps) == ["c", "b", "a"]


def test_entities_without_the_value_come_last_in_both_directions() -> None:
    lamps = [lamp("none"), lamp("one", level=1), lamp("two", level=2)]
    assert order("level", lamps) == ["one", "two", "none"]
    assert order("level;desc", lamps) == ["two", "one", "none"]


def test_numbers_rank_before_strings() -> None:
    assert order("rank", [lamp("s", rank="x"), lamp("n", rank=5)]) == ["n", "s"]


def test_later_keys_break_ties() -> None:
    lamps = [lamp("a", street="B", level=2), lamp("b", street="A", level=9),
             lamp("c", street="B", level=1)]
    assert order("street,level;desc", lamps) == ["b", "a", "c"]


def test_code_point_order_without_collation_and_base_letters_with_one() -> None:
    lamps = [lamp("acute", name="á"), lamp("b", name="b"), lamp("A", name="A")]
    assert order("name", lamps) == ["A", "b", "acute"]
    assert order("name", lamps, collation="und") == ["A", "acute", "b"]


def test_german_phonebook_collation_spells_out_umlauts() -> None:
    lamps = [lamp("zebra", name="Zebra"), lamp("ahre", name="Ähre")]
    assert order("name", lamps, collation="de-u-co-phonebk") == ["ahre", "zebra"]


def test_a_subitem_path_orders_by_a_member_of_a_compound_value() -> None:
    lamps = [lamp("x", address={"city": "Malmö"}), lamp("y", address={"city": "Umeå"})]
    assert order("address[city];desc", lamps) == ["y", "x"]


def test_distance_ordering_from_a_reference_point() -> None:
    def at(entity_id: str, lon: float) -> dict[str, Any]:
        return lamp(entity_id, location={"type": "GeoProperty",
                                         "value": {"type": "Point", "coordinates": [lon, 40]}})
    lamps = [at("far", 9), at("near", 8.01), at("mid", 8.5)]
    assert order("location;dist-asc", lamps, origin="[8,40]") == ["near", "mid", "far"]
    assert order("location;dist-desc", lamps, origin=[8, 40]) == ["far", "mid", "near"]


@pytest.mark.parametrize("text", ["name;sideways", "", "a..b", "name[", "name[]"])
def test_malformed_items_are_bad_request_data(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_order_by(text, expand)


def test_distance_ordering_needs_reference_coordinates() -> None:
    with pytest.raises(BadRequestData):
        parse_order_by("location;dist-asc", expand)


def test_a_collation_must_be_a_language_tag() -> None:
    with pytest.raises(BadRequestData):
        parse_order_by("name", expand, collation="not a tag!!")
