"""The NGSI-LD Query Language (ETSI GS CIM 009 V1.9.1, clause 4.9): the ``q`` parameter.

``parse_q`` turns the text into an immutable AST (``QExpr``); ``compile_q`` turns that AST
into a predicate over the internal entity form of :mod:`smartcity.core.ngsild.model`.

Accepted syntax (no whitespace outside quoted strings)::

    Query     = Or
    Or        = And *("|" And)              ; ";" binds tighter than "|"
    And       = Primary *(";" Primary)
    Primary   = "(" Or ")" / Term
    Term      = AttrPath [Operator Value]   ; no operator: the attribute exists
              / "!" AttrPath                ; the attribute does not exist
    AttrPath  = Name *("." Name) *("[" Key *("." Key) "]")
    Operator  = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="
    Value     = Scalar / Scalar ".." Scalar / Scalar 1*("," Scalar)
    Scalar    = number / quoted string / true / false / date / dateTime / time / URI

A name starting with ``http://`` or ``https://`` runs up to the operator or ``[`` and is
never split on dots. A last dotted segment ``observedAt``, ``modifiedAt``, ``createdAt``,
``unitCode`` or ``datasetId`` names that member of the attribute instance. Bracketed keys
walk into the JSON value and are not expanded.

After ``~=`` / ``!~=`` the value is a Python regular expression, either quoted or running
up to the first ``;``, ``|`` or ``)`` outside its own groups and character classes, so an
alternation must be grouped: ``name~=(foo|bar)``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import lru_cache
from typing import Any

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.model import (
    LANGUAGE_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Entity,
    Instance,
)
from smartcity.core.ngsild.user_patterns import compile_pattern

__all__ = [
    "And",
    "AttrPath",
    "Kind",
    "Op",
    "Or",
    "Pattern",
    "QExpr",
    "Range",
    "Scalar",
    "Term",
    "Value",
    "ValueList",
    "compile_q",
    "parse_q",
]

Predicate = Callable[[Entity], bool]
# Key under which the entities a query's linked terms reach are attached to each
# candidate (a dict id -> entity shared by all of them) before the predicate runs.
LINKED = "@linked"

MAX_PATTERN_LENGTH = 1024
# Longer input is not echoed back in error messages.
MAX_ECHO = 200
# Bounds the parser's recursion, so deeply nested input is a 400 and not a RecursionError.
MAX_DEPTH = 64
INSTANCE_MEMBERS = frozenset({"observedAt", "modifiedAt", "createdAt", "unitCode", "datasetId"})


class Op(StrEnum):
    """A comparison operator."""

    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    MATCH = "~="
    NOT_MATCH = "!~="


class Kind(StrEnum):
    """The type of a literal value in a query."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"
    DATE = "date"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class Scalar:
    """One literal; ``value`` is an int, float, str, bool, datetime, date or time."""

    kind: Kind
    value: Any


@dataclass(frozen=True, slots=True)
class Range:
    """``low..high``, both bounds included and of the same kind."""

    low: Scalar
    high: Scalar


@dataclass(frozen=True, slots=True)
class ValueList:
    """``a,b,c``: ``==`` matches any of them, ``!=`` none of them."""

    items: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    """The regular expression of ``~=`` / ``!~=``, validated at parse time."""

    source: str


Value = Scalar | Range | ValueList | Pattern


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute, its sub-attributes, an optional instance member and a trailing path.

    ``names`` are raw (unexpanded) names: the attribute then sub-attributes. ``member`` is
    one of ``INSTANCE_MEMBERS`` or None. ``keys`` walk into the value and stay raw.
    """

    names: tuple[str, ...]
    member: str | None = None
    keys: tuple[str, ...] = ()
    # rel{path}: ``path`` applies to the entities the relationship ``names[0]`` targets
    # (clause 4.9, linked entity queries); its first name may carry a type hint Type:attr.
    linked: AttrPath | None = None


@dataclass(frozen=True, slots=True)
class QExpr:
    """A node of a parsed query."""

    def attribute_names(self) -> set[str]:
        """The raw attribute names (first path segment) the query refers to."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Term(QExpr):
    """``path`` alone (existence, or with ``absent`` its absence) or ``path op value``."""

    path: AttrPath
    op: Op | None = None
    value: Value | None = None
    absent: bool = False

    def attribute_names(self) -> set[str]:
        return {self.path.names[0]}


