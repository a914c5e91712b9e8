"""Verifying ``private_key_jwt`` client assertions (SMART App Launch 2.1.0, Backend Services,
"Authenticating to the token endpoint"; RFC 7523 §3).

The assertion is a JWS signed with the client's private key: header ``alg`` (RS384 or ES384),
``kid``, optional ``jku``; claims ``iss`` = ``sub`` = client_id, ``aud`` = the token endpoint URL,
``exp`` at most five minutes ahead, ``jti`` used once. Time checks use the injected clock, not PyJWT's.
Nothing here logs the assertion.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt import PyJWK

from server.security.clients import ClientRegistry, RegisteredClient
from server.security.constants import CLIENT_ASSERTION_ALGORITHMS
from server.security.jwks import JwksCache, JwksError, select_key
from server.security.jws import MalformedJws, unverified_parts
from server.security.replay import ReplayStore, ReplayStoreFull

MAX_ASSERTION_BYTES = 16 * 1024
MAX_JTI_LENGTH = 255
_LAST_NUMERIC_DATE = 32503680000  # 3000-01-01T00:00:00Z


class ClientAuthenticationError(Exception):
    """The client assertion is not acceptable. ``str(exc)`` is safe to return to the client
    (it names the failed check, never key material or the assertion)."""


@dataclass(frozen=True)
class AssertionPolicy:
    """The rules a client assertion is checked against."""

    algorithms: tuple[str, ...] = CLIENT_ASSERTION_ALGORITHMS
    max_lifetime: timedelta = timedelta(minutes=5)
    leeway: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class VerifiedAssertion:
    client: RegisteredClient
    jti: str
    expires_at: datetime


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return unverified_parts(assertion)
    except MalformedJws:
        raise ClientAuthenticationError("client_assertion is not a well-formed JWT") from None


def _timestamp(claims: dict[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    moment = numeric_date(value)
    if moment is None:
        raise ClientAuthenticationError(f"client_assertion claim {name} must be a NumericDate")
    return moment


def numeric_date(value: Any) -> datetime | None:
    """A JWT NumericDate (RFC 7519 §2) as an aware datetime; None when it is not a usable number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _LAST_NUMERIC_DATE:  # also keeps date arithmetic with leeway from overflowing
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


async def verify_client_assertion(
    assertion: str,
    *,
    audience: str | Sequence[str],
    registry: ClientRegistry,
    replay: ReplayStore,
    now: datetime,
    jwks_cache: JwksCache | None = None,
    policy: AssertionPolicy = AssertionPolicy(),
) -> VerifiedAssertion:
    """Authenticate a client by its assertion; raise :class:`ClientAuthenticationError` on any failure.

    ``audience`` is the token endpoint URL (or the URLs it is reachable under).
    """
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise ClientAuthenticationError("client_assertion is too large")
    header, unverified = _unverified(assertion)
    algorithm = header.get("alg")
    # Checked before any key is touched: this is what stops alg=none and HMAC key confusion.
    if algorithm not in policy.algorithms:
        allowed = ", ".join(policy.algorithms)
        raise ClientAuthenticationError(f"client_assertion alg {algorithm!r} is not accepted (use {allowed})")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ClientAuthenticationError("client_assertion header has no kid")
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or unverified.get("sub") != client_id:
        raise ClientAuthenticationError("client_assertion iss and sub must both be the client_id")
    client = await registry.get(client_id)
    if client is None:
        raise ClientAuthenticationError("unknown client")

    key = await _client_key(client, kid, algorithm, header.get("jku"), jwks_cache)
    audiences = [audience] if isinstance(audience, str) else list(audience)
    try:
        claims = jwt.decode(
            assertion,
            key.key,
            algorithms=[algorithm],
            audience=audiences,
            issuer=client_id,
            options={
                "require": ["iss", "sub", "aud", "exp", "jti"],
                # time is checked below against the injected clock
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise ClientAuthenticationError("client_assertion aud is not this token endpoint") from None
    except jwt.MissingRequiredClaimError as exc:
        raise ClientAuthenticationError(f"client_assertion lacks the {exc.claim} claim") from None
    except jwt.InvalidSignatureError:
        raise ClientAuthenticationError("client_assertion signature does not verify") from None
    except jwt.PyJWTError:
        raise ClientAuthenticationError("client_assertion is not valid") from None

    expires_at = _check_times(claims, now, policy)
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise ClientAuthenticationError("client_assertion jti must be a non-empty string")
    try:
        first = await replay.first_use(client_id, jti, expires_at + policy.leeway, now)
    except ReplayStoreFull:
        raise ClientAuthenticationError("too many recent assertions; retry shortly") from None
    if not first:
        raise ClientAuthenticationError("client_assertion jti was already used")
    return VerifiedAssertion(client, jti, expires_at)


def _check_times(claims: dict[str, Any], now: datetime, policy: AssertionPolicy) -> datetime:
    expires_at = _timestamp(claims, "exp")
    assert expires_at is not None  # required above
    issued_at = _timestamp(claims, "iat")
    not_before = _timestamp(claims, "nbf")
    if expires_at + policy.leeway <= now:
        raise ClientAuthenticationError("client_assertion has expired")
    if expires_at - now > policy.max_lifetime + policy.leeway:
        raise ClientAuthenticationError("client_assertion exp is more than 5 minutes in the future")
    if issued_at is not None:
        if issued_at - policy.leeway > now:
            raise ClientAuthenticationError("client_assertion iat is in the future")
        if expires_at - issued_at > policy.max_lifetime:
            raise ClientAuthenticationError("client_assertion lifetime (exp - iat) exceeds 5 minutes")
    if not_before is not None and not_before - policy.leeway > now:
        raise ClientAuthenticationError("client_assertion is not yet valid (nbf)")
    return expires_at


async def _client_key(
    client: RegisteredClient, kid: str, algorithm: str, jku: Any, jwks_cache: JwksCache | None
) -> PyJWK:
    if client.jwks is not None:
        if jku is not None:
            raise ClientAuthenticationError("client_assertion jku does not match the registered keys")
        key = select_key(dict(client.jwks), kid, algorithm)
    else:
        assert client.jwks_url is not None
        # SMART: a jku header is honoured only when it is the registered JWKS URL (an allow-list of one).
        if jku is not None and jku != client.jwks_url:
            raise ClientAuthenticationError("client_assertion jku is not the registered jwks_url")
        if jwks_cache is None:
            raise ClientAuthenticationError("this server cannot fetch client key sets")
        try:
            key = await jwks_cache.key(client.jwks_url, kid, algorithm)
        except JwksError as exc:
            raise ClientAuthenticationError(str(exc)) from None
    if key is None:
        raise ClientAuthenticationError(f"no registered key with kid {kid!r} for alg {algorithm}")
    return key


def sign_client_assertion(
    client_id: str,
    token_url: str,
    private_key: Any,
    *,
    algorithm: str,
    kid: str,
    now: datetime,
    lifetime: timedelta = timedelta(minutes=5),
    jti: str | None = None,
) -> str:
    """The client side: a ``private_key_jwt`` assertion for ``client_id`` (used by the token CLI,
    the demo and tests). ``private_key`` is a ``cryptography`` private key or PEM bytes."""
    issued = int(now.timestamp())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})
