"""The catalogue as DCAT-AP-SE (Sweden's profile of DCAT-AP 3), the RDF that national
portals harvest.

Every node has an IRI, none is blank: a harvester that reads the catalogue again
recognises each dataset, distribution and contact point by its name and updates it
instead of adding a copy. The EU vocabulary terms the catalogue points at (themes,
licences, file types...) are typed in the graph too, so that it validates against the
DCAT-AP range shapes on its own, without the vocabularies beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS

from smartcity.opendata.model import FORMS, HVD_CATEGORIES, Dataset, Form, Publisher, Text

DCATAP = Namespace("http://data.europa.eu/r5r/")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
DATA_THEME = URIRef(EU + "data-theme")
# Implementing Regulation (EU) 2023/138, which makes a dataset high-value.
HVD_LEGISLATION = URIRef("http://data.europa.eu/eli/reg_impl/2023/138/oj")
HVD_CATEGORY = Namespace("http://data.europa.eu/bna/")
IANA = "https://www.iana.org/assignments/media-types/"
# DCAT-AP-SE recommends this IRI for a publisher, so that a portal harvesting the same
# organisation from several catalogues sees one publisher.
PUBLISHER_IRI = "http://dataportal.se/organisation/SE{digits}"
LICENCES = {"CC0-1.0": URIRef(EU + "licence/CC0"),
            "CC-BY-4.0": URIRef(EU + "licence/CC_BY_4_0")}
# The EU data themes by code, labelled as the EU vocabulary labels them (the range shapes
# want a label on every concept).
THEMES = {"AGRI": Text(sv="Jordbruk, fiske, skogsbruk och livsmedel",
                       en="Agriculture, fisheries, forestry and food"),
          "ECON": Text(sv="Ekonomi och finans", en="Economy and finance"),
          "EDUC": Text(sv="Utbildning, kultur och sport", en="Education, culture and sport"),
          "ENER": Text(sv="Energi", en="Energy"),
          "ENVI": Text(sv="Miljö", en="Environment"),
          "GOVE": Text(sv="Regeringen och den offentliga sektorn",
                       en="Government and public sector"),
          "HEAL": Text(sv="Hälsa", en="Health"),
          "INTR": Text(sv="Internationella frågor", en="International issues"),
          "JUST": Text(sv="Rättvisa, rättsliga system och allmän säkerhet",
                       en="Justice, legal system and public safety"),
          "REGI": Text(sv="Regioner och städer", en="Regions and cities"),
          "SOCI": Text(sv="Befolkning och samhälle", en="Population and society"),
          "TECH": Text(sv="Vetenskap och teknik", en="Science and technology"),
          "TRAN": Text(sv="Transport", en="Transport")}
# The serializations offered, by media type (the first is the default: RDF/XML is what
# Sweden's national portal harvests). Plain RDF/XML, not rdflib's nested "pretty-xml":
# harvesters read both alike, and it is written three times as fast.
SERIALIZATIONS = {"application/rdf+xml": "xml", "text/turtle": "turtle",
                  "application/ld+json": "json-ld"}
PREFIXES = {"dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "vcard": VCARD, "skos": SKOS,
            "dcatap": DCATAP, "eli": ELI, "gsp": GSP, "rdfs": RDFS, "xsd": XSD}



def catalogue_iri(public_url: str) -> URIRef:
    """The catalogue's name: the address it is served at."""
    return URIRef(f"{public_url}/datasets/dcat#catalog")


def publisher_iri(publisher: Publisher) -> URIRef:
    return URIRef(PUBLISHER_IRI.format(digits=publisher.organisation_number.replace("-", "")))


def catalogue_graph(publisher: Publisher, public_url: str, datasets: Sequence[Dataset]
                    ) -> Graph:
    """The catalogue of ``datasets`` as DCAT-AP-SE, every node named under
    ``public_url``."""
    builder = _Builder(public_url)
    agent = builder.publisher(publisher)
    catalogue = catalogue_iri(public_url)
    graph = builder.graph
    graph.add((catalogue, RDF.type, DCAT.Catalog))
    builder.texts(catalogue, DCTERMS.title, Text(sv=f"Öppna data från {publisher.name.sv}",
                                                 en=f"Open data from {publisher.name.en}"))
    builder.texts(catalogue, DCTERMS.description, Text(
        sv=f"Datamängder som {publisher.name.sv} publicerar ur stadens plattform för "
           "realtidsdata.",
        en=f"Datasets that {publisher.name.en} publishes from the city's real-time data "
           "platform."))
    graph.add((catalogue, DCTERMS.publisher, agent))
    # The pages people read (api/routes/pages.py), where a harvester links to.
    graph.add((catalogue, FOAF.homepage, builder.document(f"{public_url}/catalogue")))
    # The catalogue's own metadata is free for anyone to reuse.
    graph.add((catalogue, DCTERMS.license, builder.licence("CC0-1.0")))
    for code in ("SWE", "ENG"):
        graph.add((catalogue, DCTERMS.language, builder.typed(
            EU + f"language/{code}", DCTERMS.LinguisticSystem)))
    graph.add((catalogue, DCAT.themeTaxonomy, DATA_THEME))
    graph.add((DATA_THEME, RDF.type, SKOS.ConceptScheme))
    graph.add((DATA_THEME, DCTERMS.title, Literal("Data theme", lang="en")))
    if datasets:
        builder.times(catalogue, min(d.issued for d in datasets),
                      max(d.modified for d in datasets))
    for dataset in datasets:
        node, service = builder.dataset(dataset, agent)
        graph.add((catalogue, DCAT.dataset, node))
        graph.add((catalogue, DCAT.service, service))
    return graph


