"""The ``pick`` and ``omit`` projection language (clause 4.21).

``id,name,locatedAt{name,address}``: a comma-separated list of entity members;
braces give the projection to apply to the entities a relationship links to.
"""

from __future__ import annotations

import re

from smartcity.core.ngsild.errors import BadRequestData

Projection = dict[str, "Projection | None"]
_NAME = re.compile(r"[^,|{}\s;]+")


def parse_projection(text: str) -> Projection:
    """Parse a pick/omit expression into {member: nested projection or None}."""
    result, pos = _list(text, 0, depth=0)
    if pos != len(text):
        raise BadRequestData(f"Invalid projection {text!r}: unexpected {text[pos]!r} at {pos}")
    return result


def _list(text: str, pos: int, depth: int) -> tuple[Projection, int]:
    items: Projection = {}
    while True:
        match = _NAME.match(text, pos)
        if match is None:
            where = repr(text[pos]) if pos < len(text) else "end"
            raise BadRequestData(f"Invalid projection {text!r}: a member name is expected "
                                 f"at {where}")
        name, pos = match.group(0), match.end()
        nested: Projection | None = None
        if pos < len(text) and text[pos] == "{":
            if depth >= 8:
                raise BadRequestData(f"Invalid projection {text!r}: nested too deeply")
            nested, pos = _list(text, pos + 1, depth + 1)
            if pos >= len(text) or text[pos] != "}":
                raise BadRequestData(f"Invalid projection {text!r}: unclosed brace")
            pos += 1
        items[name] = nested
        # Clause 4.21 allows '|' as well as ',' between members.
        if pos < len(text) and text[pos] in ",|":
            pos += 1
            continue
        return items, pos


def depth(projection: Projection) -> int:
    """How many relationship levels a projection reaches into."""
    return max((1 + depth(sub) for sub in projection.values() if sub), default=0)
