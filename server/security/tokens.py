"""Access tokens: issuing PriorGate's own short-lived JWTs, and verifying bearer tokens.

Two modes sit behind one :class:`AccessTokenVerifier` protocol:

* :class:`LocalTokenVerifier` checks tokens PriorGate issued itself (RFC 9068 JWT access tokens, signed
  with the ``KeyProvider`` key, ``aud`` = the FHIR base URL);
* :class:`ExternalTokenVerifier` checks tokens from a configured external authorization server (issuer
  + JWKS URL, fetched asynchronously and cached), taking tenants from a configured claim.

Both return a :class:`~server.security.principal.Principal`. Tokens are never logged.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt

from server.security.assertions import numeric_date
from server.security.clients import RegisteredClient
from server.security.constants import (
    ACCESS_TOKEN_JWT_TYPE,
    CLAIM_CLIENT_ID,
    CLAIM_PATIENT,
    CLAIM_ROLES,
    CLAIM_SCOPE,
    CLAIM_TENANTS,
    TOKEN_TYPE_BEARER,
)
from server.security.jwks import JwksCache, JwksError
from server.security.jws import MalformedJws, unverified_header
from server.security.keys import KeyProvider
from server.security.principal import Principal, kind_of
from server.security.scopes import Scope, ScopeSet, ScopeSyntaxError, parse_scope

MAX_TOKEN_BYTES = 16 * 1024
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id


class InvalidTokenError(Exception):
    """The bearer token is not acceptable (RFC 6750 §3.1 ``invalid_token``); message safe to show."""


class AccessTokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The principal a bearer token stands for; raises :class:`InvalidTokenError`."""
        ...


@dataclass(frozen=True)
class AccessTokenPolicy:
    """``issuer`` is PriorGate's base URL; ``audience`` the FHIR base URL the tokens are good for."""

    issuer: str
    audience: str
    lifetime: timedelta = timedelta(minutes=5)
    leeway: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class IssuedToken:
    """A token response body (RFC 6749 §5.1, SMART Backend Services "Response")."""

    access_token: str
    expires_in: int
    scope: str
    jti: str
    token_type: str = TOKEN_TYPE_BEARER

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def issue_access_token(
    client: RegisteredClient,
    scopes: ScopeSet,
    *,
    keys: KeyProvider,
    policy: AccessTokenPolicy,
    now: datetime,
    jti: str | None = None,
    patient: str | None = None,
    subject: str | None = None,
) -> IssuedToken:
    """Sign an access token for ``client`` with the granted ``scopes`` (already narrowed).

    ``patient`` (a Patient id) is the SMART launch context of ``patient/`` scopes, kept in the
    ``patient`` claim; ``subject`` is the end user (``sub``), when there is one."""
    key = keys.signing_key()
    token_id = jti or uuid.uuid4().hex
    issued = int(now.timestamp())
    lifetime = int(policy.lifetime.total_seconds())
    scope = scopes.to_string()
    claims = {
        "iss": policy.issuer,
        "sub": subject or client.client_id,
        "aud": policy.audience,
        "exp": issued + lifetime,
        "iat": issued,
        "jti": token_id,
        CLAIM_CLIENT_ID: client.client_id,
        CLAIM_SCOPE: scope,
        CLAIM_TENANTS: sorted(client.tenants),
        CLAIM_ROLES: sorted(client.roles),
    }
    if patient is not None:
        claims[CLAIM_PATIENT] = patient
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_JWT_TYPE},
    )
    return IssuedToken(token, lifetime, scope, token_id)


