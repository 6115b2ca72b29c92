"""Specification tests for NGSI-LD scope queries (``scopeQ``, ETSI GS CIM 009 clause 4.19)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.scope_query import MAX_DEPTH, parse_scope_q

GARDENS = ["/Madrid/Gardens/ParqueNorte"]


@pytest.mark.parametrize("query, scopes, expected", [
    ("/Madrid/Gardens/ParqueNorte", GARDENS, True),
    ("/Madrid/Gardens", GARDENS, False),
    ("/Madrid", ["/Madrid"], True),
    ("/Madrid", ["/MadridSur"], False),
    ("/Madrid", ["/Madrid/Gardens"], False),
])
def test_exact_scope(query: str, scopes: list[str], expected: bool) -> None:
    assert parse_scope_q(query)(scopes) is expected


@pytest.mark.parametrize("scopes, expected", [
    (["/Madrid"], True),
    (["/Madrid/Gardens"], True),
    (GARDENS, True),
    (["/MadridSur"], False),
    (["/MadridSur/Gardens"], False),
    (["/Barcelona/Madrid"], False),
])
def test_hash_matches_the_scope_and_everything_below(scopes: list[str], expected: bool) -> None:
    assert parse_scope_q("/Madrid/#")(scopes) is expected


@pytest.mark.parametrize("scopes, expected", [
    (["/Madrid/Gardens"], True),
    (["/Madrid/District"], True),
    (["/Madrid"], False),
    (GARDENS, False),
    (["/MadridSur/Gardens"], False),
])
def test_plus_matches_exactly_one_level(scopes: list[str], expected: bool) -> None:
    assert parse_scope_q("/Madrid/+")(scopes) is expected


def test_plus_inside_a_path() -> None:
    matches = parse_scope_q("/+/Gardens/#")
    assert matches(GARDENS)
    assert matches(["/Sevilla/Gardens"])
    assert not matches(["/Madrid/Parks/Gardens"])


@pytest.mark.parametrize("scopes, expected", [
    (["/Anything"], True),
    (GARDENS, True),
    ([], False),
    (None, False),
])
def test_root_hash_matches_any_entity_with_a_scope(scopes: list[str] | None,
                                                   expected: bool) -> None:
    assert parse_scope_q("/#")(scopes) is expected


def test_any_of_several_scopes_may_match() -> None:
    scopes = ["/Stockholm/Kungsholmen", "/Company/Parks"]
    assert parse_scope_q("/Company/#")(scopes)
    assert parse_scope_q("/Stockholm/Kungsholmen")(scopes)
    assert not parse_scope_q("/Stockholm/Södermalm")(scopes)


def test_entity_without_scope_matches_nothing() -> None:
    assert not parse_scope_q("/Madrid/#")(None)
    assert not parse_scope_q("/Madrid/#")([])


@pytest.mark.parametrize("query, expected", [
    ("/Stockholm/#;/Company/Parks", True),
    ("/Stockholm/#;/Company/Roads", False),
    ("/Oslo,/Company/#", True),
    ("/Oslo|/Company/#", True),
    ("/Oslo,/Bergen", False),
    # ";" binds tighter: /Oslo , (/Bergen ; /Company/Parks).
    ("/Oslo,/Bergen;/Company/Parks", False),
    ("/Company/Parks,/Bergen;/Oslo", True),
    ("(/Oslo,/Stockholm/+);/Company/Parks", True),
    ("(/Oslo,/Stockholm);/Company/Parks", False),
    ("((/Company/Parks))", True),
])
def test_logical_operators_and_grouping(query: str, expected: bool) -> None:
    scopes = ["/Stockholm/Kungsholmen", "/Company/Parks"]
    assert parse_scope_q(query)(scopes) is expected


def test_levels_are_literal_not_regex() -> None:
    matches = parse_scope_q("/a.b/c*")
    assert matches(["/a.b/c*"])
    assert not matches(["/axb/cc"])


def test_a_single_scope_string_is_accepted() -> None:
    assert parse_scope_q("/Madrid/#")("/Madrid/Gardens")  # type: ignore[arg-type]


def test_non_string_scopes_are_ignored() -> None:
    matches = parse_scope_q("/#")
    assert not matches([1, None, {}])  # type: ignore[list-item]
    assert not matches({"/Madrid": 1})  # type: ignore[arg-type]
    assert parse_scope_q("/Madrid")([1, "/Madrid"])  # type: ignore[list-item]


@pytest.mark.parametrize("query", [
    "",
    "Madrid",
    "/",
    "//Madrid",
    "/Madrid/",
    "/Madrid//Gardens",
    "/#/Madrid",
    "/Madrid/#/Gardens",
    "/Madrid#",
    "/Mad+rid",
    "/Madrid/++",
    "/Madrid/#x",
    "/Madrid Gardens",
    "/Madrid;",
    ",/Madrid",
    "/Madrid,,/Oslo",
    "(/Madrid",
    "/Madrid)",
    "()",
    "/Madrid(/Oslo)",
    "#",
    "+",
])
def test_malformed_scope_queries_are_bad_request_data(query: str) -> None:
    with pytest.raises(BadRequestData):
        parse_scope_q(query)


def test_error_detail_names_the_position() -> None:
    with pytest.raises(BadRequestData, match="position 8"):
        parse_scope_q("/Madrid//Gardens")


def test_nesting_depth_is_limited() -> None:
    parse_scope_q("(" * MAX_DEPTH + "/a" + ")" * MAX_DEPTH)
    with pytest.raises(BadRequestData, match="nested"):
        parse_scope_q("(" * (MAX_DEPTH + 1) + "/a" + ")" * (MAX_DEPTH + 1))


SCOPES = st.lists(st.sampled_from(["a", "b", "Madrid"]), min_size=1, max_size=4).map(
    lambda levels: "/" + "/".join(levels))


@given(st.text())
def test_parse_scope_q_accepts_or_rejects_any_text(text: str) -> None:
    try:
        matcher = parse_scope_q(text)
    except BadRequestData:
        return
    assert callable(matcher)


@given(st.text(alphabet="/ab#+;,|()", max_size=30),
       st.none() | st.lists(SCOPES | st.text(max_size=5), max_size=4))
def test_grammar_like_text_parses_or_fails_cleanly(text: str, scopes: list[str] | None) -> None:
    try:
        matcher = parse_scope_q(text)
    except BadRequestData:
        return
    assert matcher(scopes) in (True, False)


@given(SCOPES, st.lists(SCOPES, max_size=4))
def test_hash_is_exact_or_below(query: str, scopes: list[str]) -> None:
    below = parse_scope_q(query + "/#")(scopes)
    assert below == any(s == query or s.startswith(query + "/") for s in scopes)
