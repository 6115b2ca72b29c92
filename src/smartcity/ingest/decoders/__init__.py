"""Payload decoders of LoRaWAN devices: one module per device profile.

Adding a decoder is adding one file here. A decoder module defines ``PROFILE`` (the name
a device or service group is provisioned with, e.g. ``"elsys-ers"``) and
``decode(port, payload)``, which turns an uplink's application payload (bytes, on its
LoRaWAN FPort) into measures: a dict of measure names to numbers, text or booleans. A
payload the decoder cannot read raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from functools import cache
from typing import Any

Decode = Callable[[int, bytes], dict[str, Any]]


@cache
def decoders() -> dict[str, Decode]:
    """Every decoder of this package, by profile."""
    found: dict[str, Decode] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found[module.PROFILE] = module.decode
    return found
