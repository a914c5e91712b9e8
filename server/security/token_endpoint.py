"""The token endpoint's logic (SMART Backend Services "Obtaining an access token"; RFC 6749 §4.4, §5).

Pure of HTTP: ``router.py`` parses the form and renders :class:`TokenRequestError` as the RFC 6749
§5.2 error JSON (the one place PriorGate answers with OAuth errors instead of an OperationOutcome,
because OAuth clients expect that shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from server.security.assertions import (
    AssertionPolicy,
    ClientAuthenticationError,
    verify_client_assertion,
)
from server.security.clients import ClientRegistry
from server.security.constants import CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_CLIENT_CREDENTIALS
from server.security.jwks import JwksCache
from server.security.keys import KeyProvider
from server.security.replay import ReplayStore
from server.security.scopes import ScopeSyntaxError, narrow, parse_scopes
from server.security.tokens import AccessTokenPolicy, IssuedToken, issue_access_token

OAuthErrorCode = Literal[
    "invalid_request", "invalid_client", "invalid_grant", "invalid_scope", "unsupported_grant_type"
]

# RFC 6749 §5.2: 400 for all, except invalid_client, which may be 401.
_STATUS: dict[str, int] = {"invalid_client": 401}


class TokenRequestError(Exception):
    """An OAuth 2.0 token error (RFC 6749 §5.2); ``description`` is safe to return."""

    def __init__(self, error: OAuthErrorCode, description: str, *, challenge: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error: OAuthErrorCode = error
        self.description = description
        # RFC 6749 §5.2: a failed Authorization-header authentication answers 401 with its scheme.
        self.headers: dict[str, str] = {"WWW-Authenticate": challenge} if challenge else {}

    @property
    def status(self) -> int:
        return _STATUS.get(self.error, 400)

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class TokenService:
    """Exchanges a client assertion for an access token. All collaborators are injected."""

    registry: ClientRegistry
    keys: KeyProvider
    replay: ReplayStore
    policy: AccessTokenPolicy
    now: Callable[[], datetime]
    jwks_cache: JwksCache | None = None
    assertion_policy: AssertionPolicy = field(default_factory=AssertionPolicy)

    async def exchange(self, form: Mapping[str, str], token_urls: Sequence[str]) -> IssuedToken:
        """Handle one token request; ``token_urls`` are the accepted assertion audiences."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise TokenRequestError("invalid_request", "grant_type is required")
        if grant_type != GRANT_TYPE_CLIENT_CREDENTIALS:
            raise TokenRequestError("unsupported_grant_type", "only client_credentials is supported")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE_JWT_BEARER:
            raise TokenRequestError(
                "invalid_client", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE_JWT_BEARER}"
            )
        assertion = form.get("client_assertion")
        if not assertion:
            raise TokenRequestError("invalid_client", "client_assertion is required")
        requested_text = form.get("scope", "")
        if not requested_text.strip():
            raise TokenRequestError("invalid_scope", "scope is required")
        try:
            requested = parse_scopes(requested_text)
        except ScopeSyntaxError as exc:
            raise TokenRequestError("invalid_scope", str(exc)) from None

        now = self.now()
        try:
            verified = await verify_client_assertion(
                assertion,
                audience=list(token_urls),
                registry=self.registry,
                replay=self.replay,
                now=now,
                jwks_cache=self.jwks_cache,
                policy=self.assertion_policy,
            )
        except ClientAuthenticationError as exc:
            raise TokenRequestError("invalid_client", str(exc)) from None
        client = verified.client
        if form.get("client_id") not in (None, client.client_id):
            raise TokenRequestError("invalid_client", "client_id does not match the client_assertion")

        if requested.restricted:
            raise TokenRequestError(
                "invalid_scope", "scopes with query restrictions (?param=value) are not supported"
            )
        granted = narrow(requested, parse_scopes(client.scopes))
        if not granted.resource_scopes:
            raise TokenRequestError("invalid_scope", "none of the requested scopes is granted to this client")
        return issue_access_token(client, granted, keys=self.keys, policy=self.policy, now=now)
