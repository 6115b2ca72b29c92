"""Secrets at rest: argon2id hashes for passwords and client secrets, a plain digest for
API keys (random 256-bit keys need no slow hash, and are checked on every request)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A hash to verify against when the account does not exist, so that the answer takes
# as long as for a wrong password and does not reveal which names exist.
_DECOY = _hasher.hash(secrets.token_urlsafe(16))


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def _verify(stored: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(stored or _DECOY, secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(stored: str | None, secret: str) -> bool:
    """Whether ``secret`` matches the argon2 hash ``stored`` (None: no such account);
    run off the event loop, as a verification takes tens of milliseconds of CPU."""
    return await asyncio.to_thread(_verify, stored, secret)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_digest(stored: str, key: str) -> bool:
    return hmac.compare_digest(stored, digest(key))
