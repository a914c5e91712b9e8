"""CDS client JWT verification (CDS Hooks 2.0 §Trusting CDS Clients, CRD §Security).

Trusted issuers are configured with their JWKS (URL or inline); a ``jku`` header is followed only if it
is on that issuer's allow-list. Checks: ``alg`` in the issuer's algorithms (ES384/RS384 by default;
``none`` and HMAC always refused), ``kid`` present and in the JWKS, signature, ``iss``, ``aud`` equal to
the called service URL, ``exp``, ``iat`` (not in the future, not too old) and ``jti`` not seen before.
Time comes from an injected clock; JWKS documents are fetched with an injected ``httpx.AsyncClient``
and cached for a TTL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import jwt

from igs.outcome import Failure, OperationOutcomeError

RECOMMENDED_ALGORITHMS = frozenset({"ES384", "RS384"})
_NEVER = frozenset({"none", "HS256", "HS384", "HS512"})
_SUPPORTED = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
# The JWK members that define a public key (RFC 7518 §6): identical members, identical key.
_KEY_MEMBERS = ("kty", "crv", "x", "y", "n", "e", "alg")


def _segment(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _refuse("malformed token")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_segment(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(text))
    except ValueError as exc:
        raise _refuse("malformed token") from exc
    if not isinstance(value, dict):
        raise _refuse("malformed token")
    return value


def _refuse(reason: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(
        Failure.UNAUTHENTICATED,
        f"CDS client JWT refused: {reason}",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@dataclass(frozen=True)
class TrustedIssuer:
    """A CDS client allowed to call (CDS Hooks §Trusting CDS Clients): its keys and algorithms."""

    iss: str
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None  # inline JWKS exchanged out of band
    allowed_jku: frozenset[str] = frozenset()
    algorithms: frozenset[str] = RECOMMENDED_ALGORITHMS

    def __post_init__(self) -> None:
        if self.algorithms & _NEVER or not self.algorithms <= _SUPPORTED:
            raise ValueError(f"issuer {self.iss}: algorithms none/HMAC are not allowed for CDS clients")
        if self.jwks_url is None and self.jwks is None and not self.allowed_jku:
            raise ValueError(f"issuer {self.iss}: configure jwks_url, jwks or allowed_jku")


@dataclass(frozen=True)
class ClientIdentity:
    """The verified caller of one request."""

    iss: str
    tenant: str | None
    jti: str
    claims: Mapping[str, Any] = field(compare=False)


class JtiStore(Protocol):
    """Replay protection: remember a token id until it expires."""

    async def first_use(self, iss: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time (iss, jti) is seen; False on a replay."""
        ...