@dataclass(frozen=True, slots=True)
class And(QExpr):
    """All operands hold."""

    operands: tuple[QExpr, ...]

    def attribute_names(self) -> set[str]:
        return set().union(*(o.attribute_names() for o in self.operands))


@dataclass(frozen=True, slots=True)
class Or(QExpr):
    """At least one operand holds."""

    operands: tuple[QExpr, ...]

    def attribute_names(self) -> set[str]:
        return set().union(*(o.attribute_names() for o in self.operands))


# ---------------------------------------------------------------------------------------
# Parsing

_NAME = re.compile(r"""[^\s.\[\]{}=!<>~;|(),"'\\\x00-\x1f\x7f]+""")
_KEY = re.compile(r"[^\s.\[\]\x00-\x1f\x7f]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME_PART = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?"
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T" + _TIME_PART, re.ASCII)
_TIME = re.compile(_TIME_PART, re.ASCII)
# A full IRI is one name: its dots and slashes are not path syntax.
_FULL_IRI = re.compile(r"""https?://[^\s\[\]=!<>~;|()"'\\\x00-\x1f\x7f]+""", re.IGNORECASE)
# Longest first, so that ">=" is not read as ">" followed by a value "=...".
_OPERATORS = sorted(Op, key=lambda o: -len(o.value))
_VALUE_END = ";|),"
_ORDERING = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})


