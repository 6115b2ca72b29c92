"""Specification of the pick/omit projection language (ETSI GS CIM 009 V1.9.1, 4.21)."""

from __future__ import annotations

import pytest

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.projection import depth, parse_projection


@pytest.mark.parametrize(("text", "expected"), [
    ("id", {"id": None}),
    ("id,type,name", {"id": None, "type": None, "name": None}),
    ("id|type", {"id": None, "type": None}),
    ("https://example.org/name,ex:height", {"https://example.org/name": None,
                                            "ex:height": None}),
    ("name,locatedAt{name,address}", {"name": None,
                                      "locatedAt": {"name": None, "address": None}}),
    ("a{b{c{d}}}", {"a": {"b": {"c": {"d": None}}}}),
    ("a{b},c{d,e}", {"a": {"b": None}, "c": {"d": None, "e": None}}),
])
def test_projections_parse_into_nested_member_maps(text: str,
                                                   expected: dict[str, object]) -> None:
    assert parse_projection(text) == expected


def test_a_member_named_twice_is_kept_once() -> None:
    assert parse_projection("id,id") == {"id": None}


@pytest.mark.parametrize("text", ["", ",", "id,", ",id", "id,,type", "a{", "a{b", "a}",
                                  "a{}", "a{b}}", "{a}", "a b", "a;b", "a{b,}"])
def test_malformed_projections_are_400(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_projection(text)


def test_projections_cannot_nest_without_bound() -> None:
    deep = "a{" * 40 + "b" + "}" * 40
    with pytest.raises(BadRequestData):
        parse_projection(deep)


@pytest.mark.parametrize(("text", "levels"), [("id,name", 0), ("a{b}", 1), ("a{b},c", 1),
                                              ("a{b{c}},d{e}", 2)])
def test_depth_counts_the_relationship_levels_a_projection_reaches(text: str,
                                                                   levels: int) -> None:
    assert depth(parse_projection(text)) == levels
