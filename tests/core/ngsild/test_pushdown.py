"""Which parts of q a store may answer from its value index."""

from __future__ import annotations

from smartcity.core.ngsild.pushdown import ValueFilter, value_filters
from smartcity.core.ngsild.query_language import parse_q

EX = "https://example.org/"


def filters(q: str) -> tuple[ValueFilter, ...]:
    return value_filters(parse_q(q), lambda name: EX + name)


def test_equality_with_a_number_or_a_string_is_handed_down() -> None:
    assert filters('level==5;status=="ok"') == (
        ValueFilter(EX + "level", "in", "num", (5,)),
        ValueFilter(EX + "status", "in", "str", ("ok",)))


def test_comparisons_ranges_and_lists_are_handed_down() -> None:
    assert filters("level>=5") == (ValueFilter(EX + "level", ">=", "num", (5,)),)
    assert filters("level==1..3") == (ValueFilter(EX + "level", "between", "num", (1, 3)),)
    assert filters('status=="a","b"') == (ValueFilter(EX + "status", "in", "str", ("a", "b")),)


def test_only_conjuncts_of_the_top_level_are_handed_down() -> None:
    assert filters("level==5|status==ok") == ()
    assert filters("(level==5|x==1);status==ok") == (
        ValueFilter(EX + "status", "in", "str", ("ok",)),)


def test_paths_negations_patterns_dates_and_linked_terms_stay_with_the_predicate() -> None:
    for q in ("level.observedAt>2020-01-01T00:00:00Z", "address[city]==Kista", "level!=5",
              "name~=Sto", "installed>2020-01-01", "level", "flag==true",
              'carries{name}=="lamp"'):
        assert filters(q) == (), q
