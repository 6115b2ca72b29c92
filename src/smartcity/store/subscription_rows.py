"""How a subscription's delivery status fits a row beside its record (both backends)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from smartcity.core.ngsild.storage import STATUS_COUNTS, STATUS_TIMES, with_status

_NAMES = (*STATUS_COUNTS, *STATUS_TIMES)
# Records with their status columns (``record_with_status`` reads a row of it); the same
# SQL on both backends, to which a WHERE clause may be added.
WITH_STATUS = ("SELECT r.record, s.times_sent, s.times_failed, s.last_notification, "
               "s.last_success, s.last_failure FROM subscriptions r LEFT JOIN "
               "subscription_status s ON s.tenant = r.tenant AND s.id = r.id")


def status_row(delta: dict[str, Any]) -> tuple[Any, ...]:
    """A delivery-status delta as the columns (counts, then times) of a status row."""
    return (*(int(delta.get(name, 0)) for name in STATUS_COUNTS),
            *(delta.get(name) for name in STATUS_TIMES))


def record_with_status(record: bytes, columns: Sequence[Any]) -> dict[str, Any]:
    """A stored record (JSON) with the status columns read beside it (NULL: none)."""
    return with_status(orjson.loads(record), dict(zip(_NAMES, columns, strict=True)))


def split_status(record: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A record as stores before the status was kept apart wrote it: (its settings, its
    delivery status as the columns of a status row)."""
    status = {name: record[name] for name in _NAMES if name in record}
    settings = {k: v for k, v in record.items() if k not in _NAMES}
    return settings, status_row(status)
