"""NGSI-LD scope queries (ETSI GS CIM 009 V1.9.1, clause 4.19): the ``scopeQ`` parameter.

A scope is a path such as ``/Madrid/Gardens/ParqueNorte``. Accepted syntax (no whitespace)::

    ScopeQuery = Or
    Or         = And *(("," / "|") And)     ; ";" binds tighter
    And        = Primary *(";" Primary)
    Primary    = "(" Or ")" / ScopeTerm
    ScopeTerm  = "/#" / 1*("/" Level) ["/#"]
    Level      = name / "+"

``/A`` is exactly A, ``/A/#`` is A and everything below it, ``+`` is exactly one level
(``/A/+`` is a direct child of A) and ``/#`` is any entity with a scope at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from smartcity.core.ngsild.errors import BadRequestData

__all__ = ["parse_scope_q"]

ScopeMatcher = Callable[[list[str] | None], bool]

# Longer input is not echoed back in error messages.
MAX_ECHO = 200
# Bounds the parser's recursion, so deeply nested input is a 400 and not a RecursionError.
MAX_DEPTH = 64
# '/#' matches any entity with a scope, so any scope at all.
_ANY_SCOPE = re.compile(r".*", re.DOTALL)
_LEVEL = re.compile(r"""[^\s/#+;,|()"'\x00-\x1f\x7f]+""")


def parse_scope_q(text: str) -> ScopeMatcher:
    """Parse ``scopeQ`` into a test over an entity's scopes; bad syntax is ``BadRequestData``.

    The test takes the entity's ``scope`` member (a list of scope paths, or None) and holds
    when the query does; a term holds when any one of the scopes matches it.
    """
    return _Parser(text).parse()


def _term_matcher(pattern: re.Pattern[str]) -> ScopeMatcher:
    """A test for one term; a stored scope that is not a string never matches."""
    fullmatch = pattern.fullmatch

    def matches(stored: list[str] | None) -> bool:
        if isinstance(stored, str):  # tolerated: one scope not wrapped in a list
            return fullmatch(stored) is not None
        if isinstance(stored, list):
            for scope in stored:
                if isinstance(scope, str) and fullmatch(scope) is not None:
                    return True
        return False
    return matches


# Plain loops rather than all()/any(): no generator object per entity on the hot path.
def _all(operands: tuple[ScopeMatcher, ...]) -> ScopeMatcher:
    def all_hold(stored: list[str] | None) -> bool:
        for holds in operands:  # noqa: SIM110
            if not holds(stored):
                return False
        return True
    return all_hold


def _any(operands: tuple[ScopeMatcher, ...]) -> ScopeMatcher:
    def any_holds(stored: list[str] | None) -> bool:
        for holds in operands:  # noqa: SIM110
            if holds(stored):
                return True
        return False
    return any_holds


class _Parser:
    """A recursive-descent parser over one scopeQ string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, problem: str) -> BadRequestData:
        where = "at the end" if self.pos >= len(self.text) else f"at position {self.pos}"
        shown = f": {self.text!r}" if len(self.text) <= MAX_ECHO else ""
        return BadRequestData(f"Invalid scopeQ: {problem} {where}{shown}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> ScopeMatcher:
        if not self.text:
            raise self.fail("empty query")
        matcher = self.parse_or()
        if self.pos < len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return matcher

    def parse_or(self) -> ScopeMatcher:
        operands = [self.parse_and()]
        while self.peek() in (",", "|"):
            self.pos += 1
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _any(tuple(operands))

    def parse_and(self) -> ScopeMatcher:
        operands = [self.parse_primary()]
        while self.peek() == ";":
            self.pos += 1
            operands.append(self.parse_primary())
        return operands[0] if len(operands) == 1 else _all(tuple(operands))

    def parse_primary(self) -> ScopeMatcher:
        if self.peek() != "(":
            return _term_matcher(self.parse_term())
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"parentheses nested deeper than {MAX_DEPTH}")
        self.depth += 1
        self.pos += 1
        matcher = self.parse_or()
        if self.peek() != ")":
            raise self.fail("expected ')'")
        self.pos += 1
        self.depth -= 1
        return matcher

    def parse_term(self) -> re.Pattern[str]:
        """The regex a scope term stands for, to be matched against a whole scope."""
        if self.text.startswith("/#", self.pos):
            self.pos += 2
            return _ANY_SCOPE
        parts: list[str] = []
        while self.peek() == "/":
            self.pos += 1
            if self.peek() == "#":  # parts is not empty: a leading '/#' returned above
                self.pos += 1
                parts.append("(?:/[^/]+)*")
                break
            if self.peek() == "+":
                self.pos += 1
                parts.append("/[^/]+")
                continue
            level = _LEVEL.match(self.text, self.pos)
            if level is None:
                raise self.fail("expected a scope level, '+' or '#'")
            self.pos = level.end()
            parts.append("/" + re.escape(level.group()))
        if not parts:
            raise self.fail("expected a scope starting with '/'")
        return re.compile("".join(parts))
