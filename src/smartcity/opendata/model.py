"""What the open-data catalogue holds: datasets described for people (in Swedish and
English) and for harvesters (DCAT-AP-SE), each defined by an NGSI-LD query over live
city data and a publication policy that says what of it may leave the platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smartcity.core.duration_fields import FixedPeriodText

SLUG = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
RESERVED = frozenset({"dcat"})  # /datasets/dcat is the catalogue
# EU data themes (http://publications.europa.eu/resource/authority/data-theme/...).
Theme = Literal["AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST",
                "REGI", "SOCI", "TECH", "TRAN"]
# EU update frequencies (http://publications.europa.eu/resource/authority/frequency/...).
Frequency = Literal["CONT", "UPDATE_CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY",
                    "QUARTERLY", "ANNUAL", "IRREG"]
Licence = Literal["CC0-1.0", "CC-BY-4.0"]
# High-value dataset categories (Implementing Regulation (EU) 2023/138), by the code of
# the EU vocabulary http://data.europa.eu/bna/.
HVD_CATEGORIES = {"geospatial": "c_ac64a52d", "earth-observation-environment": "c_dd313021",
                  "meteorological": "c_164e0bf5", "statistics": "c_e1da4e07",
                  "companies": "c_a9135398", "mobility": "c_b79e35eb"}
HvdCategory = Literal["geospatial", "earth-observation-environment", "meteorological",
                      "statistics", "companies", "mobility"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Printable text: control characters (but for line breaks and tabs) cannot be written
# in RDF/XML, and have no place in a title.
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# An address that is also a valid mailto: IRI.
EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
Keyword = Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE)]


class Text(Frozen):
    """A text in Swedish and English."""

    sv: str = Field(min_length=1, max_length=10_000, pattern=PRINTABLE)
    en: str = Field(min_length=1, max_length=10_000, pattern=PRINTABLE)


class Keywords(Frozen):
    sv: tuple[Keyword, ...] = ()
    en: tuple[Keyword, ...] = ()


class ContactPoint(Frozen):
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    email: str = Field(pattern=EMAIL)


class Coverage(Frozen):
    """Where the data lies: a bounding box in WGS 84 longitude/latitude."""

    west: float = Field(ge=-180, le=180)
    south: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)

    @model_validator(mode="after")
    def _ordered(self) -> Coverage:
        if self.west > self.east or self.south > self.north:
            raise ValueError("the box needs west <= east and south <= north")
        return self


class Period(Frozen):
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end is not None and self.end < self.start:
            raise ValueError("the period ends before it starts")
        return self


class DatasetQuery(Frozen):
    """The live data a dataset publishes: entities of ``types`` (short names, as the
    policy file names them, or IRIs) in ``tenant``, optionally filtered by an NGSI-LD
    ``q``."""

    types: tuple[str, ...] = Field(min_length=1)
    q: str | None = Field(None, max_length=2000)
    tenant: str = ""


class PublicationPolicy(Frozen):
    """What of the live data may leave the platform, and how coarse.

    Only ``attributes`` are published (never one the register of personal data names).
    ``location_grid`` snaps locations to the centre of a square grid of that many
    metres; ``time_resolution`` truncates times to periods of that length; with
    ``aggregate``, values are published as averages (and counts) per grid cell and
    period, and a group of fewer than ``min_group`` entities is not published at all.
    """

    attributes: tuple[str, ...] = Field(min_length=1)
    location_grid: float | None = Field(None, gt=0, le=100_000)
    time_resolution: FixedPeriodText | None = None
    aggregate: bool = False
    min_group: int = Field(1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _aggregation_needs_groups(self) -> PublicationPolicy:
        if self.min_group > 1 and not self.aggregate:
            raise ValueError("min_group needs aggregate = true: only groups can be "
                             "held back for being small")
        if self.aggregate and self.time_resolution is None:
            raise ValueError("aggregate needs a time_resolution: groups are per period")
        return self


class DatasetSpec(Frozen):
    """A dataset as its publisher describes it."""

    id: str = Field(pattern=SLUG, description="the dataset's name in URLs")

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED:
            raise ValueError(f"{value!r} names something else under /datasets/")
        return value
    title: Text
    description: Text
    keywords: Keywords = Keywords()
    themes: tuple[Theme, ...] = Field(min_length=1)
    licence: Licence = "CC0-1.0"
    contact: ContactPoint
    spatial: Coverage | None = None
    temporal: Period | None = None
    frequency: Frequency = "UPDATE_CONT"
    hvd_category: HvdCategory | None = Field(None, description="high-value dataset "
                                             "category, if the dataset is one")
    query: DatasetQuery
    policy: PublicationPolicy

    @field_validator("themes")
    @classmethod
    def _distinct(cls, themes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(themes))


class Dataset(DatasetSpec):
    """A dataset in the catalogue: the publisher's description, and when it was first
    published and last changed."""

    issued: str
    modified: str


class Publisher(Frozen):
    """Who publishes the catalogue (the settings name it): a Swedish organisation is
    identified by its organisation number."""

    name: Text
    organisation_number: str = Field(pattern=r"^\d{6}-\d{4}$")
    homepage: str = Field(pattern=r"^https?://")
    email: str = Field(pattern=EMAIL)


@dataclass(frozen=True)
class Form:
    """One form a dataset is published in: its name in the dataset's URL, its slug in
    resource ids, title, EU file type, the format name portals show, IANA media type,
    and whether it is a file to download or a live API."""

    name: str
    slug: str
    title: Text
    file_type: str
    format: str
    media_type: str
    download: bool = True


FORMS = (Form("data.csv", "csv", Text(sv="Senaste värden (CSV)", en="Latest values (CSV)"),
              "CSV", "CSV", "text/csv"),
         Form("data.geojson", "geojson", Text(sv="Senaste värden (GeoJSON)",
                                              en="Latest values (GeoJSON)"),
              "GEOJSON", "GeoJSON", "application/geo+json"),
         Form("data.jsonld", "jsonld", Text(sv="Senaste värden (NGSI-LD)",
                                            en="Latest values (NGSI-LD)"),
              "JSON_LD", "JSON-LD", "application/ld+json"),
         Form("history.csv", "history-csv", Text(sv="Historik (CSV)", en="History (CSV)"),
              "CSV", "CSV", "text/csv"),
         Form("entities", "api", Text(sv="Live-API (NGSI-LD, endast läsning)",
                                      en="Live API (NGSI-LD, read-only)"),
              "JSON_LD", "API", "application/ld+json", download=False))
FORMS_BY_NAME = {form.name: form for form in FORMS}