def lenient_scopes(raw: Any) -> tuple[Scope, ...]:
    """SMART scopes from a ``scope`` string or ``scp`` list; foreign scopes (``email``) are skipped."""
    items = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    out: list[Scope] = []
    for item in items:
        if not isinstance(item, str):
            continue
        try:
            scope = parse_scope(item)
        except ScopeSyntaxError:
            continue
        if scope is not None:
            out.append(scope)
    return tuple(out)


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split()) if value else frozenset()
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def _decode(
    token: str,
    key: Any,
    *,
    algorithm: str,
    audience: str | Sequence[str],
    issuer: str,
    now: datetime,
    leeway: timedelta,
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={
                "require": ["iss", "aud", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise InvalidTokenError("the access token is not for this server (aud)") from None
    except jwt.InvalidIssuerError:
        raise InvalidTokenError("the access token issuer is not trusted") from None
    except jwt.PyJWTError:
        raise InvalidTokenError("the access token is not valid") from None
    expires_at = numeric_date(claims.get("exp"))
    if expires_at is None:
        raise InvalidTokenError("the access token exp is not a NumericDate")
    if expires_at + leeway <= now:
        raise InvalidTokenError("the access token has expired")
    if "nbf" in claims:
        not_before = numeric_date(claims["nbf"])
        if not_before is None or not_before - leeway > now:
            raise InvalidTokenError("the access token is not yet valid")
    return claims


def _header(token: str, algorithms: Sequence[str]) -> tuple[str, str, dict[str, Any]]:
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError("the access token is too large")
    try:
        header = unverified_header(token)
    except MalformedJws:
        raise InvalidTokenError("the access token is not a JWT") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidTokenError("the access token algorithm is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("the access token has no kid")
    return alg, kid, header


@dataclass(frozen=True)
class LocalTokenVerifier:
    """Verifies access tokens PriorGate issued with :func:`issue_access_token`."""

    keys: KeyProvider
    policy: AccessTokenPolicy
    now: Callable[[], datetime]

    async def verify(self, token: str) -> Principal:
        verification = self.keys.verification_keys()
        alg, kid, header = _header(token, tuple({k.algorithm for k in verification}))
        key = next((k for k in verification if k.kid == kid and k.algorithm == alg), None)
        if key is None:
            raise InvalidTokenError("the access token was not signed by a current key")
        if header.get("typ") != ACCESS_TOKEN_JWT_TYPE:
            raise InvalidTokenError("the access token typ is not at+jwt")
        claims = _decode(
            token,
            key.private_key.public_key(),
            algorithm=alg,
            audience=self.policy.audience,
            issuer=self.policy.issuer,
            now=self.now(),
            leeway=self.policy.leeway,
        )
        client_id = claims.get(CLAIM_CLIENT_ID) or claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidTokenError("the access token names no client")
        scopes = lenient_scopes(claims.get(CLAIM_SCOPE))
        return Principal(
            client_id=client_id,
            tenants=_strings(claims.get(CLAIM_TENANTS)),
            scopes=scopes,
            roles=_strings(claims.get(CLAIM_ROLES)),
            kind=kind_of(scopes),
            subject=str(claims.get("sub", client_id)),
            issuer=self.policy.issuer,
            token_id=str(claims.get("jti", "")),
            patient=patient_claim(claims),
        )


@dataclass(frozen=True)
class ExternalIssuer:
    """An external authorization server PriorGate trusts (settings: issuer, JWKS URL, claim names).

    ``tenant_claim`` names the claim holding the caller's organization id(s) (string, space-separated
    string or list); a token without tenants is refused, so no token is ever tenant-less.
    """

    issuer: str
    jwks_url: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256", "RS384", "ES256", "ES384")
    tenant_claim: str = CLAIM_TENANTS
    roles_claim: str = CLAIM_ROLES
    client_id_claim: str = CLAIM_CLIENT_ID
    leeway: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class ExternalTokenVerifier:
    """Verifies access tokens from an :class:`ExternalIssuer` against its (cached) JWKS."""

    issuer: ExternalIssuer
    jwks: JwksCache
    now: Callable[[], datetime]

    async def verify(self, token: str) -> Principal:
        alg, kid, _ = _header(token, self.issuer.algorithms)
        try:
            key = await self.jwks.key(self.issuer.jwks_url, kid, alg)
        except JwksError:
            raise InvalidTokenError("the authorization server's keys are unavailable") from None
        if key is None:
            raise InvalidTokenError("the access token kid is not among the issuer's keys")
        claims = _decode(
            token,
            key.key,
            algorithm=alg,
            audience=self.issuer.audience,
            issuer=self.issuer.issuer,
            now=self.now(),
            leeway=self.issuer.leeway,
        )
        tenants = _strings(claims.get(self.issuer.tenant_claim))
        if not tenants:
            raise InvalidTokenError(f"the access token has no {self.issuer.tenant_claim} claim")
        client_id = claims.get(self.issuer.client_id_claim) or claims.get("azp") or claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidTokenError("the access token names no client")
        scopes = lenient_scopes(claims.get("scope", claims.get("scp")))
        return Principal(
            client_id=client_id,
            tenants=tenants,
            scopes=scopes,
            roles=_strings(claims.get(self.issuer.roles_claim)),
            kind=kind_of(scopes),
            subject=str(claims.get("sub", client_id)),
            issuer=self.issuer.issuer,
            token_id=str(claims.get("jti", "")),
            patient=patient_claim(claims),
        )


def patient_claim(claims: dict[str, Any]) -> str | None:
    """The SMART ``patient`` launch-context claim (a Patient id, SMART App Launch 2.1.0 "Launch context
    arrives with your access_token"), or ``None`` when absent or not a plain id."""
    value = claims.get(CLAIM_PATIENT)
    if not isinstance(value, str):
        return None
    value = value.strip().removeprefix("Patient/")
    return value if _FHIR_ID.match(value) else None


@dataclass
class CachingVerifier:
    """Remembers the principal of each token verified until the token's ``exp``, so a client sending
    the same token on every call pays for one signature check (per process), not one per request.

    Only successfully verified tokens are kept, keyed by the whole token; an entry is dropped at
    ``exp`` (no leeway), and the oldest entries go first beyond ``max_entries``.
    """

    inner: AccessTokenVerifier
    now: Callable[[], datetime]
    max_entries: int = 4096
    _seen: dict[str, tuple[Principal, float]] = field(default_factory=dict)

    async def verify(self, token: str) -> Principal:
        hit = self._seen.get(token)
        if hit is not None:
            known, until = hit
            if self.now().timestamp() < until:
                return known
            self._seen.pop(token, None)
        principal = await self.inner.verify(token)
        expires = _unverified_exp(token)
        if expires is not None:
            while len(self._seen) >= self.max_entries:
                self._seen.pop(next(iter(self._seen)))
            self._seen[token] = (principal, expires)
        return principal


def _unverified_exp(token: str) -> float | None:
    """The ``exp`` of a token whose signature was just verified (payload read without checking again)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
