"""Specification of the landing page and the API description a visitor finds first."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx

from smartcity import __version__


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def page_links(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


def test_landing_page_is_html_linking_the_ngsi_ld_api_and_the_docs(base_url: str) -> None:
    response = httpx.get(base_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert __version__ in response.text
    hrefs = page_links(response.text)
    assert any(href.startswith("/ngsi-ld/v1/") for href in hrefs)
    assert "/docs" in hrefs


def test_every_link_on_the_landing_page_leads_somewhere(base_url: str) -> None:
    hrefs = page_links(httpx.get(base_url + "/").text)
    assert hrefs
    with httpx.Client(base_url=base_url) as http:
        for href in hrefs:
            assert http.get(href).status_code == 200, href


def test_the_docs_are_served_as_html(base_url: str) -> None:
    response = httpx.get(base_url + "/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text


def test_the_docs_read_every_operation_and_load_nothing_from_elsewhere(base_url: str
                                                                        ) -> None:
    html = httpx.get(base_url + "/docs").text
    assert "<code>GET /ngsi-ld/v1/entities/{entity_id}</code>" in html
    assert "Retrieve an entity" in html
    assert '<a href="#ngsi-ld-v1-entities">/ngsi-ld/v1/entities</a>' in html
    assert "<code>POST /iot/devices</code>" in html
    assert 'src="' not in html and 'href="http' not in html  # no script, no other host


def test_openapi_describes_the_ngsi_ld_api(base_url: str) -> None:
    response = httpx.get(base_url + "/openapi.json")
    assert response.status_code == 200
    description = response.json()
    assert description["openapi"].startswith("3.")
    assert description["info"]["version"] == __version__
    paths = description["paths"]
    assert {"post", "get"} <= set(paths["/ngsi-ld/v1/entities"])
    assert "/ngsi-ld/v1/entityOperations/upsert" in paths
    assert "/" not in paths