class _Parser:
    """A recursive-descent parser over one q string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, problem: str, pos: int | None = None) -> BadRequestData:
        at = self.pos if pos is None else pos
        where = "at the end" if at >= len(self.text) else f"at position {at}"
        shown = f": {self.text!r}" if len(self.text) <= MAX_ECHO else ""
        return BadRequestData(f"Invalid q: {problem} {where}{shown}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_term_end(self) -> bool:
        return self.pos >= len(self.text) or self.text[self.pos] in ";|)"

    def parse(self) -> QExpr:
        if not self.text:
            raise self.fail("empty query")
        expr = self.parse_or()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return expr

    def parse_or(self) -> QExpr:
        operands = [self.parse_and()]
        while self.peek() == "|":
            self.pos += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> QExpr:
        operands = [self.parse_primary()]
        while self.peek() == ";":
            self.pos += 1
            operands.append(self.parse_primary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_primary(self) -> QExpr:
        if self.peek() != "(":
            return self.parse_term()
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"parentheses nested deeper than {MAX_DEPTH}")
        self.depth += 1
        self.pos += 1
        expr = self.parse_or()
        if self.peek() != ")":
            raise self.fail("expected ')'")
        self.pos += 1
        self.depth -= 1
        return expr

    def parse_term(self) -> Term:
        if self.peek() == "!":
            self.pos += 1
            path = self.parse_path()
            if path.linked is not None or not self.at_term_end():
                raise self.fail("'!' only negates the existence of a plain attribute path")
            return Term(path, absent=True)
        path = self.parse_path()
        if self.at_term_end():
            return Term(path)
        op = self.parse_operator()
        if op in (Op.MATCH, Op.NOT_MATCH):
            value: Value = self.parse_pattern()
        else:
            value = self.parse_value(op)
        if not self.at_term_end():
            raise self.fail(f"unexpected {self.peek()!r} after the value")
        return Term(path, op, value)

    def parse_path(self) -> AttrPath:
        if iri := _FULL_IRI.match(self.text, self.pos):
            self.pos = iri.end()
            names = [iri.group()]
        else:
            names = [self.parse_name()]
            if self.peek() == "{":
                return self.parse_linked(names[0])
            while self.peek() == ".":
                self.pos += 1
                names.append(self.parse_name())
        member = None
        if len(names) > 1 and names[-1] in INSTANCE_MEMBERS:
            member = names.pop()
        keys: list[str] = []
        while self.peek() == "[":
            if member is not None:
                raise self.fail(f"a trailing path cannot follow {member!r}")
            self.pos += 1
            keys.append(self.parse_key())
            while self.peek() == ".":
                self.pos += 1
                keys.append(self.parse_key())
            if self.peek() != "]":
                raise self.fail("expected ']'")
            self.pos += 1
        return AttrPath(tuple(names), member, tuple(keys))

    def parse_linked(self, relationship: str) -> AttrPath:
        self.pos += 1
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("linked entity paths nest too deeply")
        inner = self.parse_path()
        if self.peek() != "}":
            raise self.fail("expected '}'")
        self.pos += 1
        self.depth -= 1
        return AttrPath((relationship,), linked=inner)

    def parse_name(self) -> str:
        found = _NAME.match(self.text, self.pos)
        if found is None:
            what = f"{self.peek()!r}" if self.peek() else "nothing"
            raise self.fail(f"expected an attribute name, found {what}")
        self.pos = found.end()
        return found.group()

    def parse_key(self) -> str:
        found = _KEY.match(self.text, self.pos)
        if found is None:
            raise self.fail("expected a key inside '[...]'")
        self.pos = found.end()
        return found.group()

    def parse_operator(self) -> Op:
        for op in _OPERATORS:
            if self.text.startswith(op.value, self.pos):
                self.pos += len(op.value)
                return op
        if self.peek() == "=":
            raise self.fail("unknown operator '=' (use '==')")
        raise self.fail(f"expected an operator or ';', '|', ')', found {self.peek()!r}")

    def parse_value(self, op: Op) -> Value:
        first = self.parse_scalar()
        if self.text.startswith("..", self.pos):
            start = self.pos
            self.pos += 2
            second = self.parse_scalar()
            if op not in (Op.EQ, Op.NE):
                raise self.fail(f"a range needs '==' or '!=', not {op.value!r}", start)
            if first.kind is not second.kind or first.kind is Kind.BOOLEAN:
                raise self.fail(
                    f"range bounds must be two numbers, strings, dates, dateTimes or times, "
                    f"not a {first.kind} and a {second.kind}", start)
            return Range(first, second)
        if self.peek() == ",":
            if op not in (Op.EQ, Op.NE):
                raise self.fail(f"a value list needs '==' or '!=', not {op.value!r}")
            items = [first]
            while self.peek() == ",":
                self.pos += 1
                items.append(self.parse_scalar())
            return ValueList(tuple(items))
        if op in _ORDERING and first.kind is Kind.BOOLEAN:
            raise self.fail(f"{op.value!r} cannot compare booleans")
        return first

    def parse_scalar(self) -> Scalar:
        if self.peek() == '"':
            return Scalar(Kind.STRING, self.parse_quoted())
        text, start = self.text, self.pos
        end = start
        while end < len(text) and text[end] not in _VALUE_END and not text.startswith("..", end):
            end += 1
        token = text[start:end]
        if not token:
            raise self.fail("missing value", start)
        if token[0] in "=!<>~":
            raise self.fail(f"unexpected {token[0]!r} at the start of a value", start)
        for i, char in enumerate(token, start):
            if char.isspace() or char in '"(' or not char.isprintable():
                raise self.fail(f"{char!r} is not allowed in an unquoted value", i)
        self.pos = end
        return self.classify(token, start)

    def classify(self, token: str, start: int) -> Scalar:
        """The typed literal an unquoted token stands for; anything else is a string."""
        if token in ("true", "false"):
            return Scalar(Kind.BOOLEAN, token == "true")
        if number := _NUMBER.fullmatch(token):
            integral = number.group(1) is None and number.group(2) is None
            try:
                return Scalar(Kind.NUMBER, int(token) if integral else float(token))
            except ValueError as exc:  # more digits than int() accepts
                raise self.fail(f"invalid number {token!r}", start) from exc
        if _DATETIME.fullmatch(token):
            parsed = _parse_datetime(token)
            if parsed is None:
                raise self.fail(f"invalid dateTime {token!r}", start)
            return Scalar(Kind.DATETIME, parsed)
        if _DATE.fullmatch(token):
            day = _parse_date(token)
            if day is None:
                raise self.fail(f"invalid date {token!r}", start)
            return Scalar(Kind.DATE, day)
        if _TIME.fullmatch(token):
            moment = _parse_time(token)
            if moment is None:
                raise self.fail(f"invalid time {token!r}", start)
            return Scalar(Kind.TIME, moment)
        return Scalar(Kind.STRING, token)

    def parse_quoted(self) -> str:
        text, start = self.text, self.pos
        chars: list[str] = []
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == '"':
                self.pos = i + 1
                return "".join(chars)
            if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                chars.append(text[i + 1])
                i += 2
                continue
            chars.append(char)
            i += 1
        raise self.fail("unterminated quoted string", start)

    def parse_pattern(self) -> Pattern:
        start = self.pos
        if self.peek() == '"':
            source = self.parse_quoted()
        else:
            source = self.text[start:self.scan_pattern()]
            self.pos = start + len(source)
        if not source:
            raise self.fail("missing regular expression", start)
        if len(source) > MAX_PATTERN_LENGTH:
            raise self.fail(f"regular expression longer than {MAX_PATTERN_LENGTH}", start)
        _compile_pattern(source, lambda problem: self.fail(problem, start))
        return Pattern(source)

    def scan_pattern(self) -> int:
        """Where an unquoted regex ends: the first ';', '|' or ')' outside its own syntax."""
        text, i, depth, in_class = self.text, self.pos, 0, False
        while i < len(text):
            char = text[i]
            if char == "\\":
                i += 2
                continue
            if in_class:
                in_class = char != "]"
            elif char == "[":
                in_class = True
                i += 1
                # A ']' right after '[' or '[^' is a literal member of the class.
                if text.startswith("^", i):
                    i += 1
                if text.startswith("]", i):
                    i += 1
                continue
            elif char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char in ";|" and depth == 0:
                break
            i += 1
        return min(i, len(text))


def parse_q(text: str) -> QExpr:
    """Parse an NGSI-LD ``q`` expression; any malformed input raises ``BadRequestData``."""
    return _Parser(text).parse()


def _compile_pattern(source: str, fail: Callable[[str], BadRequestData]) -> Any:
    try:
        return compile_pattern(source)
    except BadRequestData as exc:
        raise fail(exc.detail) from None


# ---------------------------------------------------------------------------------------
# Literal and stored-value conversion. Stored dates and times are parsed on every
# comparison, so the parsers are cached: the same timestamps recur across entities.


@lru_cache(maxsize=65536)
def _parse_datetime(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Naive timestamps are taken as UTC, and mixing naive and aware values would raise.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@lru_cache(maxsize=65536)
def _parse_date(text: str) -> date | None:
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    parsed = _parse_datetime(text)
    if parsed is None:
        return None
    try:
        return parsed.astimezone(UTC).date()
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
        return None


@lru_cache(maxsize=65536)
def _parse_time(text: str) -> time | None:
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _temporal_text(stored: Any) -> str | None:
    """The text of a stored date/time: a string or a JSON-LD ``{"@value": ...}`` object."""
    if isinstance(stored, str):
        return stored
    if isinstance(stored, dict):
        inner = stored.get("@value")
        if isinstance(inner, str):
            return inner
    return None


def _as_number(stored: Any) -> int | float | None:
    return stored if isinstance(stored, int | float) and not isinstance(stored, bool) else None


def _as_string(stored: Any) -> str | None:
    return stored if isinstance(stored, str) else None


def _as_boolean(stored: Any) -> bool | None:
    return stored if isinstance(stored, bool) else None


def _as_datetime(stored: Any) -> datetime | None:
    text = _temporal_text(stored)
    return None if text is None else _parse_datetime(text)


def _as_date(stored: Any) -> date | None:
    text = _temporal_text(stored)
    return None if text is None else _parse_date(text)


def _as_time(stored: Any) -> time | None:
    text = _temporal_text(stored)
    return None if text is None else _parse_time(text)


# A stored value converted to the kind of the query literal, or None when it is not
# comparable to it: a number never equals a string, ordering across kinds is false.
_COERCE: dict[Kind, Callable[[Any], Any]] = {
    Kind.NUMBER: _as_number,
    Kind.STRING: _as_string,
    Kind.BOOLEAN: _as_boolean,
    Kind.DATETIME: _as_datetime,
    Kind.DATE: _as_date,
    Kind.TIME: _as_time,
}

_ORDER_FUNCTIONS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.GT: operator.gt, Op.GE: operator.ge, Op.LT: operator.lt, Op.LE: operator.le,
}


# ---------------------------------------------------------------------------------------
# Compilation

ElementTest = Callable[[Any], bool]
_MISSING: Any = object()


def compile_q(expr: QExpr, expand: Callable[[str], str],
              expand_values: frozenset[str] = frozenset()) -> Predicate:
    """A predicate over internal entities; ``expand`` maps a raw name (or vocab term) to an IRI.

    VocabProperty values are stored expanded; a query value is expanded to compare with
    them only for the attributes named in ``expand_values`` (the ``expandValues``
    parameter, clause 4.9). Everything that does not depend on the entity (IRIs, regexes,
    literal sets) is computed here once; the predicate never raises.
    """
    if isinstance(expr, Term):
        return _compile_term(expr, expand, expand_values)
    if isinstance(expr, And | Or):
        operands = tuple(compile_q(o, expand, expand_values) for o in expr.operands)
        return _conjunction(operands) if isinstance(expr, And) else _disjunction(operands)
    raise TypeError(f"not a q expression: {expr!r}")


# Plain loops rather than all()/any(): no generator object per entity on the hot path.
def _conjunction(operands: tuple[Predicate, ...]) -> Predicate:
    def all_hold(entity: Entity) -> bool:
        for holds in operands:  # noqa: SIM110
            if not holds(entity):
                return False
        return True
    return all_hold


def _disjunction(operands: tuple[Predicate, ...]) -> Predicate:
    def any_holds(entity: Entity) -> bool:
        for holds in operands:  # noqa: SIM110
            if holds(entity):
                return True
        return False
    return any_holds


def _compile_term(term: Term, expand: Callable[[str], str],
                  expand_values: frozenset[str] = frozenset()) -> Predicate:
    if term.path.linked is not None:
        return _compile_linked(term, expand, expand_values)
    instances = _instance_finder(tuple(expand(n) for n in term.path.names))
    resolve = _resolver(term.path)

    if term.op is None:
        # A bare name asks for the attribute, even one whose value member is missing.
        plain_path = term.path.member is None and not term.path.keys

        def exists(entity: Entity) -> bool:
            for instance in instances(entity):
                if isinstance(instance, dict) and (plain_path or resolve(instance) is not _MISSING):
                    return True
            return False
        if term.absent:
            return lambda entity: not exists(entity)
        return exists

    assert term.value is not None  # the parser pairs every operator with a value
    plain = _element_test(term.op, term.value)
    vocab_value = _expand_strings(term.value, expand) \
        if term.path.names[0] in expand_values else term.value
    vocab = None if vocab_value == term.value else _either(
        plain, _element_test(term.op, vocab_value))
    # '!=' and '!~=' hold for a value none of whose elements passes the positive test.
    negated = term.op in (Op.NE, Op.NOT_MATCH)
    # Relationship targets are URIs: they are equal or not, never greater or less.
    ordering = term.op in (Op.GT, Op.GE, Op.LT, Op.LE) and not term.path.member

    def compare(entity: Entity) -> bool:
        for instance in instances(entity):
            if not isinstance(instance, dict):
                continue
            if ordering and instance.get("type") in (RELATIONSHIP, LIST_RELATIONSHIP):
                continue
            value = resolve(instance)
            if value is _MISSING:
                continue
            test = plain
            if vocab is not None and instance.get("type") == VOCAB_PROPERTY:
                test = vocab
            if isinstance(value, list):
                hit = False
                for element in value:
                    if test(element):
                        hit = True
                        break
            else:
                hit = test(value)
            if hit != negated:
                return True
        return False
    return compare


def _compile_linked(term: Term, expand: Callable[[str], str],
                    expand_values: frozenset[str]) -> Predicate:
    """``rel{path} op value``: the term holds when it holds for an entity that a
    relationship ``rel`` targets, found in the entity's ``LINKED`` map."""
    relationship = expand(term.path.names[0])
    inner_path = term.path.linked
    assert inner_path is not None
    type_hint, inner_path = _type_hint(inner_path, expand)
    inner = _compile_term(Term(inner_path, term.op, term.value), expand, expand_values)

    def follows(entity: Entity) -> bool:
        linked = entity.get(LINKED)
        if not isinstance(linked, dict):
            return False
        for instance in _as_instances(entity.get("attrs", {}).get(relationship)):
            if not isinstance(instance, dict):
                continue
            kind = instance.get("type")
            targets = instance.get("object") if kind == RELATIONSHIP else \
                instance.get("objectList") if kind == LIST_RELATIONSHIP else None
            for target_id in targets if isinstance(targets, list) else [targets]:
                target = linked.get(target_id) if isinstance(target_id, str) else None
                if target is None:
                    continue
                if type_hint is not None and type_hint not in target.get("type", ()):
                    continue
                if inner(target):
                    return True
        return False
    return follows


