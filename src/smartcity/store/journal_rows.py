"""What the journals of the platform's services (bounded lists of recent events, such as
rejected measurements) share on both stores: how running counts stay bounded."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from smartcity.core.ngsild.storage import OVERFLOW


def bounded(tallies: Mapping[str, int], known: Collection[str], held: int, most: int
            ) -> dict[str, int]:
    """``tallies`` to add to a kind's counts, which already hold ``held`` keys of which
    ``known`` are among these: new keys past ``most`` are counted under OVERFLOW, so
    that keys made up by a flood cannot grow the counts without end."""
    added: dict[str, int] = {}
    for key, count in tallies.items():
        if key not in known and key != OVERFLOW:
            if held >= most:
                key = OVERFLOW
            else:
                held += 1
        added[key] = added.get(key, 0) + count
    return added
