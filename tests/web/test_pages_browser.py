"""The catalogue's pages in a real browser (Debian's Chromium, headless, driven by
Playwright): what a visitor sees and can do, by mouse and by keyboard, with nothing
loaded from anywhere but the platform."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.web.conftest import catalogue_site

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's own browser download needs a network; Debian's Chromium is used.
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (scripts/install-chromium)"
        if os.environ.get("SMARTCITY_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The pages are the same on any store: one backend is enough in a browser.
    with catalogue_site(str(tmp_path_factory.mktemp("pages") / "city.db")) as url:
        yield url


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A fresh tab on the platform that may load nothing from anywhere else."""
    context = browser.new_context(base_url=site)
    elsewhere: list[str] = []
    context.route(lambda url: not url.startswith(site),
                  lambda route: (elsewhere.append(route.request.url), route.abort()))
    yield context.new_page()
    context.close()
    assert elsewhere == []


def test_a_visitor_searches_opens_a_dataset_and_sees_its_records(page: Page) -> None:
    page.goto("/catalogue")
    page.get_by_label("Sök", exact=True).fill("belysning")
    page.get_by_role("button", name="Sök").click()
    expect(page.get_by_role("status")).to_have_text("3 dataset matchar ”belysning”")
    page.get_by_role("link", name="Gatubelysning").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gatubelysning")
    table = page.get_by_role("table", name="De första 3 posterna som publiceras just nu")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.get_by_role("rowheader")).to_have_text(
        [f"urn:ngsi-ld:Streetlight:d{n}" for n in "123"])
    page.get_by_role("link", name="In English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Street lighting")


@pytest.mark.parametrize(("dataset", "drawn", "count"), [
    ("lamps", ".leaflet-marker-icon", 3),  # points, as markers
    ("roads", "path.leaflet-interactive", 2),  # lines, as SVG paths
])
def test_the_map_draws_every_published_place_in_view(page: Page, dataset: str, drawn: str,
                                                     count: int) -> None:
    page.goto(f"/catalogue/{dataset}")
    area = page.get_by_role("region", name="Karta över platserna i")
    places = area.locator(drawn)
    expect(places).to_have_count(count)
    expect(area.locator(".leaflet-tile")).to_have_count(0)
    box = area.bounding_box()
    assert box is not None
    for place in places.all():
        inside = place.bounding_box()
        assert inside is not None
        assert box["x"] <= inside["x"] and inside["x"] + inside["width"] <= \
            box["x"] + box["width"]
        assert box["y"] <= inside["y"] and inside["y"] + inside["height"] <= \
            box["y"] + box["height"]


def test_drawing_the_map_is_not_a_download_and_following_a_link_is(page: Page,
                                                                    site: str) -> None:
    def downloads() -> int:
        return sum(httpx.get(f"{site}/datasets/roads").json()["downloads"].values())
    before = downloads()
    page.goto("/catalogue/roads")
    expect(page.locator("path.leaflet-interactive")).to_have_count(2)
    assert downloads() == before
    with page.expect_download():
        page.get_by_role("link", name="Senaste värden (CSV)").click()
    assert downloads() == before + 1


def test_download_links_answer(page: Page) -> None:
    page.goto("/catalogue/lamps")
    for name in ("Senaste värden (CSV)", "Historik (CSV)"):
        href = page.get_by_role("link", name=name).get_attribute("href")
        assert href is not None
        response = page.request.get(href)
        assert response.status == 200, href
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text().startswith("id,")


def test_the_keyboard_reaches_the_content_and_focus_is_visible(page: Page) -> None:
    page.goto("/catalogue")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Hoppa till innehållet")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert skip.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    # The first thing in the content that takes focus: past the navigation.
    expect(page.get_by_label("Sök", exact=True)).to_be_focused()
