"""The catalogue as CKAN's Action API shows it, for the portal tools that harvest CKAN:
datasets as packages, their distributions as resources, the publisher as the one
organization, and the read actions (package_search with a Solr-like q/fq/sort over an
in-memory index, see ckan_search.py)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson

from smartcity.opendata.ckan_search import (
    BadParameter,
    Entry,
    Index,
    natural,
    search,
    search_request,
    text,
)
from smartcity.opendata.model import FORMS_BY_NAME, HVD_CATEGORIES, Dataset, Publisher

THEME_BASE = "http://publications.europa.eu/resource/authority/data-theme/"
FREQUENCY_BASE = "http://publications.europa.eu/resource/authority/frequency/"
HVD_BASE = "http://data.europa.eu/bna/"
# CKAN's licence ids (its default licence list) for ours.
LICENCES = {"CC0-1.0": ("cc-zero", "Creative Commons CCZero",
                        "https://creativecommons.org/publicdomain/zero/1.0/"),
            "CC-BY-4.0": ("cc-by", "Creative Commons Attribution 4.0",
                          "https://creativecommons.org/licenses/by/4.0/")}


class CkanError(Exception):
    """An action's failure, answered as CKAN does: ``success: false`` and this error."""

    kind: ClassVar[str] = "Bad Request"
    status: ClassVar[int] = 400

    def __init__(self, message: str, field: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = status or self.status

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"__type": self.kind, "message": self.message}
        if self.field is not None:
            # CKAN's validation errors name the faulty argument with its messages.
            body[self.field] = [self.message]
        return body


class NotFound(CkanError):
    kind, status = "Not Found Error", 404

    def body(self) -> dict[str, Any]:
        # CKAN prefixes the message so; ckanapi strips up to the first ': '.
        return {"__type": self.kind, "message": f"Not found: {self.message}"}


class Invalid(CkanError):
    """A missing argument is a 409, as CKAN answers a validation error; a malformed one
    (bad search parameters above all, issue 8 item 6) a 400."""

    kind, status = "Validation Error", 409