class InMemoryJtiStore:
    """A single-process JtiStore; use a shared store when running several workers."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], datetime] = {}
        self._max = max_entries

    async def first_use(self, iss: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        if len(self._seen) >= self._max:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        key = (iss, jti)
        previous = self._seen.get(key)
        if previous is not None and previous > now:
            return False
        self._seen[key] = expires_at
        return True


@dataclass(frozen=True)
class _CachedJwks:
    keys: dict[str, Mapping[str, Any]]
    fetched_at: datetime


class JwksCache:
    """JWKS documents by URL, fetched asynchronously and kept for ``ttl``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        now: Callable[[], datetime],
        *,
        ttl: timedelta = timedelta(minutes=10),
        min_refresh: timedelta = timedelta(seconds=30),
        timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._now = now
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._cache: dict[str, _CachedJwks] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, url: str, kid: str) -> Mapping[str, Any] | None:
        entry = self._cache.get(url)
        now = self._now()
        stale = entry is None or now - entry.fetched_at > self._ttl
        # An unknown kid may mean key rotation: refetch, but not more often than min_refresh.
        rotated = entry is not None and kid not in entry.keys and now - entry.fetched_at > self._min_refresh
        if stale or rotated:
            lock = self._locks.setdefault(url, asyncio.Lock())
            async with lock:
                entry = self._cache.get(url)
                if entry is None or self._now() - entry.fetched_at > self._min_refresh or stale:
                    entry = await self._fetch(url)
                    self._cache[url] = entry
        assert entry is not None
        return entry.keys.get(kid)

    async def _fetch(self, url: str) -> _CachedJwks:
        try:
            response = await self._client.get(
                url, timeout=self._timeout, headers={"Accept": "application/json"}
            )
            response.raise_for_status()
            document = json.loads(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse(f"JWKS {url} could not be fetched ({type(exc).__name__})") from exc
        return _CachedJwks(keys_by_kid(document), self._now())


def keys_by_kid(document: object) -> dict[str, Mapping[str, Any]]:
    """The keys of a JWKS document (RFC 7517 §5) by ``kid``; keys without one are unusable here."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        return {}
    return {k["kid"]: k for k in document["keys"] if isinstance(k, Mapping) and isinstance(k.get("kid"), str)}


class CdsClientVerifier:
    """Verifies the ``Authorization: Bearer <JWT>`` of each CDS Hooks call."""

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        client: httpx.AsyncClient,
        jti_store: JtiStore,
        now: Callable[[], datetime],
        *,
        leeway: timedelta = timedelta(seconds=30),
        max_age: timedelta = timedelta(minutes=10),
        jwks_ttl: timedelta = timedelta(minutes=10),
    ) -> None:
        self._issuers = {i.iss: i for i in issuers}
        self._jti = jti_store
        self._now = now
        self._leeway = leeway
        self._max_age = max_age
        self._jwks = JwksCache(client, now, ttl=jwks_ttl)
        self._parsed: dict[tuple[str, ...], tuple[Any, Any]] = {}

    async def verify(self, authorization: str | None, audience: str | Sequence[str]) -> ClientIdentity:
        """Verify the bearer JWT for a call to ``audience`` (the exact service URL); 401 on any failure.

        The compact JWS is parsed once (RFC 7515 §7.1) and its signature checked with PyJWT's algorithm
        implementations; the claims are then checked here against the injected clock.
        """
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _refuse("missing Bearer token")
        parts = authorization[7:].strip().split(".")
        if len(parts) != 3:
            raise _refuse("malformed token")
        header, claims = _json_segment(parts[0]), _json_segment(parts[1])
        signature = _segment(parts[2])
        alg = header.get("alg")
        if not isinstance(alg, str) or alg in _NEVER or alg.upper().startswith("HS") or alg not in _SUPPORTED:
            raise _refuse(f"algorithm {alg!r} is not allowed")
        if header.get("typ") not in (None, "JWT"):
            raise _refuse("typ must be JWT")
        if header.get("crit") is not None:
            raise _refuse("critical header extensions are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("kid is required")
        issuer = self._issuers.get(str(claims.get("iss")))
        if issuer is None:
            raise _refuse("issuer is not trusted")
        if alg not in issuer.algorithms:
            raise _refuse(f"algorithm {alg} is not configured for this issuer")
        jwk = await self._key(issuer, header.get("jku"), kid)
        algorithm, key = self._public_key(jwk, alg)
        try:
            valid = algorithm.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), key, signature)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _refuse("bad signature") from exc
        if not valid:
            raise _refuse("bad signature")
        expected = {audience} if isinstance(audience, str) else set(audience)
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in expected for a in auds):
            raise _refuse("aud is not this service's URL")
        return await self._check_time_and_replay(issuer, claims)

    def _public_key(self, jwk: Mapping[str, Any], alg: str) -> tuple[Any, Any]:
        """The algorithm and key object for a JWK, memoised (parsing a key costs more than verifying)."""
        cache_key = (alg, *(str(jwk.get(m)) for m in _KEY_MEMBERS))
        found = self._parsed.get(cache_key)
        if found is None:
            if jwk.get("alg") not in (None, alg):
                raise _refuse(f"key {jwk.get('kid')!r} is for {jwk.get('alg')}, not {alg}")
            algorithm = jwt.get_algorithm_by_name(alg)
            try:
                key = algorithm.from_jwk(dict(jwk))
            except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
                raise _refuse(f"key {jwk.get('kid')!r} does not fit {alg}") from exc
            if not hasattr(key, "verify"):
                raise _refuse("the JWK is not a public key")
            if len(self._parsed) > 256:
                self._parsed.clear()
            found = self._parsed[cache_key] = (algorithm, key)
        return found

    async def _key(self, issuer: TrustedIssuer, jku: object, kid: str) -> Mapping[str, Any]:
        if jku is not None:
            if not isinstance(jku, str) or jku not in issuer.allowed_jku:
                raise _refuse("jku is not on the issuer's allow-list")
            found = await self._jwks.key(jku, kid)
        elif issuer.jwks is not None:
            found = keys_by_kid(issuer.jwks).get(kid)
        elif issuer.jwks_url is not None:
            found = await self._jwks.key(issuer.jwks_url, kid)
        else:
            raise _refuse("the issuer publishes its keys only through jku, which the token lacks")
        if found is None:
            raise _refuse(f"unknown kid {kid!r}")
        return found

    async def _check_time_and_replay(
        self, issuer: TrustedIssuer, claims: Mapping[str, Any]
    ) -> ClientIdentity:
        now = self._now()
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)):
            raise _refuse("exp and iat must be numeric dates")
        if not isinstance(jti, str) or not jti:
            raise _refuse("jti is required")
        stamp = now.timestamp()
        leeway = self._leeway.total_seconds()
        if exp < stamp - leeway:
            raise _refuse("token expired")
        if iat > stamp + leeway:
            raise _refuse("iat is in the future")
        if iat < stamp - self._max_age.total_seconds():
            raise _refuse("token is too old")
        expires_at = datetime.fromtimestamp(exp, tz=now.tzinfo) + self._leeway
        if not await self._jti.first_use(issuer.iss, jti, expires_at, now):
            raise _refuse("jti replayed")
        tenant = claims.get("tenant")
        return ClientIdentity(issuer.iss, tenant if isinstance(tenant, str) else None, jti, claims)
