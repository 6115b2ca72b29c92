"""A running platform whose catalogue holds a few datasets, for the page tests: street
lights (points), road segments (lines), a dataset without places, and one whose
publisher put markup in its title."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from smartcity.config import Settings
from tests.conftest import LiveServer
from tests.opendata.test_distributions import LAMPS, dataset, lamp

ROADS = [("r1", [[18.060, 59.330], [18.065, 59.332]]),
         ("r2", [[18.070, 59.328], [18.072, 59.335], [18.075, 59.336]])]
MARKUP = "<script>alert('owned')</script>Lampor"


def road(name: str, line: list[list[float]]) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:RoadSegment:{name}", "type": "RoadSegment",
            "location": {"type": "GeoProperty",
                         "value": {"type": "LineString", "coordinates": line}},
            "name": {"type": "Property", "value": f"Väg {name}"}}


CATALOGUE = {
    "lamps": {**dataset("lamps"), "frequency": "HOURLY", "licence": "CC-BY-4.0",
              "hvd_category": "mobility",
              "spatial": {"west": 18.0, "south": 59.3, "east": 18.3, "north": 59.5}},
    "roads": {**dataset("roads"), "title": {"sv": "Vägsegment", "en": "Road segments"},
              "description": {"sv": "Stadens vägar som linjer",
                              "en": "The city's roads as lines"},
              "keywords": {"sv": ["vägar"], "en": ["roads"]}, "themes": ["TRAN"],
              "query": {"types": ["RoadSegment"]},
              "policy": {"attributes": ["location", "name"]}},
    "lamp-levels": {**dataset("lamp-levels"),
                    "title": {"sv": "Ljusnivåer", "en": "Light levels"},
                    "policy": {"attributes": ["illuminanceLevel"]}},
    "markup": {**dataset("markup"), "title": {"sv": MARKUP, "en": MARKUP}},
}


@contextmanager
def catalogue_site(db: str) -> Iterator[str]:
    """A platform at the URL yielded, with the entities and datasets above."""
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url) as http:
        entities = [lamp(*entry) for entry in LAMPS] + [road(*entry) for entry in ROADS]
        for entity in entities:
            assert http.post("/ngsi-ld/v1/entities", json=entity).status_code == 201
        for name, body in CATALOGUE.items():
            assert http.put(f"/datasets/{name}", json=body).status_code == 201
        yield url


@pytest.fixture(scope="module")
def site(module_db: str) -> Iterator[str]:
    with catalogue_site(module_db) as url:
        yield url


class Page(HTMLParser):
    """What a test reads of a page: its elements' attributes, and its tables' cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def hrefs(self) -> list[str]:
        return [a["href"] for a in self.all("a") if "href" in a]