def _type_hint(path: AttrPath, expand: Callable[[str], str]) -> tuple[str | None, AttrPath]:
    """Split ``Type:attr`` (clause 4.9, EXAMPLE 14) from a linked path's first name.

    A compact IRI (``prefix:attr`` with a known prefix) expands to something else, so a
    name whose expansion leaves it as it is, and is no http(s) or urn IRI, carries a hint.
    """
    first = path.names[0]
    hint, sep, name = first.partition(":")
    if not sep or not name or hint in ("http", "https", "urn") or expand(first) != first:
        return None, path
    return expand(hint), AttrPath((name, *path.names[1:]), path.member, path.keys,
                                  path.linked)


def linked_depth(expr: QExpr) -> int:
    """How many relationship hops the deepest linked term of a query makes."""
    if isinstance(expr, Term):
        depth, path = 0, expr.path
        while path.linked is not None:
            depth, path = depth + 1, path.linked
        return depth
    if isinstance(expr, And | Or):
        return max(linked_depth(o) for o in expr.operands)
    return 0


def linked_attribute_names(expr: QExpr) -> set[str]:
    """The raw names of the attributes linked terms (``rel{attr}``) read on the entities
    relationships lead to, without a type hint (``Type:attr`` gives ``attr``)."""
    if isinstance(expr, And | Or):
        return set().union(*(linked_attribute_names(o) for o in expr.operands))
    found: set[str] = set()
    path = expr.path.linked if isinstance(expr, Term) else None
    while path is not None:
        name = path.names[0]
        found.add(name.split(":", 1)[1] if ":" in name and "//" not in name else name)
        path = path.linked
    return found


