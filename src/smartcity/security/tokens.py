"""Bearer tokens: the platform's own (ES256 JWTs from its token endpoint) and those of a
city's OpenID Connect provider (RS256 or ES256, checked against its published keys).

Only the listed algorithms are accepted, so ``alg=none`` and an HMAC token signed with
a public key as its secret both fail; expiry, not-before, issuer and audience are
required and checked with a bounded clock skew.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from smartcity.core.ngsild.errors import Unauthorized
from smartcity.core.ngsild.storage import EntityStore
from smartcity.security.platform_secrets import shared_record
from smartcity.security.principal import Principal

log = logging.getLogger(__name__)
SIGNING_KIND = "auth-signing-key"
EXTERNAL_ALGORITHMS = ["RS256", "ES256"]
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# Tokens whose signature was checked, kept (until they expire) so that a client's next
# requests with the same token skip the signature check: it costs more than the rest of
# serving a small read. Past this many, the oldest are forgotten.
MAX_VERIFIED = 10_000


@dataclass(frozen=True)
class SigningKey:
    key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        return cls._with_kid(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls._with_kid(key)

    @classmethod
    def _with_kid(cls, key: ec.EllipticCurvePrivateKey) -> SigningKey:
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(key, hashlib.sha256(public).hexdigest()[:16])

    def pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}


async def signing_key(store: EntityStore) -> SigningKey:
    """The platform's token signing key, made on first start and shared by all workers."""
    def make() -> dict[str, Any]:
        key = SigningKey.generate()
        return {"pem": key.pem(), "kid": key.kid}
    return SigningKey.from_pem((await shared_record(store, SIGNING_KIND, make))["pem"])


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles`` in Keycloak tokens)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class ExternalIssuer:
    """A city's OpenID Connect provider, whose tokens the platform accepts."""

    issuer: str
    audience: str
    jwks_url: str = ""
    roles_claim: str = "roles"
    person_claim: str = ""
    tenants_claim: str = ""


@dataclass
class Tokens:
    """Issues the platform's tokens and checks those it is shown."""

    key: SigningKey
    issuer: str
    audience: str
    lifetime: int
    skew: int
    roles: frozenset[str]  # the roles the policy defines (others in a token are ignored)
    external: ExternalIssuer | None = None
    now: Callable[[], float] = time.time
    _jwks: jwt.PyJWKClient | None = field(default=None, init=False)
    _verified: dict[str, tuple[Principal, float]] = field(  # token -> (who, until)
        default_factory=dict, init=False)

    def issue(self, principal: Principal) -> dict[str, Any]:
        """An OAuth 2.0 token response for ``principal``."""
        issued = int(self.now())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": principal.subject,
                  "iat": issued, "nbf": issued, "exp": issued + self.lifetime,
                  "jti": secrets.token_hex(8), "roles": sorted(principal.roles)}
        if principal.tenants is not None:
            claims["tenants"] = sorted(principal.tenants)
        if principal.person:
            claims["person"] = principal.person
        if principal.client:
            claims["client_id"] = principal.client
        if principal.account:
            claims["acct"] = principal.account
        token = jwt.encode(claims, self.key.key, algorithm="ES256",
                           headers={"kid": self.key.kid})
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    async def validate(self, token: str) -> Principal:
        """The principal a bearer token stands for; Unauthorized if it is not valid."""
        known = self._verified.get(token)
        if known is not None and self.now() < known[1]:
            return known[0]
        principal, claims = await self._check(token)
        if len(self._verified) >= MAX_VERIFIED:
            for stale in list(self._verified)[:MAX_VERIFIED // 10]:
                del self._verified[stale]
        self._verified[token] = (principal, float(claims["exp"]))
        return principal

    async def _check(self, token: str) -> tuple[Principal, dict[str, Any]]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("The bearer token is not a JWT") from None
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        if issuer == self.issuer:
            claims = self._decode(token, self.key.key.public_key(), ["ES256"], self.issuer,
                                  self.audience)
            return _own_principal(claims), claims
        if self.external is not None and issuer == self.external.issuer:
            key = await self._external_key(token)
            claims = self._decode(token, key, EXTERNAL_ALGORITHMS, self.external.issuer,
                                  self.external.audience)
            return self._external_principal(claims, self.external), claims
        raise Unauthorized("The bearer token comes from an issuer this platform does not "
                           "trust")

    def _decode(self, token: str, key: Any, algorithms: list[str], issuer: str,
                audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=algorithms, issuer=issuer, audience=audience,
                leeway=self.skew, options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The bearer token is not meant for this platform "
                               "(audience)") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The bearer token is not valid: {exc}") from None
        return claims

    async def _external_key(self, token: str) -> Any:
        assert self.external is not None
        try:
            if self._jwks is None:
                url = self.external.jwks_url or await _discover_jwks(self.external.issuer)
                self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
            # PyJWKClient fetches with urllib: keep it off the event loop.
            signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("the identity provider's keys cannot be fetched: %s", exc)
            raise Unauthorized("The identity provider's keys cannot be fetched; the "
                               "token cannot be checked") from None
        except (jwt.PyJWKClientError, jwt.PyJWTError) as exc:
            raise Unauthorized(f"The bearer token's key is not known: {exc}") from None
        return signing.key

    def _external_principal(self, claims: dict[str, Any],
                            external: ExternalIssuer) -> Principal:
        roles = _claim(claims, external.roles_claim)
        roles = [roles] if isinstance(roles, str) else roles
        granted = frozenset(r for r in roles or () if isinstance(r, str)) & self.roles
        person = _claim(claims, external.person_claim) if external.person_claim else None
        client = claims.get("azp") or claims.get("client_id")
        # The provider's clients are named apart from local ones (consents name them).
        return Principal(f"oidc:{claims['sub']}", granted, _tenants(claims, external),
                         person if isinstance(person, str) else None,
                         client=f"oidc:{client}" if isinstance(client, str) else None,
                         via="oidc")


def _tenants(claims: dict[str, Any], external: ExternalIssuer) -> frozenset[str] | None:
    """The tenants a provider's token limits its caller to: None (any) unless the
    settings name a claim; then what it lists, and none at all if it is missing or not
    a list of names (a limit that cannot be read must not open every tenant)."""
    if not external.tenants_claim:
        return None
    claimed = _claim(claims, external.tenants_claim)
    if isinstance(claimed, str):
        return frozenset({claimed})
    if isinstance(claimed, list):
        return frozenset(t for t in claimed if isinstance(t, str))
    return frozenset()


def _own_principal(claims: dict[str, Any]) -> Principal:
    tenants = claims.get("tenants")
    return Principal(claims["sub"], frozenset(claims.get("roles", ())),
                     frozenset(tenants) if tenants is not None else None,
                     claims.get("person"), claims.get("client_id"), via="token",
                     account=str(claims.get("acct", "")))


async def _discover_jwks(issuer: str) -> str:
    """The JWKS address an OpenID provider publishes in its discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            response = await client.get(url)
            response.raise_for_status()
            return str(response.json()["jwks_uri"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise jwt.PyJWKClientConnectionError(
                f"no jwks_uri at {url}: {exc}") from None