def slug(text: str) -> str:
    """A CKAN name for a text: ASCII lower case, digits and hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text.lower()).split())


def organization(publisher: Publisher) -> dict[str, Any]:
    return {"id": publisher.organisation_number, "name": slug(publisher.name.en),
            "title": publisher.name.en, "display_name": publisher.name.en,
            "title_translated": publisher.name.model_dump(), "description": "",
            "image_url": "", "type": "organization", "is_organization": True,
            "state": "active", "approval_status": "approved"}


def package(dataset: Dataset, publisher: Publisher, public_url: str,
            distributions: Sequence[str]) -> dict[str, Any]:
    """A dataset as a CKAN package, with Swedish beside English the way ckanext-fluent
    carries it (``*_translated``; ``keywords`` per language)."""
    landing = f"{public_url}/datasets/{dataset.id}"
    tags = list(dict.fromkeys((*dataset.keywords.sv, *dataset.keywords.en)))
    licence_id, licence_title, licence_url = LICENCES[dataset.licence]
    org = organization(publisher)
    resources = [resource(dataset, landing, name, position)
                 for position, name in enumerate(distributions)]
    return {
        "id": dataset.id, "name": dataset.id, "type": "dataset", "state": "active",
        "private": False, "title": dataset.title.en,
        "title_translated": dataset.title.model_dump(), "notes": dataset.description.en,
        "notes_translated": dataset.description.model_dump(),
        "tags": [{"id": tag, "name": tag, "display_name": tag, "state": "active",
                  "vocabulary_id": None} for tag in tags],
        "num_tags": len(tags), "keywords": dataset.keywords.model_dump(),
        "groups": [{"id": theme.lower(), "name": theme.lower(), "title": theme,
                    "display_name": theme} for theme in dataset.themes],
        "license_id": licence_id, "license_title": licence_title,
        "license_url": licence_url, "isopen": True, "organization": org,
        "owner_org": org["id"], "author": publisher.name.en,
        "author_email": publisher.email, "maintainer": dataset.contact.name,
        "maintainer_email": dataset.contact.email, "metadata_created": dataset.issued,
        "metadata_modified": dataset.modified, "url": landing, "resources": resources,
        "num_resources": len(resources), "extras": extras(dataset)}


def resource(dataset: Dataset, landing: str, name: str, position: int) -> dict[str, Any]:
    form = FORMS_BY_NAME[name]
    return {"id": f"{dataset.id}--{form.slug}", "package_id": dataset.id,
            "name": form.title.en, "description": "", "format": form.format,
            "mimetype": form.media_type, "url": f"{landing}/{name}", "position": position,
            "state": "active", "created": dataset.issued,
            "last_modified": dataset.modified}


def extras(dataset: Dataset) -> list[dict[str, str]]:
    """What CKAN has no field for, under the keys ckanext-dcat gives it."""
    found = {"theme": orjson.dumps([THEME_BASE + t for t in dataset.themes]).decode(),
             "frequency": FREQUENCY_BASE + dataset.frequency}
    if dataset.hvd_category is not None:
        found["hvd_category"] = HVD_BASE + HVD_CATEGORIES[dataset.hvd_category]
    if dataset.spatial is not None:
        box = dataset.spatial
        ring = [[box.west, box.south], [box.east, box.south], [box.east, box.north],
                [box.west, box.north], [box.west, box.south]]
        found["spatial"] = orjson.dumps({"type": "Polygon", "coordinates": [ring]}).decode()
    if dataset.temporal is not None:
        found["temporal_start"] = dataset.temporal.start.isoformat()
        if dataset.temporal.end is not None:
            found["temporal_end"] = dataset.temporal.end.isoformat()
    return [{"key": key, "value": value} for key, value in found.items()]


class Packages:
    """The catalogue's packages, each built (and indexed) again only when its dataset
    changes, so that a search costs no more than matching."""

    def __init__(self, publisher: Publisher, public_url: str,
                 distributions: Sequence[str]) -> None:
        self.publisher = publisher
        self.public_url = public_url
        self.distributions = tuple(distributions)
        self.index = Index(())

    def refresh(self, datasets: Sequence[Dataset]) -> Packages:
        known = self.index.by_name
        self.index = Index(self._entry(d, known.get(d.id)) for d in datasets)
        return self

    def _entry(self, dataset: Dataset, known: Entry | None) -> Entry:
        # The catalogue replaces a dataset it changes: the same object is unchanged.
        if known is not None and known.dataset is dataset:
            return known
        return Entry.of(dataset, package(dataset, self.publisher, self.public_url,
                                         self.distributions))

    def entry(self, name: str) -> Entry:
        found = self.index.by_name.get(name)
        if found is None:
            raise NotFound(f"No dataset {name!r} in the catalogue")
        return found


def _required(params: Mapping[str, Any], name: str) -> str:
    if params.get(name) in (None, ""):
        raise Invalid("Missing value", name)
    return text(params, name)


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", ""):
        return value.lower() in ("true", "1")
    raise BadParameter(name, f"{name} must be true or false, not {value!r}")


def _page(items: list[Any], params: Mapping[str, Any]) -> list[Any]:
    offset = natural(params, "offset", 0)
    limit = natural(params, "limit", len(items))
    return items[offset:offset + limit]


def package_list(packages: Packages, params: Mapping[str, Any]) -> Any:
    """The names of all datasets, in order (``limit`` and ``offset`` page them)."""
    return _page(sorted(packages.index.by_name), params)


def package_show(packages: Packages, params: Mapping[str, Any]) -> Any:
    """One dataset (``id``: its name) with its resources."""
    return packages.entry(_required(params, "id")).package


def package_search(packages: Packages, params: Mapping[str, Any]) -> Any:
    """Datasets matching ``q`` (words, "phrases" and field:value over titles,
    descriptions and keywords in Swedish and English) and every ``fq`` clause, ordered
    by ``sort`` ("score desc, metadata_modified desc" unless given), ``rows`` (10, at
    most 1000) from ``start``; ``facet.field`` counts values of tags, organization,
    res_format, groups and license_id."""
    return search(packages.index, search_request(params))


def resource_show(packages: Packages, params: Mapping[str, Any]) -> Any:
    """One resource (``id``: the dataset's name, ``--`` and the form, e.g.
    ``air-quality--csv``)."""
    resource_id = _required(params, "id")
    name, _, _ = resource_id.rpartition("--")
    entry = packages.index.by_name.get(name)
    for found in entry.package["resources"] if entry else ():
        if found["id"] == resource_id:
            return found
    raise NotFound(f"No resource {resource_id!r} in the catalogue")


def organization_list(packages: Packages, params: Mapping[str, Any]) -> Any:
    """The organizations: the catalogue's publisher (``all_fields`` for the whole
    record, with its ``package_count``)."""
    org = organization(packages.publisher)
    if _flag(params, "all_fields"):
        return _page([{**org, "package_count": len(packages.index.entries)}], params)
    return _page([org["name"]], params)


def tag_list(packages: Packages, params: Mapping[str, Any]) -> Any:
    """Every keyword, in Swedish and English, in order; ``query`` keeps those that
    contain it (as CKAN does); ``vocabulary_id`` is ignored (there are only free
    tags); ``all_fields`` for tag records."""
    wanted = text(params, "query").casefold()
    tags = sorted({tag["name"] for entry in packages.index.entries
                   for tag in entry.package["tags"] if wanted in tag["name"].casefold()})
    if _flag(params, "all_fields"):
        return [{"id": tag, "name": tag, "display_name": tag, "vocabulary_id": None}
                for tag in tags]
    return tags


def help_show(packages: Packages, params: Mapping[str, Any]) -> Any:
    """What an action (``name``) does."""
    return " ".join((action(_required(params, "name")).__doc__ or "").split())


Action = Callable[[Packages, Mapping[str, Any]], Any]
ACTIONS: dict[str, Action] = {f.__name__: f for f in (
    package_list, package_show, package_search, resource_show, organization_list,
    tag_list, help_show)}


def action(name: str) -> Action:
    found = ACTIONS.get(name)
    if found is None:
        raise CkanError(f"Bad request - Action name not known: {name}")
    return found


def call(name: str, packages: Packages, params: Mapping[str, Any]) -> Any:
    """The result of action ``name``; CkanError if it fails."""
    try:
        return action(name)(packages, params)
    except BadParameter as exc:
        raise Invalid(str(exc), exc.parameter, status=400) from None
