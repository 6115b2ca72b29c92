"""package_search's Solr-like grammar over packages held in memory: parsing ``q``,
``fq``, ``sort``, ``rows``, ``start`` and facets, then matching, scoring, ordering and
paging.

Supported: in ``q``, words and "quoted phrases" (each must occur, as a word or the
start of one, in a title, description or keyword, in Swedish or English; a title match
scores 3, a keyword 2, a description 1) and field clauses as in ``fq``; ``*:*`` or
nothing matches everything. In ``fq`` (and each of ``fq_list``), clauses
``field:value`` or ``field:"quoted value"`` joined by spaces or AND, each negated by a
leading ``-``: fields tags, organization, res_format, groups (EU theme codes),
license_id, name (or id), dataset_type and text (as a ``q`` word, unscored); a value
``*`` means any, ``value*`` a prefix (case does not matter); metadata_modified and
metadata_created take ranges ``[from TO to]`` (``{}`` exclusive, ``*`` open) of ISO 8601
times. OR, NOT, parentheses and date maths (NOW) are refused, as are unknown fields.
``sort``: comma-separated ``field asc|desc`` of score, metadata_modified,
metadata_created, name and title_string."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from smartcity.core.clock import timestamp
from smartcity.opendata.model import Dataset

DEFAULT_SORT = "score desc, metadata_modified desc"
DEFAULT_ROWS, MAX_ROWS = 10, 1000
# Values a clause can match, by field, from a package (as shown: facets count these).
VALUES: dict[str, Callable[[dict[str, Any]], Iterable[str]]] = {
    "tags": lambda p: (t["name"] for t in p["tags"]),
    "organization": lambda p: (p["organization"]["name"],),
    "res_format": lambda p: dict.fromkeys(r["format"] for r in p["resources"]),
    "groups": lambda p: (g["name"] for g in p["groups"]),
    "license_id": lambda p: (p["license_id"],),
    "name": lambda p: (p["name"],),
    "id": lambda p: (p["id"],),
    "dataset_type": lambda p: (p["type"],),
}
FACETS = ("tags", "organization", "res_format", "groups", "license_id")
RANGES = ("metadata_modified", "metadata_created")
TEXT = "text"
FIELDS = (*VALUES, TEXT, *RANGES)
SORTS: dict[str, Callable[[Entry, float], Any]] = {
    "score": lambda e, score: score,
    "metadata_modified": lambda e, score: e.package["metadata_modified"],
    "metadata_created": lambda e, score: e.package["metadata_created"],
    "name": lambda e, score: e.package["name"],
    "title_string": lambda e, score: e.package["title"].casefold(),
}
# Ignored as CKAN's Solr search ignores them here: nothing is private, draft or deleted.
IGNORED = frozenset({"include_private", "include_drafts", "include_deleted",
                     "use_default_schema", "facet.mincount"})
PARAMETERS = frozenset({"q", "fq", "fq_list", "rows", "start", "sort", "facet",
                        "facet.field", "facet.limit"}) | IGNORED
# A clause: optional sign, optional field, then a quoted value, a range or a word.
# A range ([a TO b]) holds at most one line of text: unclosed, it ends the clause
# there instead of searching the rest of the query again from every '['.
_CLAUSE = re.compile(r'([+-]?)(?:([A-Za-z_][\w.]*):)?'
                     r'("(?:[^"\\]|\\.)*"|[\[{][^\]}\[{\n]{0,200}[\]}]|[^\s"]+|"[^"]*$)')
MAX_QUERY = 2000  # characters of q or of one fq
_RANGE = re.compile(r"^([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])$")
_WORD = re.compile(r"\w+")
_NATURAL = re.compile(r"[0-9]{1,18}")


class BadParameter(ValueError):
    """An action's parameter that cannot be understood, and which one."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def words(content: str) -> str:
    """The words of a text, case folded, each after a space: ``in`` then finds a word,
    a phrase, or the start of either."""
    return "".join(" " + w for w in _WORD.findall(content.casefold()))


