"""Specification of the catalogue's pages as a browser receives them: HTML in Swedish
or English, searchable, every dataset with its facts, downloads and a preview of what it
publishes, and clear pages for what does not exist or cannot be understood."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import Page


def page(site: str, path: str, **params: str) -> tuple[httpx.Response, Page]:
    response = httpx.get(site + path, params=params or None)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response, Page(response.text)


def found(site: str, q: str, lang: str = "sv") -> list[str]:
    """The datasets a search lists, by the addresses of their pages."""
    _, html = page(site, "/catalogue", q=q, lang=lang)
    return sorted(h.split("?")[0].rsplit("/", 1)[-1] for h in html.hrefs()
                  if h.startswith("/catalogue/"))


def test_the_catalogue_is_in_swedish_unless_english_is_asked_for(site: str) -> None:
    response, html = page(site, "/catalogue")
    assert response.status_code == 200
    assert html.all("html")[0]["lang"] == "sv"
    assert "Gatubelysning" in response.text and "Street lighting" not in response.text
    english, html = page(site, "/catalogue", lang="en")
    assert html.all("html")[0]["lang"] == "en"
    assert "Street lighting" in english.text and "Gatubelysning" not in english.text


def test_a_link_switches_language_and_keeps_the_search(site: str) -> None:
    _, html = page(site, "/catalogue", q="vägar")
    switch = next(a for a in html.all("a") if a.get("hreflang") == "en")
    response, switched = page(site, switch["href"])
    assert switched.all("html")[0]["lang"] == "en"
    assert "Road segments" in response.text
    assert next(i for i in switched.all("input") if i["name"] == "q")["value"] == "vägar"


def test_the_search_box_is_labelled_and_searches_with_get(site: str) -> None:
    _, html = page(site, "/catalogue")
    form = html.all("form")[0]
    assert form["method"] == "get" and form["action"] == "/catalogue"
    label = html.all("label")[0]
    box = next(i for i in html.all("input") if i["name"] == "q")
    assert label["for"] == box["id"]
    assert "<label for=\"q\">Sök</label>" in httpx.get(site + "/catalogue").text


@pytest.mark.parametrize(("q", "lang", "datasets"), [
    ("", "sv", ["lamp-levels", "lamps", "markup", "roads"]),
    ("vägsegment", "sv", ["roads"]),  # a Swedish title
    ("ROAD", "sv", ["roads"]),  # an English title, on a Swedish page, in capitals
    ("linjer", "en", ["roads"]),  # a Swedish description, on an English page
    ("lighting", "sv", ["lamp-levels", "lamps", "markup"]),  # an English keyword
    ("ljusniv", "sv", ["lamp-levels"]),  # the start of a word
    ("stadens vägar", "sv", ["roads"]),  # every word must be found
    ("stadens lampor", "sv", []),
])
def test_search_finds_titles_descriptions_and_keywords_in_both_languages(
        site: str, q: str, lang: str, datasets: list[str]) -> None:
    assert found(site, q, lang) == datasets


def test_a_search_that_finds_nothing_says_so(site: str) -> None:
    response, html = page(site, "/catalogue", q="zebra")
    assert response.status_code == 200
    assert "Inget dataset matchar ”zebra”" in response.text
    assert "/catalogue?lang=sv" in html.hrefs()
    english, _ = page(site, "/catalogue", q="zebra", lang="en")
    assert "No dataset matches “zebra”" in english.text


def test_results_show_description_themes_licence_and_when_last_changed(site: str) -> None:
    response, _ = page(site, "/catalogue", q="lampa")
    assert "Belysningsnivå per lampa" in response.text
    assert "Energi" in response.text and "CC BY 4.0" in response.text
    modified = httpx.get(f"{site}/datasets/lamps").json()["modified"]
    assert f'<time datetime="{modified}">{modified[:10]}</time>' in response.text


def test_a_publishers_markup_is_shown_as_text(site: str) -> None:
    for path in ("/catalogue", "/catalogue/markup"):
        response, html = page(site, path)
        assert "<script>alert" not in response.text
        assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;Lampor" in response.text
        assert all(s.get("src", "").startswith("/static/") for s in html.all("script"))


def test_a_dataset_page_shows_what_a_reuser_needs_to_know(site: str) -> None:
    response, html = page(site, "/catalogue/lamps")
    assert response.status_code == 200
    text = response.text
    assert "<h1>Gatubelysning</h1>" in text and "Belysningsnivå per lampa" in text
    assert "belysning" in text  # keyword
    assert "Exempelkommunen (organisationsnummer 000000-0000)" in text
    assert "mailto:data@example.org" in html.hrefs()
    licence = next(a for a in html.all("a") if a.get("rel") == "license")
    assert licence["href"] == "https://creativecommons.org/licenses/by/4.0/deed.sv"
    for fact in ("Energi", "Varje timme", "longitud 18.0–18.3, latitud 59.3–59.5",
                 "Mobilitet"):
        assert fact in text
    english, _ = page(site, "/catalogue/lamps", lang="en")
    assert "Hourly" in english.text and "organisation number 000000-0000" in english.text


def test_every_distribution_is_linked_and_downloads(site: str) -> None:
    _, html = page(site, "/catalogue/lamps")
    links = [h for h in html.hrefs() if h.startswith("/datasets/lamps/")]
    assert links == [f"/datasets/lamps/{name}" for name in
                     ("data.csv", "data.geojson", "data.jsonld", "history.csv", "entities")]
    for link in links:
        assert httpx.get(site + link).status_code == 200, link


def test_the_page_counts_downloads_but_is_not_one(site: str) -> None:
    def downloads() -> int:
        return sum(httpx.get(f"{site}/datasets/roads").json()["downloads"].values())
    before = downloads()
    page(site, "/catalogue/roads")
    assert downloads() == before
    httpx.get(f"{site}/datasets/roads/data.csv")
    response, _ = page(site, "/catalogue/roads", lang="en")
    assert f"{before + 1} times" in response.text


def test_the_preview_shows_records_as_they_are_published(site: str) -> None:
    response, html = page(site, "/catalogue/lamps")
    header, *rows = html.rows
    assert header == ["id", "type", "observedAt", "illuminanceLevel", "location",
                      "powerState"]
    assert [row[0] for row in rows] == [f"urn:ngsi-ld:Streetlight:d{n}" for n in "123"]
    assert rows[0][3:] == ["10", "59.32931, 18.06861", "on"]
    assert "internal" not in response.text  # serviceNote is not published
    _, levels = page(site, "/catalogue/lamp-levels")
    assert levels.rows[0] == ["id", "type", "observedAt", "illuminanceLevel"]
    assert "<caption" in response.text


def test_a_map_is_drawn_only_for_data_with_places(site: str) -> None:
    _, lamps = page(site, "/catalogue/lamps")
    area = next(d for d in lamps.all("div") if d.get("id") == "map")
    assert area["aria-label"] == "Karta över platserna i Gatubelysning"
    assert area["data-geojson"] == "/datasets/lamps/data.geojson"
    _, levels = page(site, "/catalogue/lamp-levels")
    assert not [d for d in levels.all("div") if d.get("id") == "map"]
    assert not levels.all("script")


def test_every_asset_a_page_uses_is_served_by_the_platform(site: str) -> None:
    _, html = page(site, "/catalogue/lamps")
    assets = [s["src"] for s in html.all("script")] + \
        [link["href"] for link in html.all("link") if link.get("rel") == "stylesheet"]
    assert "/static/vendor/leaflet/leaflet.js" in assets
    for asset in assets:
        assert asset.startswith("/static/")
        assert httpx.get(site + asset).status_code == 200, asset


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    ("/catalogue/nowhere", {}, 404, "Det finns inget dataset ”nowhere” i katalogen."),
    ("/catalogue/nowhere", {"lang": "en"}, 404, "There is no dataset “nowhere”"),
    ("/catalogue", {"lang": "de"}, 400, "Språket ”de” finns inte; välj sv eller en."),
    ("/catalogue/lamps", {"lang": "<b>"}, 400, "Språket ”&lt;b&gt;” finns inte"),
    ("/catalogue", {"q": "x" * 201, "lang": "en"}, 400, "at most 200 characters"),
])
def test_what_cannot_be_shown_gets_a_page_saying_why(
        site: str, path: str, params: dict[str, str], status: int, message: str) -> None:
    response, html = page(site, path, **params)
    assert response.status_code == status
    assert message in response.text
    assert "/catalogue?lang=" in " ".join(html.hrefs())