def without_linked(expr: QExpr) -> QExpr | None:
    """The query with every linked term taken as true; None when nothing is left.

    q has no negation above its terms, so the result selects a superset of the entities
    the whole query selects: a store can filter with it before links are resolved.
    """
    if isinstance(expr, Term):
        return None if expr.path.linked is not None else expr
    if isinstance(expr, And):
        kept = [k for k in (without_linked(o) for o in expr.operands) if k is not None]
        return None if not kept else kept[0] if len(kept) == 1 else And(tuple(kept))
    if isinstance(expr, Or):
        parts = [without_linked(o) for o in expr.operands]
        return None if any(p is None for p in parts) else Or(tuple(parts))  # type: ignore[arg-type]
    return expr


def _instance_finder(iris: tuple[str, ...]) -> Callable[[Entity], Sequence[Any]]:
    """The instances of the attribute, or of its sub-attribute chain, in an entity.

    Items that are not dicts are left for the caller to skip: filtering here would cost
    a list per entity in the common single-segment case.
    """
    head, subs = iris[0], iris[1:]

    def find(entity: Entity) -> Sequence[Any]:
        attrs = entity.get("attrs")
        found = attrs.get(head) if isinstance(attrs, dict) else None
        if not subs and isinstance(found, list):  # the common case, without a call
            return found
        level = _as_instances(found)
        for sub in subs:
            level = [inner for parent in level if isinstance(parent, dict)
                     for inner in _as_instances(parent.get(sub))]
        return level
    return find


