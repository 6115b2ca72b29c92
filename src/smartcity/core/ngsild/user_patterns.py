"""Regular expressions written by clients (idPattern, q's ``~=``, subscriptions'
idPattern), compiled with RE2: matching takes time linear in the text, so no pattern,
however crafted (``(a+)+$``), can hold a worker for long. RE2 has no backreferences or
look-around; a pattern using them is refused as invalid."""

from __future__ import annotations

import re
from typing import Any

import re2

from smartcity.core.ngsild.errors import BadRequestData

MAX_PATTERN = 1024
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a client's bad pattern is their error, not the server's log
_OPTIONS.max_mem = 8 << 20  # bounds the compiled automaton of a huge repetition


def compile_pattern(source: str, what: str = "regular expression") -> Any:
    """The compiled pattern (with ``search``/``match``/``fullmatch`` as ``re``), or
    BadRequestData naming ``what`` when it is too long or not valid."""
    if len(source) > MAX_PATTERN:
        raise BadRequestData(f"The {what} is longer than {MAX_PATTERN} characters")
    try:
        # Python's parser judges the syntax (RE2 would read some mistakes, such as an
        # out-of-range repetition, as literal text); RE2 does the matching.
        re.compile(source)
        return re2.compile(source, _OPTIONS)
    except (re.error, re2.error, OverflowError, RecursionError, TypeError) as exc:
        raise BadRequestData(f"The {what} is not valid: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
