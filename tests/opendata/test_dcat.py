"""The catalogue as DCAT-AP-SE, what Sweden's national portal harvests at
/datasets/dcat: it validates against the DCAT-AP 3.0.1 shapes, names every node, reads
back the same in RDF/XML, Turtle and JSON-LD, identifies the publisher by its
organisation number and tags high-value datasets."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pyshacl import validate
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, SH

from smartcity.config import Settings
from smartcity.opendata.dcat import catalogue_graph, serialize
from smartcity.opendata.model import Dataset, Publisher, Text
from tests.conftest import LiveServer

# The DCAT-AP data files live in ../shared beside the repository (see SOURCES.md there).
SHAPES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dcat-ap"
DCATAP = Namespace("http://data.europa.eu/r5r/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
CITY = "https://data.example-kommun.se"
PUBLISHER = Publisher(name=Text(sv="Exempelkommunen", en="Example Municipality"),
                      organisation_number="212000-0142", homepage="https://example-kommun.se",
                      email="oppnadata@example-kommun.se")
MOBILITY = "http://data.europa.eu/bna/c_b79e35eb"
HVD_REGULATION = URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
TRAFFIC: dict[str, Any] = {
    "title": {"sv": "Trafikflöden", "en": "Traffic flows"},
    "description": {"sv": "Fordon per timme vid stadens mätpunkter",
                    "en": "Vehicles an hour at the city's counting points"},
    "keywords": {"sv": ["trafik", "fordon"], "en": ["traffic", "vehicles"]},
    "themes": ["TRAN", "REGI"], "licence": "CC-BY-4.0",
    "contact": {"name": "Trafikkontoret", "email": "trafik@example-kommun.se"},
    "spatial": {"west": 17.75, "south": 59.22, "east": 18.2, "north": 59.44},
    "temporal": {"start": "2024-01-01", "end": "2026-12-31"}, "frequency": "HOURLY",
    "hvd_category": "mobility",
    "query": {"types": ["TrafficFlowObserved"]},
    "policy": {"attributes": ["intensity", "location"], "location_grid": 250,
               "time_resolution": "PT15M"}}
BENCHES: dict[str, Any] = {
    "title": {"sv": "Parkbänkar", "en": "Park benches"},
    "description": {"sv": "Var stadens parkbänkar står", "en": "Where the city's benches are"},
    "themes": ["REGI"], "contact": {"name": "Parkförvaltningen",
                                    "email": "park@example-kommun.se"},
    "query": {"types": ["Bench"]}, "policy": {"attributes": ["location"]}}
# The serializations by media type, and rdflib's name for parsing each.
PARSERS = {"application/rdf+xml": "xml", "text/turtle": "turtle",
           "application/ld+json": "json-ld"}


def published(name: str, spec: dict[str, Any]) -> Dataset:
    return Dataset(id=name, issued="2026-01-05T08:00:00.000000Z",
                   modified="2026-11-25T12:00:00.000000Z", **spec)


def read(data: bytes, media: str) -> Graph:
    with warnings.catch_warnings():
        # rdflib's JSON-LD parser builds a ConjunctiveGraph, which rdflib itself deprecates.
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated",
                                DeprecationWarning)
        return Graph().parse(data=data, format=PARSERS[media])


@pytest.fixture(scope="module")
def shapes() -> Graph:
    """The DCAT-AP 3.0.1 shapes with their range checks, read once for the module."""
    graph = Graph()
    for name in ("dcat-ap-SHACL.ttl", "ranges.ttl"):
        graph.parse(SHAPES / "dcat-ap-3.0.1" / name)
    # The release names a few property shapes it never defines (SEMICeu/DCAT-AP#448),
    # which pyshacl refuses to load; they constrain nothing, so they are left out.
    for shape, prop in list(graph.subject_objects(SH.property)):
        if graph.value(prop, SH.path) is None:
            graph.remove((shape, SH.property, prop))
    return graph


@pytest.fixture(scope="module")
def catalogue() -> Graph:
    return catalogue_graph(PUBLISHER, CITY, [published("traffic-flow", TRAFFIC),
                                             published("benches", BENCHES)])


def conformance(graph: Graph, shapes: Graph) -> tuple[bool, str]:
    conforms, _, report = validate(graph, shacl_graph=shapes)
    return bool(conforms), str(report)


@pytest.mark.parametrize("kept", [2, 0], ids=["two datasets", "empty"])
def test_the_catalogue_validates_against_dcat_ap(shapes: Graph, kept: int) -> None:
    datasets = [published("traffic-flow", TRAFFIC), published("benches", BENCHES)][:kept]
    conforms, report = conformance(catalogue_graph(PUBLISHER, CITY, datasets), shapes)
    assert conforms, report


def test_the_validation_catches_what_dcat_ap_forbids(catalogue: Graph, shapes: Graph
                                                     ) -> None:
    broken = Graph()
    broken += catalogue
    broken.remove((URIRef(f"{CITY}/datasets/benches#dataset"), DCTERMS.title, None))
    conforms, report = conformance(broken, shapes)
    assert not conforms
    assert "benches#dataset" in report


def test_every_node_has_a_name_under_the_public_url(catalogue: Graph) -> None:
    assert not [t for t in catalogue if any(isinstance(n, BNode) for n in t)]
    minted = {node for kind in (DCAT.Catalog, DCAT.Dataset, DCAT.Distribution,
                                DCAT.DataService, VCARD.Kind, DCTERMS.Location,
                                DCTERMS.PeriodOfTime)
              for node in catalogue.subjects(RDF.type, kind)}
    # The catalogue; per dataset itself, five distributions, its live API and contact
    # point; the traffic flows' place and period.
    assert len(minted) == 1 + 2 * (1 + 5 + 1 + 1) + 2
    assert all(str(node).startswith(f"{CITY}/datasets/") for node in minted)


@pytest.mark.parametrize("media", PARSERS)
def test_each_serialization_reads_back_the_same(catalogue: Graph, media: str) -> None:
    assert isomorphic(read(serialize(catalogue, media), media), catalogue)


def put(http: httpx.Client, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    response = http.put(f"/datasets/{name}", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def harvest(http: httpx.Client, media: str, accept: str | None = None, **params: str
            ) -> Graph:
    """The catalogue as a portal harvests it, in ``media``."""
    response = http.get("/datasets/dcat", headers={"Accept": accept or media},
                        params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media
    return read(response.content, media)


def test_portals_harvest_the_published_datasets(db: str, shapes: Graph) -> None:
    settings = Settings(db=db, public_url=CITY, publisher=PUBLISHER)
    with LiveServer(settings) as url, httpx.Client(base_url=url, timeout=10) as http:
        traffic = put(http, "traffic-flow", TRAFFIC)
        put(http, "benches", BENCHES)
        graphs = {media: harvest(http, media) for media in PARSERS}
        rdf = graphs["application/rdf+xml"]
        assert all(isomorphic(rdf, g) for g in graphs.values())
        # RDF/XML unless asked otherwise; ?format= wins over Accept.
        assert isomorphic(harvest(http, "application/rdf+xml", accept="*/*"), rdf)
        assert isomorphic(harvest(http, "text/turtle", accept="application/ld+json",
                                  format="ttl"), rdf)
        assert conformance(rdf, shapes)[0]

        high_value = URIRef(f"{CITY}/datasets/traffic-flow#dataset")
        plain = URIRef(f"{CITY}/datasets/benches#dataset")
        assert set(rdf.objects(None, DCAT.dataset)) == {high_value, plain}
        assert rdf.value(high_value, DCATAP.hvdCategory) == URIRef(MOBILITY)
        assert rdf.value(high_value, DCATAP.applicableLegislation) == HVD_REGULATION
        assert rdf.value(plain, DCATAP.hvdCategory) is None
        # How coarse the publication policy makes the data.
        assert rdf.value(high_value, DCAT.spatialResolutionInMeters).toPython() == 250
        assert str(rdf.value(high_value, DCAT.temporalResolution)) == "PT15M"
        # Every distribution of the high-value dataset names the regulation too.
        distributions = set(rdf.objects(high_value, DCAT.distribution))
        assert {rdf.value(d, DCATAP.applicableLegislation) for d in distributions} == {
            HVD_REGULATION}
        # A harvester links people to the dataset's page.
        landing = rdf.value(high_value, DCAT.landingPage)
        assert landing == URIRef(f"{CITY}/catalogue/traffic-flow")
        page = http.get(urlsplit(str(landing)).path)
        assert page.status_code == 200 and "Trafikflöden" in page.text
        # The files and the live API the JSON catalogue lists are those DCAT describes.
        assert {str(rdf.value(d, DCAT.accessURL)) for d in distributions} == set(
            traffic["distributions"].values())

        publisher = URIRef("http://dataportal.se/organisation/SE2120000142")
        assert set(rdf.objects(None, DCTERMS.publisher)) == {publisher}
        assert rdf.value(publisher, DCTERMS.identifier) == Literal("212000-0142")

        assert http.delete("/datasets/benches").status_code == 204
        after = harvest(http, "text/turtle")
        assert set(after.objects(None, DCAT.dataset)) == {high_value}


def test_what_cannot_be_served_is_refused(db: str) -> None:
    with LiveServer(Settings(db=db)) as url, httpx.Client(base_url=url, timeout=10) as http:
        refused = http.get("/datasets/dcat", headers={"Accept": "application/json"})
        assert refused.status_code == 406
        assert refused.json()["type"].endswith("NotAcceptable")
        assert "text/turtle" in refused.json()["detail"]
        unknown = http.get("/datasets/dcat", params={"format": "xlsx"})
        assert unknown.status_code == 400
        assert "xlsx" in unknown.json()["detail"]
        assert http.get("/datasets/dcat", params={"page": "2"}).status_code == 400


def test_anyone_may_harvest_with_access_control_on(db: str) -> None:
    with LiveServer(Settings(db=db, auth="on")) as url:
        response = httpx.get(f"{url}/datasets/dcat", timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/rdf+xml")
