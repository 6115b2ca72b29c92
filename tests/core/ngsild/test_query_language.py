"""Specification tests for the NGSI-LD query language (``q``, ETSI GS CIM 009 clause 4.9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.query_language import (
    LINKED,
    MAX_DEPTH,
    MAX_PATTERN_LENGTH,
    And,
    AttrPath,
    Kind,
    Op,
    Or,
    Pattern,
    QExpr,
    Range,
    Scalar,
    Term,
    ValueList,
    compile_q,
    linked_depth,
    parse_q,
    without_linked,
)

EX = "https://example.org/"


def expand(name: str) -> str:
    return name if ":" in name else EX + name


def prop(value: Any, **members: Any) -> dict[str, Any]:
    """A Property instance; sub-attributes are passed under their expanded names."""
    return {"type": "Property", "value": value, **members}


def rel(target: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": target, **members}


def entity(**attrs: Any) -> dict[str, Any]:
    """An internal entity; each keyword is a short attribute name, its value an instance
    or a list of instances."""
    return {
        "id": "urn:ngsi-ld:Thing:1",
        "type": [EX + "Thing"],
        "createdAt": "2024-01-01T00:00:00Z",
        "modifiedAt": "2024-01-01T00:00:00Z",
        "attrs": {expand(name): v if isinstance(v, list) else [v] for name, v in attrs.items()},
    }


def matches(q: str, ent: dict[str, Any]) -> bool:
    return compile_q(parse_q(q), expand)(ent)


def term(name: str, op: Op | None = None, value: Any = None) -> Term:
    return Term(AttrPath((name,)), op, value)


# ---------------------------------------------------------------------------------------
# Parsing


def test_parse_simple_comparison() -> None:
    assert parse_q("temperature>20") == term("temperature", Op.GT, Scalar(Kind.NUMBER, 20))


def test_term_without_operator_is_existence() -> None:
    assert parse_q("isMonitoredBy") == term("isMonitoredBy")


@pytest.mark.parametrize("op", list(Op))
def test_every_operator_parses(op: Op) -> None:
    value = '"x"' if op in (Op.MATCH, Op.NOT_MATCH) else "5"
    assert parse_q(f"a{op.value}{value}").op is op  # type: ignore[attr-defined]


def test_or_binds_weaker_than_and() -> None:
    a, b, c = term("a"), term("b"), term("c")
    assert parse_q("a|b;c") == Or((a, And((b, c))))
    assert parse_q("a;b|c") == Or((And((a, b)), c))


def test_parentheses_override_precedence() -> None:
    a, b, c = term("a"), term("b"), term("c")
    assert parse_q("(a|b);c") == And((Or((a, b)), c))
    assert parse_q("((a))") == a


def test_chains_are_flat() -> None:
    assert parse_q("a;b;c") == And((term("a"), term("b"), term("c")))
    assert parse_q("a|b|c") == Or((term("a"), term("b"), term("c")))


def test_ast_is_immutable() -> None:
    expr = parse_q("a==1")
    with pytest.raises(AttributeError):
        expr.op = Op.NE  # type: ignore[misc]
    assert hash(expr) == hash(parse_q("a==1"))


def test_attribute_names_are_raw_first_segments() -> None:
    expr = parse_q('(speed>50|rpm>3000);brand.name=="M";ex:x[k]==1;https://e.org/a.b==2')
    assert expr.attribute_names() == {"speed", "rpm", "brand", "ex:x", "https://e.org/a.b"}


def test_dotted_path_and_instance_member() -> None:
    assert parse_q("a.b.c==1").path == AttrPath(("a", "b", "c"))  # type: ignore[attr-defined]
    parsed = parse_q("temperature.observedAt>=2020-01-01T00:00:00Z")
    assert parsed.path == AttrPath(("temperature",), "observedAt")  # type: ignore[attr-defined]
    # Only a last segment after a dot is a member; alone it is an attribute name.
    assert parse_q("observedAt").path == AttrPath(("observedAt",))  # type: ignore[attr-defined]


@pytest.mark.parametrize("member", ["observedAt", "modifiedAt", "createdAt", "unitCode",
                                    "datasetId"])
def test_each_instance_member(member: str) -> None:
    assert parse_q(f"a.b.{member}").path == AttrPath(("a", "b"), member)  # type: ignore


@pytest.mark.parametrize("text, keys", [
    ("address[city]", ("city",)),
    ("a[k1][k2]", ("k1", "k2")),
    ("sensor.rawdata[airquality.particulate]", ("airquality", "particulate")),
])
def test_bracket_paths(text: str, keys: tuple[str, ...]) -> None:
    path = parse_q(text + "==1").path  # type: ignore[attr-defined]
    assert path.keys == keys
    assert path.names == tuple(text.split("[")[0].split("."))


def test_full_iri_attribute_is_not_split() -> None:
    assert parse_q("https://example.org/v1.2/temp>=3").path == AttrPath(  # type: ignore
        ("https://example.org/v1.2/temp",))
    assert parse_q("http://e.org/a.b[k]").path == AttrPath(("http://e.org/a.b",), None, ("k",))


def test_compact_iri_attribute() -> None:
    assert parse_q("ex:temp.ex:sub==1").path == AttrPath(("ex:temp", "ex:sub"))  # type: ignore


@pytest.mark.parametrize("text, kind, value", [
    ("42", Kind.NUMBER, 42),
    ("-7", Kind.NUMBER, -7),
    ("2.5", Kind.NUMBER, 2.5),
    ("-10.2E-3", Kind.NUMBER, -0.0102),
    ('"hello"', Kind.STRING, "hello"),
    ('"say \\"hi\\" \\\\o/"', Kind.STRING, 'say "hi" \\o/'),
    ('"a;b|c)"', Kind.STRING, "a;b|c)"),
    ('""', Kind.STRING, ""),
    ("true", Kind.BOOLEAN, True),
    ("false", Kind.BOOLEAN, False),
    ("2018-12-04", Kind.DATE, date(2018, 12, 4)),
    ("2018-12-04T12:00:00Z", Kind.DATETIME, datetime(2018, 12, 4, 12, tzinfo=UTC)),
    ("2018-12-04T12:00:00.250Z", Kind.DATETIME,
     datetime(2018, 12, 4, 12, 0, 0, 250000, tzinfo=UTC)),
    ("2018-12-04T14:00:00+02:00", Kind.DATETIME, datetime(2018, 12, 4, 12, tzinfo=UTC)),
    ("12:30:00Z", Kind.TIME, time(12, 30, tzinfo=UTC)),
    ("urn:ngsi-ld:Building:1", Kind.STRING, "urn:ngsi-ld:Building:1"),
    ("on", Kind.STRING, "on"),
])
def test_value_kinds(text: str, kind: Kind, value: Any) -> None:
    parsed = parse_q("a==" + text).value  # type: ignore[attr-defined]
    assert parsed == Scalar(kind, value)


def test_range_and_list_values() -> None:
    assert parse_q("a==1..5").value == Range(  # type: ignore[attr-defined]
        Scalar(Kind.NUMBER, 1), Scalar(Kind.NUMBER, 5))
    assert parse_q('a=="a".."m"').value == Range(  # type: ignore[attr-defined]
        Scalar(Kind.STRING, "a"), Scalar(Kind.STRING, "m"))
    assert parse_q('a==1,"two",true').value == ValueList((  # type: ignore[attr-defined]
        Scalar(Kind.NUMBER, 1), Scalar(Kind.STRING, "two"), Scalar(Kind.BOOLEAN, True)))


@pytest.mark.parametrize("text, pattern", [
    ("a~=^foo", "^foo"),
    ("a~=^(foo|bar)$", "^(foo|bar)$"),
    ("a~=[;|)]x", "[;|)]x"),
    ("a~=[]x]", "[]x]"),
    ("a~=\\)", "\\)"),
    ('a~="b|c"', "b|c"),
    ("a~=(?i)abc", "(?i)abc"),
])
def test_unquoted_regex_runs_to_the_logical_operator(text: str, pattern: str) -> None:
    assert parse_q(text).value == Pattern(pattern)  # type: ignore[attr-defined]


def test_regex_stops_at_logical_operators_outside_groups() -> None:
    assert parse_q("(a~=x|y;b)") == Or((term("a", Op.MATCH, Pattern("x")),
                                        And((term("y"), term("b")))))


@pytest.mark.parametrize("text", [
    "",
    "a=1",
    "a==",
    "a===1",
    "a=>1",
    "a=<1",
    "(a",
    "a)",
    "()",
    "a;",
    "|a",
    "a;;b",
    "a b",
    "a== 1",
    "a==b c",
    ".a",
    "a.",
    "a..b",
    "a[",
    "a[]",
    "a[k",
    "a[k]x",
    "a[k.]",
    'a=="unterminated',
    'a=="x"y',
    "a==1,",
    "a==1..",
    "a==..1",
    "a==1..x",
    "a==2018-01-01..5",
    "a==true..false",
    "a>1..5",
    "a<1,2",
    "a>true",
    "a<=false",
    "a~=",
    "a~=(",
    "a~=[",
    "a!~=*x",
    "a~=x{99999999999}",
    "a==2018-13-45",
    "a==2018-02-30T00:00:00Z",
    "a==25:00:00",
    "a==x(y",
    "a.observedAt[k]",
    "a==" + "9" * 5000,
])
def test_malformed_queries_are_bad_request_data(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text)


def test_error_detail_names_the_position() -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_q("temperature>20;(speed=5)")
    assert "position 21" in caught.value.detail
    assert "'=='" in caught.value.detail
    with pytest.raises(BadRequestData, match="at the end"):
        parse_q("(a")


def test_regex_length_is_limited() -> None:
    parse_q("a~=" + "x" * MAX_PATTERN_LENGTH)
    with pytest.raises(BadRequestData, match="longer than"):
        parse_q("a~=" + "x" * (MAX_PATTERN_LENGTH + 1))


def test_nesting_depth_is_limited() -> None:
    parse_q("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    with pytest.raises(BadRequestData, match="nested"):
        parse_q("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(BadRequestData):
        parse_q("(" * 100_000)


def test_invalid_regex_in_hand_built_ast_fails_at_compile_time() -> None:
    with pytest.raises(BadRequestData):
        compile_q(term("a", Op.MATCH, Pattern("(")), expand)


# ---------------------------------------------------------------------------------------
# Evaluation: operators and value kinds

WEATHER = entity(
    temperature=prop(21.5, observedAt="2020-06-01T12:00:00Z", unitCode="CEL"),
    count=prop(3),
    name=prop("Kungsholmen"),
    open=prop(True),
    numericText=prop("5"),
)


@pytest.mark.parametrize("q, expected", [
    ("temperature==21.5", True),
    ("temperature==21", False),
    ("count==3", True),
    ("count==3.0", True),
    ("temperature!=21.5", False),
    ("temperature!=20", True),
    ("temperature>21", True),
    ("temperature>21.5", False),
    ("temperature>=21.5", True),
    ("temperature<22", True),
    ("temperature<21.5", False),
    ("temperature<=21.5", True),
    ("temperature>-100", True),
    ("temperature<2.15E1", False),
])
def test_number_operators(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


@pytest.mark.parametrize("q, expected", [
    ('name=="Kungsholmen"', True),
    ("name==Kungsholmen", True),
    ('name!="Södermalm"', True),
    ('name>"A"', True),
    ('name<"A"', False),
    ('name>="Kungsholmen"', True),
    ("name<=Z", True),
    ("name~=^Kung", True),
    ("name~=holm", True),
    ("name~=^holm", False),
    ("name~=(?i)^kung", True),
    ("name!~=^Kung", False),
    ("name!~=^Sö", True),
])
def test_string_operators(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


@pytest.mark.parametrize("q, expected", [
    ("open==true", True),
    ("open==false", False),
    ("open!=false", True),
    ('open=="true"', False),
    ("count==true", False),
])
def test_booleans_compare_to_json_booleans(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


@pytest.mark.parametrize("q, expected", [
    ("numericText==5", False),
    ('count=="3"', False),
    ("numericText!=5", True),
    ("numericText>1", False),
    ("numericText<1", False),
    ('count>"1"', False),
    ("name>2020-01-01", False),
    ("count>2020-01-01T00:00:00Z", False),
    ("count~=3", False),
    ("count!~=3", True),
])
def test_comparisons_across_types_are_false_not_errors(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


@pytest.mark.parametrize("q", ["missing==1", "missing!=1", "missing>1", "missing~=x",
                               "missing!~=x", "missing==1..2", "missing!=1,2", "missing"])
def test_missing_attribute_never_matches(q: str) -> None:
    assert matches(q, WEATHER) is False


def test_existence() -> None:
    assert matches("temperature", WEATHER)
    assert matches("temperature;name", WEATHER)
    assert not matches("temperature;missing", WEATHER)
    assert matches("temperature.unitCode", WEATHER)
    assert not matches("count.unitCode", WEATHER)


def test_negated_existence_holds_for_an_absent_attribute() -> None:
    assert matches("!missing;temperature", WEATHER)
    assert not matches("!temperature", WEATHER)
    assert matches("!temperature|name", WEATHER)


@pytest.mark.parametrize("q", ["!", "!temperature==1", "!rel{name}"])
def test_negation_applies_to_a_plain_attribute_path_only(q: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(q)


def test_attribute_without_value_exists_but_compares_false() -> None:
    ent = entity(a={"type": "Property"})
    assert matches("a", ent)
    assert not matches("a==1", ent)
    assert not matches("a!=1", ent)


def test_null_value_is_unequal_to_everything() -> None:
    ent = entity(a=prop(None))
    assert not matches("a==1", ent)
    assert matches("a!=1", ent)
    assert not matches("a>1", ent)


# ---------------------------------------------------------------------------------------
# Dates, datetimes and times


EVENT = entity(
    start=prop("2018-12-04T12:00:00Z"),
    day=prop("2018-12-04"),
    typed=prop({"@type": "DateTime", "@value": "2018-12-04T12:00:00Z"}),
    opens=prop("08:30:00Z"),
    label=prop("not a date"),
)


@pytest.mark.parametrize("q, expected", [
    ("start==2018-12-04T12:00:00Z", True),
    ("start==2018-12-04T13:00:00+01:00", True),
    ("start==2018-12-04T12:00:00.000Z", True),
    ("start>2018-12-04T11:59:59.999Z", True),
    ("start<2018-12-04T12:00:00Z", False),
    ("start<=2018-12-04T12:00:00Z", True),
    ("start!=2018-12-04T12:00:01Z", True),
    ('start=="2018-12-04T12:00:00Z"', True),
    ('start=="2018-12-04T13:00:00+01:00"', False),
    ("start==2018-12-04", True),
    ("start>2018-12-03", True),
    ("start>2018-12-04", False),
    ("day==2018-12-04", True),
    ("day<2019-01-01", True),
    ("day>=2018-12-04T00:00:00Z", True),
    ("day>2018-12-04T00:00:00Z", False),
    ("typed==2018-12-04T12:00:00Z", True),
    ("typed>2018-01-01", True),
    ("opens==08:30:00Z", True),
    ("opens<09:00:00Z", True),
    ("opens>09:00:00+01:00", True),
    ("label>2000-01-01", False),
    ("label!=2000-01-01", True),
])
def test_dates_and_datetimes(q: str, expected: bool) -> None:
    assert matches(q, EVENT) is expected


def test_observed_at_member() -> None:
    assert matches("temperature.observedAt>=2020-01-01T00:00:00Z", WEATHER)
    assert not matches("temperature.observedAt<2020-01-01T00:00:00Z", WEATHER)
    assert matches("temperature.observedAt==2020-06-01", WEATHER)
    assert not matches("count.observedAt>=2020-01-01T00:00:00Z", WEATHER)


def test_system_and_unit_members() -> None:
    ent = entity(t=prop(1, createdAt="2024-02-01T00:00:00Z", modifiedAt="2024-03-01T00:00:00Z",
                        unitCode="CEL"))
    assert matches("t.createdAt<2024-02-02T00:00:00Z", ent)
    assert matches("t.modifiedAt==2024-03-01T00:00:00Z", ent)
    assert matches('t.unitCode=="CEL"', ent)
    assert matches("t.unitCode==CEL,FAH", ent)
    assert not matches("t.unitCode!=CEL", ent)


# ---------------------------------------------------------------------------------------
# Ranges and value lists


@pytest.mark.parametrize("q, expected", [
    ("temperature==20..22", True),
    ("temperature==21.5..21.5", True),
    ("temperature==22..30", False),
    ("temperature!=20..22", False),
    ("temperature!=22..30", True),
    ("name==A..M", True),
    ('name=="L".."Z"', False),
    ("name==1..5", False),
    ("temperature==a..z", False),
])
def test_ranges_are_inclusive(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


def test_date_and_datetime_ranges() -> None:
    assert matches("start==2018-12-01..2018-12-31", EVENT)
    assert not matches("start==2019-01-01..2019-12-31", EVENT)
    assert matches("start==2018-12-04T11:00:00Z..2018-12-04T12:00:00Z", EVENT)
    assert matches("day==2018-12-04..2018-12-04", EVENT)
    assert matches("opens==08:00:00Z..09:00:00Z", EVENT)


def test_range_on_nested_property() -> None:
    ent = entity(sensor=prop(40, **{EX + "calibration": prop(0.97)}))
    assert matches("sensor.calibration==0.9..1.1", ent)
    assert not matches("sensor.calibration==1..2", ent)


@pytest.mark.parametrize("q, expected", [
    ("count==1,2,3", True),
    ("count==1,2", False),
    ("count!=1,2", True),
    ("count!=1,2,3", False),
    ('name=="Södermalm","Kungsholmen"', True),
    ("name==Södermalm,Kungsholmen", True),
    ('count=="3",4', False),
    ('count=="x",3', True),
    ("open==false,true", True),
    ("temperature.observedAt==2019-01-01T00:00:00Z,2020-06-01T12:00:00Z", True),
])
def test_value_lists(q: str, expected: bool) -> None:
    assert matches(q, WEATHER) is expected


# ---------------------------------------------------------------------------------------
# Paths: sub-attributes and trailing paths into values


def test_sub_attribute_paths() -> None:
    ent = entity(temperature=prop(20, **{
        EX + "accuracy": prop(0.5, **{EX + "method": prop("calibrated")}),
        "ex:source": rel("urn:ngsi-ld:Sensor:7"),
    }))
    assert matches("temperature.accuracy<1", ent)
    assert matches('temperature.accuracy.method=="calibrated"', ent)
    assert matches("temperature.ex:source==urn:ngsi-ld:Sensor:7", ent)
    assert matches("temperature.accuracy", ent)
    assert not matches("temperature.precision", ent)
    assert not matches("temperature.accuracy.missing", ent)
    # The sub-attribute's own value counts, not the parent's.
    assert not matches("temperature.accuracy==20", ent)


def test_sub_attribute_member() -> None:
    ent = entity(t=prop(1, **{EX + "sub": prop(2, observedAt="2021-01-01T00:00:00Z")}))
    assert matches("t.sub.observedAt>2020-12-31T00:00:00Z", ent)


def test_trailing_path_into_object_values() -> None:
    ent = entity(
        address=prop({"city": "Berlin", "street": "Ulrich Strasse", "geo": {"zip": 10115}}),
        sensor=prop(40, **{EX + "rawdata": prop({"airquality": {"particulate": 40,
                                                               "PM20": 85}})}),
    )
    assert matches('address[city]=="Berlin"', ent)
    assert not matches('address[city]=="Paris"', ent)
    assert not matches('address[postcode]=="Berlin"', ent)
    assert matches("address[geo][zip]==10115", ent)
    assert matches("address[geo.zip]>10000", ent)
    assert matches("sensor.rawdata[airquality.particulate]==40", ent)
    assert matches("sensor.rawdata[airquality][PM20]==80..90", ent)
    assert not matches("sensor.rawdata[airquality.missing]==40", ent)
    assert matches("address[city]", ent)
    assert not matches("address[postcode]", ent)
    assert not matches("address[city][deeper]", ent)
    assert not matches("address[postcode]!=1", ent)


def test_keys_in_brackets_are_not_expanded() -> None:
    ent = entity(a=prop({"ex:k": 1, EX + "k": 2}))
    assert matches("a[ex:k]==1", ent)
    assert not matches("a[k]", ent)


def test_trailing_path_fans_out_over_arrays() -> None:
    ent = entity(stops=prop([{"name": "A", "lines": [1, 2]}, {"name": "B", "lines": [3]},
                             "junk"]))
    assert matches("stops[name]==B", ent)
    assert matches("stops[lines]==3", ent)
    assert not matches("stops[name]!=A", ent)
    assert not matches("stops[nope]", ent)


def test_json_property() -> None:
    ent = entity(tickets={"type": "JsonProperty",
                          "json": {"id": "85a6cc52", "value": "Overstay 60 minutes"}},
                 raw={"type": "JsonProperty", "json": [1, 2, 3]})
    assert matches('tickets[value]=="Overstay 60 minutes"', ent)
    assert matches("tickets[id]~=^85", ent)
    assert matches("raw==2", ent)
    assert matches("tickets", ent)


def test_full_iri_and_compact_iri_attributes() -> None:
    ent = {"attrs": {"https://example.org/v1.2/temp": [prop(5)],
                     "ex:speed": [prop(80)]}}
    assert matches("https://example.org/v1.2/temp>=3", ent)
    assert matches("http://example.org/v1.2/temp>=3", ent) is False
    assert matches("ex:speed==70..90", ent)


# ---------------------------------------------------------------------------------------
# Multiple instances, arrays and attribute kinds


def test_any_dataset_instance_may_match() -> None:
    ent = entity(power=[prop("on"), prop("off", datasetId="urn:ngsi-ld:Dataset:b")])
    assert matches("power==on", ent)
    assert matches("power==off", ent)
    assert matches("power!=on", ent)  # the 'off' instance differs
    assert not matches("power==standby", ent)
    assert matches("power.datasetId==urn:ngsi-ld:Dataset:b", ent)
    assert not matches("power.datasetId==urn:ngsi-ld:Dataset:c", ent)
    assert matches("power.datasetId", ent)
    assert not matches("name.datasetId", ent)


def test_array_values_match_on_any_element() -> None:
    ent = entity(tags=prop(["red", "green"]), readings=prop([1, 5, 9]), empty=prop([]))
    assert matches("tags==green", ent)
    assert matches("tags==blue,red", ent)
    assert not matches("tags!=green", ent)
    assert matches("tags!=blue", ent)
    assert not matches("tags!=blue,red", ent)
    assert matches("tags~=^gr", ent)
    assert not matches("tags!~=^gr", ent)
    assert matches("readings==4..6", ent)
    assert matches("readings>8", ent)
    assert not matches("readings>9", ent)
    assert matches("empty", ent)
    assert not matches("empty==1", ent)
    assert matches("empty!=1", ent)


def test_relationships_compare_their_object() -> None:
    ent = entity(isParked=rel("urn:ngsi-ld:OffStreetParking:Downtown1"),
                 feeds=rel(["urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Lamp:2"]))
    assert matches('isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"', ent)
    assert matches("isParked==urn:ngsi-ld:OffStreetParking:Downtown1", ent)
    assert matches("isParked~=Downtown", ent)
    assert matches("feeds==urn:ngsi-ld:Lamp:2", ent)
    assert not matches("feeds!=urn:ngsi-ld:Lamp:2", ent)
    assert matches("isParked", ent)


def test_list_property_and_list_relationship() -> None:
    ent = entity(
        sizes={"type": "ListProperty", "valueList": [38, 40, 42]},
        route={"type": "ListRelationship",
               "objectList": [{"object": "urn:ngsi-ld:Stop:1"}, {"object": "urn:ngsi-ld:Stop:2"}]},
        plain={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Stop:3"]},
    )
    assert matches("sizes==40", ent)
    assert matches("sizes==41..50", ent)
    assert not matches("sizes!=42", ent)
    assert matches("route==urn:ngsi-ld:Stop:2", ent)
    assert not matches("route==urn:ngsi-ld:Stop:3", ent)
    assert matches("plain==urn:ngsi-ld:Stop:3", ent)


def test_language_property_matches_any_language() -> None:
    ent = entity(street={"type": "LanguageProperty",
                         "languageMap": {"en": "Grand Place", "fr": ["Grand-Place", "Place"],
                                         "nl": "Grote Markt"}})
    assert matches('street=="Grote Markt"', ent)
    assert matches("street==Place", ent)
    assert not matches('street=="Big Square"', ent)
    assert matches("street~=^Grand", ent)
    assert matches('street!="Grand Place"', ent) is False
    assert matches('street[nl]=="Grote Markt"', ent)
    assert not matches('street[en]=="Grote Markt"', ent)
    assert matches("street[fr]==Place", ent)
    assert matches("street[en]", ent)
    assert not matches("street[de]", ent)


def matches_expanding(q: str, ent: dict[str, Any], *names: str) -> bool:
    return compile_q(parse_q(q), expand, frozenset(names))(ent)


def test_vocab_short_term_matches_only_with_expand_values() -> None:
    ent = entity(category={"type": "VocabProperty", "vocab": EX + "residential"})
    assert not matches("category==residential", ent)
    assert matches('category=="https://example.org/residential"', ent)
    assert matches_expanding("category==residential", ent, "category")


def test_vocab_property_matches_raw_and_expanded_terms() -> None:
    ent = entity(category={"type": "VocabProperty", "vocab": EX + "residential"},
                 uses={"type": "VocabProperty", "vocab": [EX + "shop", "urn:x:office"]})

    def matches(q: str, ent: dict[str, Any]) -> bool:
        return matches_expanding(q, ent, "category", "uses")

    assert matches("category==residential", ent)
    assert matches('category=="https://example.org/residential"', ent)
    assert not matches("category==commercial", ent)
    assert not matches("category!=residential", ent)
    assert matches("category!=commercial", ent)
    assert matches("uses==shop", ent)
    assert matches("uses==urn:x:office", ent)
    assert matches("uses==commercial,office,shop", ent)
    # Only vocab values are compared expanded.
    assert not matches("name==Kungsholmen", entity(name=prop(EX + "Kungsholmen")))


def test_ordering_operators_never_match_a_relationship() -> None:
    ent = entity(owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:b"})
    assert not matches('owner>"urn:ngsi-ld:Person:a"', ent)
    assert matches('owner=="urn:ngsi-ld:Person:b"', ent)


def test_star_key_reaches_every_language() -> None:
    ent = entity(color={"type": "LanguageProperty", "languageMap": {"en": "red", "fr": "rouge"}})
    assert matches('color[*]=="rouge"', ent)
    assert not matches('color[*]!="red"', ent)


# ---------------------------------------------------------------------------------------
# Logical operators


CAR = entity(speed=prop(60), rpm=prop(2500), brandName=prop("Mercedes"))


@pytest.mark.parametrize("q, expected", [
    ("speed>50;rpm>3000", False),
    ("speed>50|rpm>3000", True),
    ('(speed>50|rpm>3000);brandName=="Mercedes"', True),
    ('(speed>70|rpm>3000);brandName=="Mercedes"', False),
    # a | (b ; c): the OR holds through its left side alone.
    ('speed>50|rpm>3000;brandName=="Audi"', True),
    # (a | b) ; c: the grouping makes the AND fail.
    ('(speed>50|rpm>3000);brandName=="Audi"', False),
    ('brandName=="Audi";speed>50|rpm<3000', True),
    ('brandName=="Audi";(speed>50|rpm<3000)', False),
    ("((speed==60))", True),
    ("speed==1|speed==2|speed==60", True),
    ("speed;rpm;brandName;speed>0", True),
])
def test_logical_operators(q: str, expected: bool) -> None:
    assert matches(q, CAR) is expected


# ---------------------------------------------------------------------------------------
# Robustness


@pytest.mark.parametrize("ent", [
    {},
    {"attrs": None},
    {"attrs": []},
    {"attrs": {EX + "a": None}},
    {"attrs": {EX + "a": 5}},
    {"attrs": {EX + "a": [None, 1, "x", []]}},
    {"attrs": {EX + "a": [{"type": ["Property"], "value": 1}]}},
    {"attrs": {EX + "a": [{"type": {"x": 1}, "value": 1}]}},
    {"attrs": {EX + "a": [{"type": "LanguageProperty", "languageMap": [1, {}]}]}},
    {"attrs": {EX + "a": [{"type": "ListRelationship", "objectList": {"object": 1}}]}},
    {"attrs": {EX + "a": [{"value": {"k": [{"k": {}}]}, EX + "b": [1, {"value": []}]}]}},
    {"attrs": {EX + "a": [{"value": "0001-01-01T00:00:00+01:00", "observedAt": 7}]}},
])
@pytest.mark.parametrize("q", [
    "a", "a==1", "a!=x", "a>2018-01-01", "a<=00:00:00Z", "a~=x", "a!~=x", "a==1..2",
    "a[k]", "a[k][k]==1", "a.b", "a.b==1", "a.observedAt>2020-01-01T00:00:00Z",
    "a==2018-01-01T00:00:00Z,x,true",
])
def test_malformed_entities_never_raise(ent: dict[str, Any], q: str) -> None:
    assert matches(q, ent) in (True, False)


def test_expand_is_applied_once_per_name_at_compile_time() -> None:
    calls: list[str] = []

    def counting(name: str) -> str:
        calls.append(name)
        return expand(name)

    predicate = compile_q(parse_q("a.b==1;c"), counting)
    assert sorted(calls) == ["a", "b", "c"]
    for _ in range(3):
        predicate(entity(a=prop(1, **{EX + "b": prop(1)}), c=prop(0)))
    assert len(calls) == 3


# ---------------------------------------------------------------------------------------
# Properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.sampled_from(["2018-12-04T12:00:00Z", "2018-12-04", "12:00:00Z",
                                              "urn:ngsi-ld:X:1", EX + "a"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["k", "j", "@value", "object"]) | st.text(max_size=3), inner,
        max_size=4),
    max_leaves=12,
)
NAMES = ["a", "b", "ex:c", "https://example.org/d"]
TYPES = ["Property", "Relationship", "LanguageProperty", "VocabProperty", "ListProperty",
         "ListRelationship", "JsonProperty", "GeoProperty", "Other"]


def instances(depth: int) -> st.SearchStrategy[Any]:
    members = {m: JSON for m in ("value", "object", "languageMap", "vocab", "valueList",
                                 "objectList", "json", "observedAt", "unitCode", "datasetId")}
    if depth:
        members |= {expand(n): instances(depth - 1) for n in NAMES}
    return st.fixed_dictionaries({}, optional={"type": st.sampled_from(TYPES) | JSON,
                                               **members}) | JSON


ENTITIES = st.fixed_dictionaries({
    "attrs": st.dictionaries(st.sampled_from([expand(n) for n in NAMES]),
                             st.lists(instances(2), max_size=3) | JSON, max_size=4) | JSON,
})

SCALARS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(lambda s: "e" not in s),
    st.text(max_size=6).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["true", "false", "2018-12-04", "2018-12-04T12:00:00Z", "12:00:00Z",
                     "urn:ngsi-ld:X:1", "on"]),
)
ORDERABLE = st.sampled_from(["1", "-2.5", '"m"', "2018-12-04", "2018-12-04T12:00:00Z",
                             "12:00:00Z", "on"])
RANGES = st.sampled_from(["1..5", '"a".."z"', "2018-01-01..2019-01-01",
                          "2018-01-01T00:00:00Z..2019-01-01T00:00:00Z", "10:00:00Z..12:00:00Z"])


@st.composite
def terms(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(NAMES))
    if not path.startswith("http"):
        path += draw(st.sampled_from(["", ".b", ".a.ex:c", ".observedAt", ".unitCode",
                                      ".datasetId"]))
        if "." not in path or path.rsplit(".", 1)[1] not in ("observedAt", "unitCode",
                                                             "datasetId"):
            path += draw(st.sampled_from(["", "[k]", "[k.j]", "[k][@value]"]))
    kind = draw(st.sampled_from(["exists", "eq", "order", "range", "list", "regex"]))
    if kind == "exists":
        return path
    if kind == "eq":
        return path + draw(st.sampled_from(["==", "!="])) + draw(SCALARS)
    if kind == "order":
        return path + draw(st.sampled_from([">", ">=", "<", "<="])) + draw(ORDERABLE)
    if kind == "range":
        return path + draw(st.sampled_from(["==", "!="])) + draw(RANGES)
    if kind == "list":
        return path + draw(st.sampled_from(["==", "!="])) + ",".join(
            draw(st.lists(SCALARS, min_size=2, max_size=4)))
    return path + draw(st.sampled_from(["~=", "!~="])) + draw(
        st.sampled_from(["^a", "(?i)x|y", "[0-9]+", '"\\d"', "(a|b)"]))


QUERIES = st.recursive(
    terms(),
    lambda inner: st.tuples(inner, st.sampled_from([";", "|"]), inner).map(
        lambda t: "".join(t)) | inner.map(lambda q: f"({q})"),
    max_leaves=6,
)


@given(st.text())
def test_parse_q_accepts_or_rejects_any_text(text: str) -> None:
    try:
        expr = parse_q(text)
    except BadRequestData:
        return
    assert isinstance(expr, QExpr)


@given(st.text(alphabet='ab:/.[]=!<>~;|(),"\\-0123456789TZe ', max_size=40))
def test_parse_q_accepts_or_rejects_grammar_like_text(text: str) -> None:
    try:
        expr = parse_q(text)
    except BadRequestData:
        return
    assert isinstance(expr, QExpr)
    compile_q(expr, expand)


@given(QUERIES, st.lists(ENTITIES, min_size=1, max_size=5))
def test_valid_queries_compile_and_never_raise(q: str, entities: list[dict[str, Any]]) -> None:
    predicate = compile_q(parse_q(q), expand)
    for ent in entities:
        assert predicate(ent) in (True, False)


@given(st.sampled_from(NAMES[:3]), SCALARS, JSON)
def test_not_equal_is_the_complement_of_equal_for_one_scalar(
        name: str, literal: str, stored: Any) -> None:
    if isinstance(stored, list):
        stored = {"wrapped": stored}  # arrays have any/none semantics; tested elsewhere
    ent = {"attrs": {expand(name): [prop(stored)]}}
    assert matches(f"{name}=={literal}", ent) is not matches(f"{name}!={literal}", ent)


def linked_world() -> dict[str, Any]:
    """A feature managed by a building, with the LINKED map a query attaches."""
    building = {"id": "urn:b:1", "type": [EX + "Building"],
                "attrs": {EX + "name": [prop("Pisa Tower")]}}
    feature = entity(managedBy={"type": "Relationship", "object": "urn:b:1"})
    feature["id"] = "urn:f:1"
    shared = {"urn:b:1": building, "urn:f:1": feature}
    building[LINKED] = feature[LINKED] = shared
    return feature


def test_linked_term_follows_the_relationship() -> None:
    feature = linked_world()
    assert matches('managedBy{name}=="Pisa Tower"', feature)
    assert not matches('managedBy{name}=="Eiffel Tower"', feature)


def test_linked_term_type_hint_restricts_the_targets() -> None:
    feature = linked_world()
    assert matches('managedBy{Building:name}=="Pisa Tower"', feature)
    assert not matches('managedBy{Vehicle:name}=="Pisa Tower"', feature)


def test_linked_term_without_resolved_links_never_matches() -> None:
    feature = entity(managedBy={"type": "Relationship", "object": "urn:b:1"})
    assert not matches('managedBy{name}=="Pisa Tower"', feature)


def test_linked_depth_and_superset_without_linked_terms() -> None:
    expr = parse_q('a{b{c}}==1;d==2|e{f}==3')
    assert linked_depth(expr) == 2
    assert without_linked(expr) is None  # the OR keeps a linked-only branch: all pass
    assert without_linked(parse_q('a{b}==1;d==2')) == parse_q("d==2")


@pytest.mark.parametrize("text", ["a{b", "a{}==1", "a.b{c}==1", "a{b}}==1"])
def test_malformed_linked_terms_are_bad_request_data(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text)
