"""UltraLight 2.0, the text payload of the FIWARE IoT Agents.

A payload is one or more measure groups separated by ``#``; a group is ``key|value``
pairs separated by ``|`` (``t|21.5|h|40``) and may begin with a timestamp of its own
(``2026-11-25T10:00:00Z|t|21.5``). Values stay text: the device's attribute types say
what they become.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.core.ngsild.errors import BadRequestData
from smartcity.core.ngsild.instants import parse_instant

MAX_PAYLOAD = 64 * 1024


@dataclass(frozen=True)
class MeasureGroup:
    values: dict[str, str]
    time: int | None  # microseconds, when the group carries its own timestamp


def parse_ultralight(payload: str) -> list[MeasureGroup]:
    if len(payload) > MAX_PAYLOAD:
        raise BadRequestData(f"An UltraLight payload holds at most {MAX_PAYLOAD} characters")
    groups = []
    for text in payload.strip().split("#"):
        if not text.strip():
            continue
        fields = [f.strip() for f in text.split("|")]
        time = None
        if len(fields) % 2 == 1:
            time = _timestamp(fields[0])
            fields = fields[1:]
        values = {}
        for key, value in zip(fields[::2], fields[1::2], strict=True):
            if not key:
                raise BadRequestData(f"UltraLight measure without a name in {text!r}")
            values[key] = value
        if not values:
            raise BadRequestData(f"UltraLight group without measures: {text!r}")
        groups.append(MeasureGroup(values, time))
    if not groups:
        raise BadRequestData("The UltraLight payload holds no measures")
    return groups


def _timestamp(text: str) -> int:
    try:
        return parse_instant(text)
    except BadRequestData:
        raise BadRequestData(f"UltraLight group starts with {text!r}, neither a timestamp "
                             "nor a key|value pair") from None