def _as_instances(found: Any) -> Sequence[Any]:
    # An attribute is a list of instances, a sub-attribute one instance; accept both.
    if isinstance(found, list):
        return found
    return (found,) if isinstance(found, dict) else ()


def _resolver(path: AttrPath) -> Callable[[Instance], Any]:
    """What an instance is compared by: a member, a trailing-path target, or its value."""
    member, keys = path.member, path.keys
    if member is not None:
        return lambda instance: instance.get(member, _MISSING)
    if keys:
        return lambda instance: _navigate(_value_of(instance, keys), keys)

    def value(instance: Instance) -> Any:
        # Plain Properties are the common case: skip the per-type dispatch.
        if instance.get("type") == PROPERTY:
            return instance.get("value", _MISSING)
        return _value_of(instance, keys)
    return value


def _value_of(instance: Instance, keys: tuple[str, ...]) -> Any:
    """The value an instance is compared by, normalised for its attribute type."""
    kind = instance.get("type", PROPERTY)
    if kind == LANGUAGE_PROPERTY:
        value = instance.get("languageMap", _MISSING)
        if not keys and isinstance(value, dict):
            # Without a key, any string in any language may match.
            strings: list[Any] = []
            for text in value.values():
                strings.extend(text if isinstance(text, list) else (text,))
            return strings
        return value
    if kind == LIST_RELATIONSHIP:
        value = instance.get("objectList", _MISSING)
        if isinstance(value, list):
            # The normalised form wraps each target as {"object": ...}.
            return [o.get("object") if isinstance(o, dict) else o for o in value]
        return value
    member = VALUE_MEMBER.get(kind, "value") if isinstance(kind, str) else "value"
    return instance.get(member, _MISSING)


