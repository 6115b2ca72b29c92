"""Rejected measurements, for operators: the latest ones (a bounded list, so a device
sending garbage cannot fill memory) and a count per device."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

EXCERPT = 256  # bytes of a rejected payload kept
COUNTED = 10_000  # devices counted one by one; rejections of any further go under "*"


@dataclass(frozen=True)
class DeadLetter:
    at: str
    transport: str
    apikey: str
    device_id: str
    reason: str
    payload: str


class DeadLetters:
    def __init__(self, keep: int = 1000) -> None:
        self._latest: deque[DeadLetter] = deque(maxlen=keep)
        self.rejected: Counter[tuple[str, str]] = Counter()  # (apikey, device id) -> count

    def add(self, at: str, transport: str, apikey: str, device_id: str, reason: str,
            payload: bytes) -> None:
        self._latest.append(DeadLetter(at, transport, apikey, device_id, reason,
                                       payload[:EXCERPT].decode("utf-8", "replace")))
        key = (apikey, device_id)
        if key not in self.rejected and len(self.rejected) >= COUNTED:
            key = ("*", "*")  # keys and ids made up by a flood must not fill memory
        self.rejected[key] += 1

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The latest rejections, newest first, each with its device's total count."""
        return [{**asdict(letter), "rejectedFromDevice":
                 self.rejected[(letter.apikey, letter.device_id)]}
                for letter in list(reversed(self._latest))[:limit]]
