"""Authentication and access control of the platform, wired together: who the caller
is (``authenticate``), what they may do (``guard``), how often (``limit``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from smartcity.core.ngsild.errors import Unauthorized
from smartcity.core.rate_limit import RateLimit
from smartcity.security.accounts import Accounts
from smartcity.security.assignments import AssignmentLookup
from smartcity.security.audit import AuditLog
from smartcity.security.audit_acts import AuditActs
from smartcity.security.consents import Consents
from smartcity.security.guard import Guard
from smartcity.security.policy import Policy
from smartcity.security.principal import PUBLIC, Principal
from smartcity.security.tokens import Tokens


@dataclass
class Gatekeeper:
    policy: Policy
    accounts: Accounts
    tokens: Tokens
    consents: Consents
    guard: Guard
    limit: RateLimit
    audit: AuditLog
    acts: AuditActs
    assignments: AssignmentLookup
    # Self-service API keys, per address: a few at once, then one every ten minutes.
    signups: RateLimit = field(default_factory=lambda: RateLimit(1 / 600, 5))

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller a request's credentials name: a bearer token (``Authorization:
        Bearer``) or an API key (``X-API-Key``, or ``Authorization: ApiKey``); the
        anonymous public without credentials. Unauthorized for bad credentials."""
        authorization = headers.get("authorization")
        if authorization is None:
            key = headers.get("x-api-key")
            return PUBLIC if key is None else self._api_key(key)
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and credential:
            principal = await self.tokens.validate(credential)
            if principal.via == "token" and not self.accounts.holds(principal.subject,
                                                                    principal.account):
                raise Unauthorized("The account of this token no longer exists")
            return principal
        if scheme.lower() == "apikey" and credential:
            return self._api_key(credential)
        raise Unauthorized("Unsupported Authorization header: use 'Bearer <token>' or "
                           "'ApiKey <key>'")

    def active(self, principal: Principal) -> bool:
        """Whether a principal kept by the platform (a subscription's owner) still
        stands: a local account must still exist; others the platform cannot judge."""
        kind = principal.subject.partition(":")[0]
        return kind not in ("user", "client", "apikey") or \
            self.accounts.holds(principal.subject, principal.account)

    def _api_key(self, key: str) -> Principal:
        principal = self.accounts.api_key(key.strip())
        if principal is None:
            raise Unauthorized("Unknown API key")
        return principal
