"""NGSI-LD error types (ETSI GS CIM 009, clause 5.5.2), raised by the core and
turned into RFC 7807 ProblemDetails at the HTTP edge."""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of every error the API answers with a ProblemDetails body."""

    name: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", *, instance: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.instance = instance
        self.extra = extra

    @property
    def type(self) -> str:
        return ERROR_BASE + self.name

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if self.instance:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


class InvalidRequest(NgsiLdError):
    name, status, title = "InvalidRequest", 400, "Invalid request"


class BadRequestData(NgsiLdError):
    name, status, title = "BadRequestData", 400, "Bad request data"


class AlreadyExists(NgsiLdError):
    name, status, title = "AlreadyExists", 409, "Already exists"


class OperationNotSupported(NgsiLdError):
    name, status, title = "OperationNotSupported", 422, "Operation not supported"


class ResourceNotFound(NgsiLdError):
    name, status, title = "ResourceNotFound", 404, "Resource not found"


class TooManyResults(NgsiLdError):
    name, status, title = "TooManyResults", 403, "Too many results"


class NoMultiTypeSupport(NgsiLdError):
    name, status, title = "NoMultiTypeSupport", 400, "No multi-type support"


class NonexistentTenant(NgsiLdError):
    name, status, title = "NonexistentTenant", 404, "Nonexistent tenant"


class LengthRequired(NgsiLdError):
    name, status, title = "LengthRequired", 411, "Length required"


class LdContextNotAvailable(NgsiLdError):
    # V1.9.1 Table 6.3.2-1 maps LdContextNotAvailable to 504 (it was 503 before V1.8.1).
    name, status, title = "LdContextNotAvailable", 504, "@context not available"


class NotAcceptable(NgsiLdError):
    # Not an NGSI-LD error type: HTTP 406, kept in the same family for one handler.
    name, status, title = "NotAcceptable", 406, "Not acceptable"

    @property
    def type(self) -> str:
        return "https://uri.etsi.org/ngsi-ld/errors/NotAcceptable"


class UnsupportedMediaType(NgsiLdError):
    name, status, title = "UnsupportedMediaType", 415, "Unsupported media type"


class PayloadTooLarge(NgsiLdError):
    name, status, title = "PayloadTooLarge", 413, "Payload too large"


class Conflict(NgsiLdError):
    name, status, title = "Conflict", 409, "Conflict"


class InternalError(NgsiLdError):
    pass


# Access control answers. NGSI-LD defines no error types for them, so they carry the
# platform's own type URIs, in the same ProblemDetails shape.
PLATFORM_ERROR_BASE = "urn:smartcity:error:"


class Unauthorized(NgsiLdError):
    """No valid credentials: the caller must authenticate (HTTP 401)."""

    name, status, title = "Unauthorized", 401, "Authentication required"

    @property
    def type(self) -> str:
        return PLATFORM_ERROR_BASE + self.name


class AccessDenied(NgsiLdError):
    """Authenticated, but the policy does not let this caller do this (HTTP 403)."""

    name, status, title = "AccessDenied", 403, "Access denied"

    @property
    def type(self) -> str:
        return PLATFORM_ERROR_BASE + self.name


class TooManyRequests(NgsiLdError):
    name, status, title = "TooManyRequests", 429, "Too many requests"

    @property
    def type(self) -> str:
        return PLATFORM_ERROR_BASE + self.name