def _navigate(value: Any, keys: tuple[str, ...]) -> Any:
    """Walk a trailing path into a JSON value; arrays on the way are fanned out."""
    for key in keys:
        if key == "*" and isinstance(value, dict):
            # [*] reaches every value of an object, e.g. a languageMap in any language.
            value = [v for item in value.values()
                     for v in (item if isinstance(item, list) else (item,))]
        elif isinstance(value, dict):
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, list):
            found: list[Any] = []
            for element in value:
                if isinstance(element, dict) and key in element:
                    inner = element[key]
                    found.extend(inner if isinstance(inner, list) else (inner,))
            if not found:
                return _MISSING
            value = found
        else:
            return _MISSING
    return value


def _element_test(op: Op, value: Value) -> ElementTest:
    """The positive test for one stored element (negation happens per instance)."""
    if isinstance(value, Pattern):
        search = _compile_pattern(value.source, BadRequestData).search
        return lambda element: isinstance(element, str) and search(element) is not None
    if isinstance(value, Range):
        coerce, low, high = _COERCE[value.low.kind], value.low.value, value.high.value

        def in_range(element: Any) -> bool:
            converted = coerce(element)
            return converted is not None and low <= converted <= high
        return in_range
    if isinstance(value, ValueList) or op in (Op.EQ, Op.NE):
        return _membership(value.items if isinstance(value, ValueList) else (value,))
    coerce, order, bound = _COERCE[value.kind], _ORDER_FUNCTIONS[op], value.value

    def ordered(element: Any) -> bool:
        converted = coerce(element)
        return converted is not None and order(converted, bound)
    return ordered


def _membership(items: tuple[Scalar, ...]) -> ElementTest:
    """Equality with any of the literals, by set lookup per literal kind."""
    by_kind: dict[Kind, set[Any]] = {}
    for item in items:
        by_kind.setdefault(item.kind, set()).add(item.value)
    groups = tuple((_COERCE[kind], frozenset(values)) for kind, values in by_kind.items())
    if len(groups) == 1:
        ((coerce, values),) = groups
        return lambda element: (converted := coerce(element)) is not None and converted in values

    def member_of_any(element: Any) -> bool:
        for coerce, values in groups:
            converted = coerce(element)
            if converted is not None and converted in values:
                return True
        return False
    return member_of_any


def _either(first: ElementTest, second: ElementTest) -> ElementTest:
    return lambda element: first(element) or second(element)


def _expand_strings(value: Value, expand: Callable[[str], str]) -> Value:
    """The literal with its strings expanded, for comparison with expanded vocab values."""
    def scalar(item: Scalar) -> Scalar:
        return Scalar(Kind.STRING, expand(item.value)) if item.kind is Kind.STRING else item
    if isinstance(value, Scalar):
        return scalar(value)
    if isinstance(value, Range):
        return Range(scalar(value.low), scalar(value.high))
    if isinstance(value, ValueList):
        return ValueList(tuple(scalar(i) for i in value.items))
    return value
