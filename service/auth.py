"""Credentials: API tokens (random, stored as SHA-256), passwords (argon2), and origin checks."""

import functools
import hashlib
import re
import secrets
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

#: The fewest characters a password may have, at create-user and at import alike.
MIN_PASSWORD_LENGTH = 8

#: What the command line and the import take for an email: one @, no whitespace.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

#: Methods that cannot change data; the cross-site check leaves them alone.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """A new API token: 40 hex characters, 160 random bits, like the tokens of Obico's server."""
    return secrets.token_hex(20)


def token_digest(token: str) -> bytes:
    """What the database keeps of a token. Tokens are random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse_authorization(header: str) -> str | None:
    """The token in ``Bearer <token>`` or ``Token <token>``, or None for any other form."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "token") or not token or " " in token:
        return None
    return token


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a login takes as long either way."""
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a user without a password never matches."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def is_cross_site(headers, host: str, trusted_origins: tuple[str, ...]) -> str | None:
    """Why a request that changes data looks sent by another site, or None when it does not.

    Browsers say where a request comes from in Origin (or Referer) and Sec-Fetch-Site. A
    request that names no origin, as from curl, is not a browser's and passes.
    """
    fetch_site = headers.get("Sec-Fetch-Site", "").lower()
    origin = headers.get("Origin")
    if origin is None or origin == "null":
        referer = headers.get("Referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin and origin != "null":
        if origin in trusted_origins or urlsplit(origin).netloc == host:
            return None
        return f"origin {origin} is not this service's"
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site is {fetch_site}"
    if origin == "null":
        return "the request comes from an opaque origin"
    return None
