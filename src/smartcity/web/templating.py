"""The pages' templates (``web/templates``), rendered with every value escaped: a
dataset's texts come from its publisher and are shown as text, never as markup."""

from __future__ import annotations

from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined


def cell(value: Any) -> str:
    """A published value as the preview table shows it: a point as latitude, longitude
    (as a map reader says it), other compound values as JSON, nothing as nothing."""
    if value is None:
        return ""
    if isinstance(value, dict) and value.get("type") == "Point":
        lon, lat = value["coordinates"][:2]
        return f"{lat}, {lon}"
    if isinstance(value, dict | list | bool):
        return orjson.dumps(value).decode()
    return str(value)


# A missing value is a mistake in the page, not an empty string: StrictUndefined makes
# the tests see it.
ENVIRONMENT = Environment(loader=PackageLoader("smartcity.web", "templates"),
                          autoescape=True, undefined=StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters["cell"] = cell


def render(template: str, **context: Any) -> str:
    return ENVIRONMENT.get_template(template).render(**context)
