"""The landing page: what this server is and where its APIs are."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from smartcity import __version__

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>smartcity</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;
line-height:1.5;color:#1b1b1b}}code{{background:#f2f2f2;padding:0 .2rem}}</style></head>
<body>
<main>
<h1>smartcity <small>{version}</small></h1>
<p>An open platform for a smart and connected city: city state as NGSI-LD entities.</p>
<ul>
<li><a href="/ngsi-ld/v1/entities?type=Streetlight">NGSI-LD API</a>
 (<code>/ngsi-ld/v1/</code>, ETSI GS CIM 009)</li>
<li><a href="/ngsi-ld/v1/types">Entity types</a> and
 <a href="/ngsi-ld/v1/attributes">attributes</a> in this city</li>
<li><a href="/catalogue?lang=en">Open data catalogue</a> (search, preview and download
 the city's open datasets)</li>
<li><a href="/docs">API documentation</a> (<a href="/openapi.json">OpenAPI</a>)</li>
</ul>
</main>
</body>
</html>
"""


@router.get("/")
async def landing() -> HTMLResponse:
    return HTMLResponse(PAGE.format(version=__version__))
