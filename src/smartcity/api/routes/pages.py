"""/catalogue: the open-data catalogue as pages for people, in Swedish or English
(``?lang=en``). Rendered on the server, so that everything but the map works without
JavaScript; what a dataset page previews is what its downloads publish."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from smartcity.api.platform import Platform, platform_of
from smartcity.core.ngsild.errors import BadRequestData, Conflict, ResourceNotFound
from smartcity.core.ngsild.temporal import now_micros
from smartcity.opendata.dcat import THEMES
from smartcity.opendata.exporters import published_rows
from smartcity.opendata.model import FORMS, Dataset
from smartcity.opendata.publication import Publication, Record, resolve
from smartcity.web.search import MAX_QUERY, search
from smartcity.web.templating import render
from smartcity.web.wording import (
    DEFAULT_LANG,
    FREQUENCIES,
    HVD_LABELS,
    LANGS,
    LICENCE_TEXTS,
    Lang,
    words,
)

router = APIRouter(include_in_schema=False)
PREVIEW_ROWS = 20


def _lang(request: Request) -> Lang | None:
    """The language asked for; None when it is not one the pages are written in."""
    asked = request.query_params.get("lang", DEFAULT_LANG)
    return next((lang for lang in LANGS if lang == asked), None)


def _page(request: Request, lang: Lang, template: str, status: int = 200,
          **context: Any) -> HTMLResponse:
    other = next(x for x in LANGS if x != lang)
    # Relative, so that the link holds behind any proxy or public address.
    switch = request.url.include_query_params(lang=other)
    html = render(template, lang=lang, other_lang=other, t=words(lang),
                  switch_url=f"{switch.path}?{switch.query}",
                  publisher=platform_of(request).settings.publisher, **context)
    return HTMLResponse(html, status_code=status, headers={"Content-Language": lang})


def _problem(request: Request, lang: Lang, status: int, title: str, message: str
             ) -> HTMLResponse:
    return _page(request, lang, "problem.html", status, title=title, message=message)


def _bad_lang(request: Request) -> HTMLResponse:
    t = words(DEFAULT_LANG)
    return _problem(request, DEFAULT_LANG, 400, t["bad_request"],
                    t["bad_lang"].format(lang=request.query_params["lang"]))


@router.get("/catalogue")
async def catalogue(request: Request) -> HTMLResponse:
    lang = _lang(request)
    if lang is None:
        return _bad_lang(request)
    q = request.query_params.get("q", "").strip()
    if len(q) > MAX_QUERY:
        t = words(lang)
        return _problem(request, lang, 400, t["bad_request"],
                        t["long_query"].format(max=MAX_QUERY))
    found = sorted(search(platform_of(request).catalogue.datasets(), q),
                   key=lambda d: getattr(d.title, lang).casefold())
    return _page(request, lang, "catalogue.html", q=q, datasets=found, themes=THEMES,
                 licences=LICENCE_TEXTS)


@router.get("/catalogue/{dataset_id}")
async def dataset_page(dataset_id: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    if lang is None:
        return _bad_lang(request)
    platform = platform_of(request)
    try:
        dataset = platform.catalogue.get(dataset_id)
    except ResourceNotFound:
        t = words(lang)
        return _problem(request, lang, 404, t["not_found"],
                        t["no_dataset"].format(id=dataset_id))
    try:
        publication, preview = await _preview(platform, dataset)
    except (Conflict, BadRequestData):  # the dataset's fault as it stands, not the reader's
        t = words(lang)
        return _problem(request, lang, 409, t["withheld"], t["withheld_dataset"].format(
            id=dataset.id, contact=dataset.contact.name, email=dataset.contact.email))
    return _page(request, lang, "dataset.html", dataset=dataset, themes=THEMES,
                 licence=LICENCE_TEXTS[dataset.licence][lang],
                 frequency=FREQUENCIES[dataset.frequency],
                 hvd=HVD_LABELS[dataset.hvd_category] if dataset.hvd_category else None,
                 forms=FORMS, downloads=platform.usage.of(dataset.id),
                 columns=publication.columns, rows=preview,
                 has_places=bool(publication.places))


async def _preview(platform: Platform, dataset: Dataset
                   ) -> tuple[Publication, list[Record]]:
    """The dataset's publication and its first records, as its downloads publish them
    (a preview is not a download: it is not counted)."""
    publication = await resolve(dataset, platform.entities, platform.register,
                                platform.compiler.core)
    rows: list[Record] = []
    async with aclosing(published_rows(publication, platform.entities,
                                       now_micros(platform.entities.clock))) as published:
        async for row in published:
            rows.append(row)
            if len(rows) == PREVIEW_ROWS:
                break
    return publication, rows
