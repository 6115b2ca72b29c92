"""/privacy/register: the public register of personal data (open to anyone)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.negotiation import JSON_LD, json_response
from smartcity.api.platform import platform_of
from smartcity.security.privacy_register import register_document

router = APIRouter(tags=["privacy"])


@router.get("/privacy/register", summary="What the city collects about people, why, on "
            "what legal basis and for how long")
async def register(request: Request) -> Response:
    platform = platform_of(request)
    return json_response(register_document(platform.register.entries,
                                           platform.settings.controller),
                         media=JSON_LD, context=...)
