"""JWK Sets: picking the key a JWS names, and an async, caching JWKS fetcher.

PyJWT's ``PyJWKClient`` is synchronous (urllib), so remote key sets are fetched here with an injected
``httpx.AsyncClient``, tight timeouts, a TTL cache per URL and a refetch cooldown so an attacker cannot
make PriorGate hammer a client's JWKS endpoint with unknown ``kid`` values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWTError

log = logging.getLogger("priorgate.security")

# Outbound calls get short timeouts: a slow JWKS host must not hold a token request open.
DEFAULT_JWKS_TIMEOUT = httpx.Timeout(3.0, connect=2.0)
MAX_JWKS_BYTES = 256 * 1024


class JwksError(Exception):
    """A key set could not be fetched or a key could not be used; the message is safe to show."""


# RFC 7518 §3.1: each JWS algorithm fixes the key type, and for ECDSA the curve.
_KEY_SHAPE: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}


def _fits(jwk: dict[str, Any], algorithm: str) -> bool:
    shape = _KEY_SHAPE.get(algorithm)
    if shape is None:
        return False
    kty, crv = shape
    return jwk.get("kty") == kty and (crv is None or jwk.get("crv") == crv)


def select_key(jwks: dict[str, Any], kid: str, algorithm: str) -> PyJWK | None:
    """The key ``kid`` usable for ``algorithm``, or None; keys whose ``alg``/``use`` disagree are skipped."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return None
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            continue
        if jwk.get("alg") not in (None, algorithm) or jwk.get("use") not in (None, "sig"):
            continue
        if "d" in jwk or "p" in jwk:  # a private key published by mistake is never trusted
            continue
        if not _fits(jwk, algorithm):
            continue
        try:
            return PyJWK(jwk, algorithm=algorithm)
        except (PyJWTError, ValueError, TypeError):
            continue
    return None


@dataclass
class _Entry:
    jwks: dict[str, Any]
    fetched_at: datetime


@dataclass
class JwksCache:
    """Fetches and caches JWK Sets by URL (client ``jwks_url`` registrations and external issuers).

    ``http`` is injected (the app owns its lifetime); ``now`` is the clock. A cached set is reused for
    ``ttl``; an unknown ``kid`` triggers at most one refetch per ``refetch_cooldown`` per URL.
    """

    http: httpx.AsyncClient
    now: Callable[[], datetime]
    ttl: timedelta = timedelta(minutes=5)
    refetch_cooldown: timedelta = timedelta(seconds=30)
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_JWKS_TIMEOUT)
    _entries: dict[str, _Entry] = field(default_factory=dict)

    async def get(self, url: str, *, force: bool = False) -> dict[str, Any]:
        entry = self._entries.get(url)
        now = self.now()
        if entry is not None:
            age = now - entry.fetched_at
            if age < self.ttl and (not force or age < self.refetch_cooldown):
                return entry.jwks
        jwks = await self._fetch(url)
        self._entries[url] = _Entry(jwks, now)
        return jwks

    async def key(self, url: str, kid: str, algorithm: str) -> PyJWK | None:
        """The key ``kid`` from the set at ``url``, refetching once (rate-limited) when it is unknown."""
        key = select_key(await self.get(url), kid, algorithm)
        if key is None:
            key = select_key(await self.get(url, force=True), kid, algorithm)
        return key

    async def _fetch(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("JWKS fetch failed: %s (%s)", url, type(exc).__name__)
            raise JwksError(f"could not fetch the JWK Set at {url}") from None
        if response.status_code != 200:
            raise JwksError(f"the JWK Set at {url} answered HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksError(f"the JWK Set at {url} is too large")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise JwksError(f"the JWK Set at {url} is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise JwksError(f"the document at {url} is not a JWK Set")
        return body
