"""Validating an authorization request (SMART App Launch 2.1.0 "Obtain authorization code";
RFC 6749 §4.1.1, §4.1.2.1; RFC 7636 PKCE).

Two kinds of failure, as RFC 6749 §4.1.2.1 requires:

* :class:`UnsafeAuthorizationRequest`: the client or its redirect URI cannot be trusted (unknown
  ``client_id``, a ``redirect_uri`` not registered exactly): shown to the user as a 400 page, never
  redirected;
* :class:`RedirectedError`: anything else wrong, sent back to the verified redirect URI as ``error``,
  ``error_description`` and ``state``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlencode

from server.app_launch.apps import PatientApp, PatientApps
from server.security.scopes import ScopeSet, ScopeSyntaxError, narrow, parse_scopes

# The parameters of an authorization request PriorGate reads (carried through the sign-in form).
AUTHORIZE_PARAMETERS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)
PKCE_METHOD_S256: Final = "S256"
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters; a verifier is 43-128 unreserved ones.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_MAX_VALUE = 2048

AuthorizeErrorCode = Literal[
    "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope"
]


class UnsafeAuthorizationRequest(Exception):
    """The request cannot be answered by redirect (unknown client, unregistered redirect URI)."""


class RedirectedError(Exception):
    """An RFC 6749 §4.1.2.1 error response, to be sent to ``redirect_uri``."""

    def __init__(
        self, redirect_uri: str, error: AuthorizeErrorCode, description: str, state: str | None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.redirect_uri = redirect_uri
        self.error: AuthorizeErrorCode = error
        self.description = description
        self.state = state

    @property
    def location(self) -> str:
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return redirect_to(self.redirect_uri, params)


def redirect_to(redirect_uri: str, params: Mapping[str, str]) -> str:
    """``redirect_uri`` with ``params`` added to its query (RFC 6749 §3.1.2: keep the existing query)."""
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A valid request: the app, where to answer, and what the patient is asked to approve."""

    app: PatientApp
    redirect_uri: str
    state: str
    scopes: ScopeSet  # the requested scopes the app may receive (narrowed)
    code_challenge: str
    nonce: str | None
    parameters: tuple[tuple[str, str], ...]  # as received, to carry through the sign-in form

    def error(self, code: AuthorizeErrorCode, description: str) -> RedirectedError:
        return RedirectedError(self.redirect_uri, code, description, self.state)


def _single(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


def validate_authorization_request(
    pairs: Sequence[tuple[str, str]], *, apps: PatientApps, audience: str
) -> AuthorizationRequest:
    """Check an authorization request; ``audience`` is PriorGate's FHIR base URL (the only valid ``aud``).

    Raises :class:`UnsafeAuthorizationRequest` or :class:`RedirectedError`.
    """
    values, repeated = _single(pairs)
    if {"client_id", "redirect_uri"} & repeated:
        raise UnsafeAuthorizationRequest("client_id and redirect_uri must not be repeated")
    app = apps.get(values.get("client_id"))
    if app is None:
        raise UnsafeAuthorizationRequest("client_id does not name a registered app")
    redirect_uri = values.get("redirect_uri")
    if not redirect_uri:
        raise UnsafeAuthorizationRequest("redirect_uri is required")
    if redirect_uri not in app.redirect_uris:
        raise UnsafeAuthorizationRequest("redirect_uri is not registered for this app")

    state = values.get("state")

    def fail(code: AuthorizeErrorCode, description: str) -> RedirectedError:
        return RedirectedError(redirect_uri, code, description, state)

    if repeated & set(AUTHORIZE_PARAMETERS):
        raise fail("invalid_request", f"parameter {sorted(repeated)[0]} is repeated")
    if any(len(values.get(name, "")) > _MAX_VALUE for name in AUTHORIZE_PARAMETERS):
        raise fail("invalid_request", "a parameter is too long")
    response_type = values.get("response_type")
    if not response_type:
        raise fail("invalid_request", "response_type is required")
    if response_type != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if not state:
        raise fail("invalid_request", "state is required")
    aud = values.get("aud")
    if not aud:
        raise fail("invalid_request", "aud is required: the FHIR base URL of this server")
    if aud.rstrip("/") != audience.rstrip("/"):
        raise fail("invalid_request", "aud is not the FHIR base URL of this server")
    if values.get("code_challenge_method") != PKCE_METHOD_S256:
        raise fail("invalid_request", "PKCE is required: code_challenge_method must be S256")
    challenge = values.get("code_challenge", "")
    if not _CHALLENGE.match(challenge):
        raise fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier")
    try:
        requested = parse_scopes(values.get("scope", ""))
    except ScopeSyntaxError as exc:
        raise fail("invalid_scope", str(exc)) from None
    granted = narrow(requested, parse_scopes(app.scopes))
    unrestricted = ScopeSet(tuple(s for s in granted.resource_scopes if not s.restricted), granted.other)
    if not any(s.context == "patient" for s in unrestricted.resource_scopes):
        raise fail("invalid_scope", "no patient/ scope that this app may receive was requested")
    nonce = values.get("nonce") or None
    kept = tuple((name, values[name]) for name in AUTHORIZE_PARAMETERS if name in values)
    return AuthorizationRequest(app, redirect_uri, state, unrestricted, challenge, nonce, kept)