@dataclass(frozen=True)
class Entry:
    """A package with what search needs of it, worked out once."""

    dataset: Dataset
    package: dict[str, Any]
    texts: tuple[tuple[str, float], ...]
    values: dict[str, frozenset[str]]

    @classmethod
    def of(cls, dataset: Dataset, package: dict[str, Any]) -> Entry:
        title = f"{dataset.id} {dataset.title.sv} {dataset.title.en}"
        keywords = " ".join((*dataset.keywords.sv, *dataset.keywords.en))
        description = f"{dataset.description.sv} {dataset.description.en}"
        return cls(dataset, package,
                   ((words(title), 3.0), (words(keywords), 2.0), (words(description), 1.0)),
                   {name: frozenset(v.casefold() for v in values(package))
                    for name, values in VALUES.items()})

    def score(self, phrase: str) -> float:
        return sum(weight for text, weight in self.texts if phrase in text)


class Index:
    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(entries)
        self.by_name = {e.dataset.id: e for e in self.entries}


Filter = Callable[[Entry], bool]


@dataclass(frozen=True)
class Search:
    phrases: tuple[str, ...]  # each must occur; they score
    excluded: tuple[str, ...]
    filters: tuple[Filter, ...]
    sort: str
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    rows: int
    start: int
    facets: tuple[str, ...]
    facet_limit: int  # -1: all


def search_request(params: Mapping[str, Any]) -> Search:
    """The search ``params`` ask for; BadParameter names the first bad one."""
    unknown = sorted(n for n in params if n not in PARAMETERS and not n.startswith("ext_"))
    if unknown:
        raise BadParameter(unknown[0], f"Unknown parameter {unknown[0]!r}; package_search "
                          f"takes {', '.join(sorted(PARAMETERS - IGNORED))}")
    phrases: list[str] = []
    excluded: list[str] = []
    filters: list[Filter] = []
    for sign, name, value in _clauses("q", text(params, "q")):
        if name in FIELDS and name != TEXT:
            filters.append(_filter("q", sign, name, value))
            continue
        # As Solr's edismax does, q reads an unknown field:value as words.
        phrase = words(value if name in (None, TEXT) else f"{name} {value}")
        if phrase:
            (excluded if sign == "-" else phrases).append(phrase)
    for fq in (text(params, "fq"), *_texts(params, "fq_list")):
        for sign, name, value in _clauses("fq", fq):
            if name is None:
                raise BadParameter("fq", f"{value!r} is not a field:value clause")
            filters.append(_filter("fq", sign, name, value))
    sort = text(params, "sort") or DEFAULT_SORT
    # More rows than the most are capped, as CKAN caps them (search.rows_max).
    rows = min(natural(params, "rows", DEFAULT_ROWS), MAX_ROWS)
    return Search(tuple(phrases), tuple(excluded), tuple(filters), sort, _order(sort),
                  rows, natural(params, "start", 0), *_facets(params))


def text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadParameter(name, f"{name} must be a string")
    return value


def _texts(params: Mapping[str, Any], name: str) -> list[str]:
    value = _json_list(params, name)
    if not all(isinstance(v, str) for v in value):
        raise BadParameter(name, f"{name} must be a list of strings")
    return value


def _json_list(params: Mapping[str, Any], name: str) -> list[Any]:
    """A list parameter: in a query string, as JSON text (as CKAN takes it)."""
    value = params.get(name, [])
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = [value]
    if not isinstance(value, list):
        raise BadParameter(name, f"{name} must be a list")
    return value


def natural(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, str) and _NATURAL.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise BadParameter(name, f"{name} must be a natural number (0, 1, 2, ...), not "
                      f"{value!r}")


def _clauses(parameter: str, query: str) -> list[tuple[str, str | None, str]]:
    """(sign, field or None, value unquoted) of each clause; AND joins them all."""
    if len(query) > MAX_QUERY:
        raise BadParameter(parameter, f"{parameter} is longer than {MAX_QUERY} characters")
    found: list[tuple[str, str | None, str]] = []
    # Every character but a space starts a clause: finditer skips only spaces.
    for match in _CLAUSE.finditer(query):
        sign, name, value = match.groups()
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                raise BadParameter(parameter, f"Unclosed quote in {parameter}: {query!r}")
            value = value[1:-1]
        elif "(" in value or ")" in value:
            raise BadParameter(parameter, "Grouping with parentheses is not supported in "
                               f"{parameter}: {query!r}")
        elif name is None and not sign and value in ("AND", "&&", "*:*", "*"):
            continue
        elif name is None and value in ("OR", "||", "NOT", "!"):
            raise BadParameter(parameter, f"{value} is not supported in {parameter}: every "
                              "clause must hold (AND); negate one with a leading '-'")
        found.append((sign, name, re.sub(r"\\(.)", r"\1", value)))
    return found


