"""Statements over a list of keys (``... IN (...)``), bound a chunk of keys at a time:
SQLite bounds how many parameters one statement takes."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from typing import Any

CHUNK = 500


def rows_for_keys(db: sqlite3.Connection, select: str, keys: Collection[Any],
                  head: Sequence[Any] = (), tail: Sequence[Any] = ()) -> Iterator[Any]:
    """The rows of ``select`` for each distinct key, CHUNK keys a statement. ``select``
    names the keys' list ``{keys}``, bound between the parameters ``head`` and
    ``tail``."""
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        yield from db.execute(select.format(keys=",".join("?" * len(chunk))),
                              (*head, *chunk, *tail))
