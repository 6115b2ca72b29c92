"""The rows an append to the audit log writes, numbered and chained after the head, as
both stores write them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smartcity.security.audit import GENESIS, AuditEntry, chain, encode


@dataclass(frozen=True)
class AuditAppend:
    rows: list[tuple[int, str, bytes]]  # (seq, hash, document)
    subjects: list[tuple[str, int]]  # (subject, seq): the index of entries by resident
    head: tuple[int, str]  # (seq, hash) of the last row


def audit_append(head: tuple[int, str], entries: Sequence[AuditEntry]) -> AuditAppend:
    seq, hashed = head
    rows: list[tuple[int, str, bytes]] = []
    subjects: list[tuple[str, int]] = []
    for entry in entries:
        seq += 1
        hashed = chain(hashed, seq, entry)
        rows.append((seq, hashed, encode(entry)))
        subjects.extend((subject, seq) for subject in dict.fromkeys(entry.subjects))
    return AuditAppend(rows, subjects, (seq, hashed))


def as_head(row: Sequence[Any] | None) -> tuple[int, str]:
    """(seq, hash) of a stored head row; a log never appended to is at the genesis."""
    return (row[0], row[1]) if row else (0, GENESIS)