def _filter(parameter: str, sign: str, name: str, value: str) -> Filter:
    matches = _matcher(parameter, name, value)
    return (lambda e: not matches(e)) if sign == "-" else matches


def _matcher(parameter: str, name: str, value: str) -> Filter:
    if name not in FIELDS:
        raise BadParameter(parameter, f"Unknown field {name!r} in {parameter}; supported: "
                           f"{', '.join(FIELDS)}")
    if name in VALUES:
        wanted = value.casefold()
        if wanted == "*":
            return lambda e: bool(e.values[name])
        if wanted.endswith("*"):
            prefix = wanted[:-1]
            return lambda e: any(v.startswith(prefix) for v in e.values[name])
        return lambda e: wanted in e.values[name]
    if name == TEXT:
        phrase = words(value)
        return lambda e: e.score(phrase) > 0
    return _range(parameter, name, value)


def _range(parameter: str, name: str, value: str) -> Filter:
    match = _RANGE.match(value)
    if match is None:
        raise BadParameter(parameter, f"{name} takes a range [from TO to], not {value!r}")
    opening, low, high, closing = match.groups()
    low_time, high_time = _bound(parameter, low), _bound(parameter, high)

    def within(entry: Entry) -> bool:
        moment = entry.package[name]
        above = low_time is None or (moment >= low_time if opening == "[" else
                                     moment > low_time)
        below = high_time is None or (moment <= high_time if closing == "]" else
                                      moment < high_time)
        return above and below
    return within


def _bound(parameter: str, text: str) -> str | None:
    """A range bound as the catalogue writes times (so that text order is time order)."""
    if text == "*":
        return None
    try:
        moment = datetime.fromisoformat(text)
        return timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        raise BadParameter(parameter, f"{text!r} is not an ISO 8601 time within years "
                           "1 to 9999 (date maths such as NOW is not supported)") from None


def _order(sort: str) -> tuple[tuple[str, bool], ...]:
    order: list[tuple[str, bool]] = []
    for part in sort.split(","):
        pieces = part.split()
        if len(pieces) != 2 or pieces[0] not in SORTS or \
                pieces[1].lower() not in ("asc", "desc"):
            raise BadParameter("sort", f"Cannot sort by {part.strip()!r}: give 'field asc' "
                              f"or 'field desc' with a field of {', '.join(SORTS)}")
        order.append((pieces[0], pieces[1].lower() == "desc"))
    return tuple(order)


def _facets(params: Mapping[str, Any]) -> tuple[tuple[str, ...], int]:
    if str(params.get("facet", "true")).lower() == "false":
        return (), 0
    names = _json_list(params, "facet.field")
    unknown = [n for n in names if n not in FACETS]
    if unknown:
        raise BadParameter("facet.field", f"Cannot count {unknown[0]!r}; facet fields: "
                          f"{', '.join(FACETS)}")
    if params.get("facet.limit") in (-1, "-1"):
        return tuple(names), -1
    return tuple(names), natural(params, "facet.limit", 50)


def search(index: Index, request: Search) -> dict[str, Any]:
    """CKAN's package_search result for ``request``."""
    scored: list[tuple[Entry, float]] = []
    for entry in index.entries:
        if not all(matches(entry) for matches in request.filters):
            continue
        if any(entry.score(p) for p in request.excluded):
            continue
        scores = [entry.score(p) for p in request.phrases]
        if all(scores):
            scored.append((entry, sum(scores)))
    # Stable sorts from the last key to the first; the name breaks every tie.
    scored.sort(key=lambda pair: pair[0].package["name"])
    for name, descending in reversed(request.order):
        key = SORTS[name]
        scored.sort(key=lambda pair, key=key: key(*pair), reverse=descending)
    page = scored[request.start:request.start + request.rows]
    counts = {name: _count(name, scored, request.facet_limit) for name in request.facets}
    return {"count": len(scored), "sort": request.sort,
            "results": [entry.package for entry, _ in page], "facets": counts,
            "search_facets": {name: {"title": name, "items": [
                {"name": value, "display_name": value, "count": count}
                for value, count in found.items()]} for name, found in counts.items()}}


def _count(name: str, scored: list[tuple[Entry, float]], limit: int) -> dict[str, int]:
    counter = Counter(v for entry, _ in scored for v in VALUES[name](entry.package))
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked if limit < 0 else ranked[:limit])