def serialize(graph: Graph, media_type: str) -> bytes:
    """The graph in one of SERIALIZATIONS; JSON-LD with its @context inline, so that
    neither writing nor reading it fetches anything."""
    if media_type == "application/ld+json":
        return graph.serialize(format="json-ld", encoding="utf-8",
                               context={p: str(ns) for p, ns in PREFIXES.items()})
    return graph.serialize(format=SERIALIZATIONS[media_type], encoding="utf-8")


class _Builder:
    def __init__(self, public_url: str) -> None:
        self.public_url = public_url
        self.graph = Graph()
        for prefix, namespace in PREFIXES.items():
            self.graph.bind(prefix, namespace)

    def texts(self, node: URIRef, predicate: URIRef, text: Text) -> None:
        self.graph.add((node, predicate, Literal(text.sv, lang="sv")))
        self.graph.add((node, predicate, Literal(text.en, lang="en")))

    def typed(self, iri: str, kind: URIRef) -> URIRef:
        """``iri``, stated to be a ``kind``: the range shapes check what a value is."""
        node = URIRef(iri)
        self.graph.add((node, RDF.type, kind))
        return node

    def document(self, url: str) -> URIRef:
        return self.typed(url, FOAF.Document)

    def licence(self, licence: str) -> URIRef:
        return self.typed(LICENCES[licence], DCTERMS.LicenseDocument)

    def times(self, node: URIRef, issued: str, modified: str) -> None:
        self.graph.add((node, DCTERMS.issued, Literal(issued, datatype=XSD.dateTime)))
        self.graph.add((node, DCTERMS.modified, Literal(modified, datatype=XSD.dateTime)))

    def publisher(self, publisher: Publisher) -> URIRef:
        node = publisher_iri(publisher)
        for kind in (FOAF.Agent, FOAF.Organization):
            self.graph.add((node, RDF.type, kind))
        self.texts(node, FOAF.name, publisher.name)
        self.graph.add((node, DCTERMS.identifier, Literal(publisher.organisation_number)))
        self.graph.add((node, FOAF.homepage, URIRef(publisher.homepage)))
        self.graph.add((node, FOAF.mbox, URIRef(f"mailto:{publisher.email}")))
        return node

    def dataset(self, dataset: Dataset, agent: URIRef) -> tuple[URIRef, URIRef]:
        """The dataset's node, and that of the live API serving it."""
        graph = self.graph
        base = f"{self.public_url}/datasets/{dataset.id}"
        node = URIRef(f"{base}#dataset")
        graph.add((node, RDF.type, DCAT.Dataset))
        graph.add((node, DCTERMS.identifier, Literal(dataset.id)))
        self.texts(node, DCTERMS.title, dataset.title)
        self.texts(node, DCTERMS.description, dataset.description)
        for lang, words in (("sv", dataset.keywords.sv), ("en", dataset.keywords.en)):
            for word in words:
                graph.add((node, DCAT.keyword, Literal(word, lang=lang)))
        for code in dataset.themes:
            theme = self.typed(f"{DATA_THEME}/{code}", SKOS.Concept)
            self.texts(theme, SKOS.prefLabel, THEMES[code])
            graph.add((theme, SKOS.inScheme, DATA_THEME))
            graph.add((node, DCAT.theme, theme))
        graph.add((node, DCTERMS.publisher, agent))
        contact = self.contact(f"{base}#contact", dataset)
        graph.add((node, DCAT.contactPoint, contact))
        graph.add((node, DCTERMS.accessRights, self.public_access()))
        graph.add((node, DCTERMS.accrualPeriodicity, self.typed(
            EU + f"frequency/{dataset.frequency}", DCTERMS.Frequency)))
        graph.add((node, DCAT.landingPage,
                   self.document(f"{self.public_url}/catalogue/{dataset.id}")))
        self.times(node, dataset.issued, dataset.modified)
        if dataset.spatial is not None:
            box = dataset.spatial
            place = self.typed(f"{base}#spatial", DCTERMS.Location)
            # WKT gives longitude before latitude, in WGS 84 unless it names another CRS.
            ring = ", ".join(f"{x} {y}" for x, y in (
                (box.west, box.south), (box.east, box.south), (box.east, box.north),
                (box.west, box.north), (box.west, box.south)))
            graph.add((place, DCAT.bbox, Literal(f"POLYGON(({ring}))",
                                                 datatype=GSP.wktLiteral)))
            graph.add((node, DCTERMS.spatial, place))
        if dataset.temporal is not None:
            period = self.typed(f"{base}#temporal", DCTERMS.PeriodOfTime)
            graph.add((period, DCAT.startDate, Literal(dataset.temporal.start)))
            if dataset.temporal.end is not None:
                graph.add((period, DCAT.endDate, Literal(dataset.temporal.end)))
            graph.add((node, DCTERMS.temporal, period))
        # How coarse the publication policy makes the data: what a reuser can rely on.
        if dataset.policy.location_grid is not None:
            graph.add((node, DCAT.spatialResolutionInMeters,
                       Literal(Decimal(str(dataset.policy.location_grid)))))
        if dataset.policy.time_resolution is not None:
            graph.add((node, DCAT.temporalResolution,
                       Literal(dataset.policy.time_resolution, datatype=XSD.duration)))
        high_value = self.high_value(node, dataset)
        service = self.service(base, dataset, agent, contact, node, high_value)
        for form in FORMS:
            graph.add((node, DCAT.distribution,
                       self.distribution(base, form, dataset, service, high_value)))
        return node, service

    def contact(self, iri: str, dataset: Dataset) -> URIRef:
        # vcard:Kind too: the shapes check the class as stated, without inference.
        node = self.typed(iri, VCARD.Organization)
        self.graph.add((node, RDF.type, VCARD.Kind))
        self.graph.add((node, VCARD.fn, Literal(dataset.contact.name)))
        self.graph.add((node, VCARD.hasEmail, URIRef(f"mailto:{dataset.contact.email}")))
        return node

    def public_access(self) -> URIRef:
        return self.typed(EU + "access-right/PUBLIC", DCTERMS.RightsStatement)

    def high_value(self, node: URIRef, dataset: Dataset) -> bool:
        """Tag a high-value dataset (or its API) with its category and the regulation
        that makes it one; whether it is one."""
        if dataset.hvd_category is None:
            return False
        self.graph.add((node, DCATAP.hvdCategory,
                        HVD_CATEGORY[HVD_CATEGORIES[dataset.hvd_category]]))
        self.legislation(node)
        return True

    def legislation(self, node: URIRef) -> None:
        self.graph.add((node, DCATAP.applicableLegislation,
                        self.typed(HVD_LEGISLATION, ELI.LegalResource)))

    def service(self, base: str, dataset: Dataset, agent: URIRef, contact: URIRef,
                served: URIRef, high_value: bool) -> URIRef:
        """The read-only live API over the dataset (a data service in DCAT-AP 3: the
        entities distribution is reached through it)."""
        graph = self.graph
        endpoint = f"{base}/entities"
        node = self.typed(f"{endpoint}#service", DCAT.DataService)
        self.texts(node, DCTERMS.title, Text(sv=f"Live-API: {dataset.title.sv}",
                                             en=f"Live API: {dataset.title.en}"))
        graph.add((node, DCAT.endpointURL, self.typed(endpoint, RDFS.Resource)))
        graph.add((node, DCAT.endpointDescription,
                   self.typed(f"{self.public_url}/openapi.json", RDFS.Resource)))
        graph.add((node, DCAT.servesDataset, served))
        graph.add((node, DCTERMS.publisher, agent))
        graph.add((node, DCAT.contactPoint, contact))
        graph.add((node, DCTERMS.license, self.licence(dataset.licence)))
        graph.add((node, DCTERMS.accessRights, self.public_access()))
        if high_value:
            self.high_value(node, dataset)
        return node

    def distribution(self, base: str, form: Form, dataset: Dataset, service: URIRef,
                     high_value: bool) -> URIRef:
        graph = self.graph
        url = URIRef(f"{base}/{form.name}")
        node = self.typed(f"{url}#distribution", DCAT.Distribution)
        self.texts(node, DCTERMS.title, form.title)
        graph.add((node, DCAT.accessURL, url))
        if form.download:
            graph.add((node, DCAT.downloadURL, url))
        else:
            graph.add((node, DCAT.accessService, service))
        graph.add((node, DCTERMS.format, self.typed(EU + f"file-type/{form.file_type}",
                                                    DCTERMS.MediaTypeOrExtent)))
        graph.add((node, DCAT.mediaType, self.typed(IANA + form.media_type,
                                                    DCTERMS.MediaType)))
        graph.add((node, DCTERMS.license, self.licence(dataset.licence)))
        if high_value:
            # DCAT-AP HVD asks the regulation of every distribution of a high-value dataset.
            self.legislation(node)
        return node
