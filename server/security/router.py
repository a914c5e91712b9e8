"""HTTP endpoints of the security layer: SMART discovery, the token endpoint, PriorGate's JWKS.

``build_security_router`` returns an ``APIRouter`` the app mounts at the root. Token-endpoint errors
are RFC 6749 §5.2 JSON, not OperationOutcomes: OAuth clients parse that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from server.security.constants import FHIR_BASE_PATH, JWKS_PATH, SMART_CONFIGURATION_PATH, TOKEN_PATH
from server.security.keys import KeyProvider, jwks_of
from server.security.smart_configuration import DEFAULT_SCOPES_SUPPORTED, smart_configuration
from server.security.token_endpoint import TokenRequestError, TokenService

MAX_TOKEN_REQUEST_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class MoreGrants(Protocol):
    """More grant types of the token endpoint (the patient authorization, ``server.app_launch``)."""

    @property
    def grant_types(self) -> frozenset[str]: ...

    async def exchange(
        self, form: Mapping[str, str], authorization: str | None, address: str | None = None
    ) -> dict[str, Any]:
        """The token response body; raises :class:`TokenRequestError`."""
        ...


@dataclass(frozen=True)
class SecurityEndpoints:
    """What the router serves.

    ``base_url`` is the public base URL (``None``: taken from each request). ``token_service`` is
    ``None`` when an external authorization server issues tokens; then ``external_token_endpoint``
    (and its ``external_issuer``/``external_jwks_uri``) are advertised instead.
    """

    base_url: str | None = None
    token_service: TokenService | None = None
    keys: KeyProvider | None = None
    scopes_supported: tuple[str, ...] = DEFAULT_SCOPES_SUPPORTED
    external_token_endpoint: str | None = None
    external_issuer: str | None = None
    external_jwks_uri: str | None = None
    more_grants: MoreGrants | None = None  # authorization_code/refresh_token for patient apps


def _base(endpoints: SecurityEndpoints, request: Request) -> str:
    return (endpoints.base_url or str(request.base_url)).rstrip("/")


def _oauth_error(error: TokenRequestError) -> JSONResponse:
    return JSONResponse(error.to_json(), status_code=error.status, headers=_NO_STORE | error.headers)


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenRequestError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise TokenRequestError("invalid_request", "the token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise TokenRequestError("invalid_request", "the token request is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.2: parameters MUST NOT be repeated
            raise TokenRequestError("invalid_request", f"parameter {name} is repeated")
        form[name] = value
    return form


def build_security_router(endpoints: SecurityEndpoints) -> APIRouter:
    """The router for ``/.well-known/smart-configuration`` (also under ``/fhir``), ``/auth/token`` and
    ``/auth/jwks``. Mount it before the generic ``/fhir/{type}/{id}`` routes."""
    router = APIRouter(tags=["security"])

    # SMART places the document relative to the FHIR base; the root copy serves clients that look there.
    @router.get(FHIR_BASE_PATH + SMART_CONFIGURATION_PATH)
    @router.get(SMART_CONFIGURATION_PATH)
    async def get_smart_configuration(request: Request) -> JSONResponse:
        base = _base(endpoints, request)
        doc = smart_configuration(
            base,
            token_endpoint=endpoints.external_token_endpoint,
            jwks_uri=endpoints.external_jwks_uri,
            signs_tokens=endpoints.keys is not None,
            scopes_supported=endpoints.scopes_supported,
            issuer=endpoints.external_issuer,
            patient_launch=endpoints.more_grants is not None,
        )
        return JSONResponse(doc)

    if endpoints.keys is not None:
        keys = endpoints.keys

        @router.get(JWKS_PATH)
        async def get_jwks() -> JSONResponse:
            return JSONResponse(jwks_of(keys), media_type="application/jwk-set+json")

    if endpoints.token_service is not None:
        service = endpoints.token_service

        @router.post(TOKEN_PATH)
        async def post_token(request: Request) -> Response:
            try:
                form = await _form(request)
                more = endpoints.more_grants
                if more is not None and form.get("grant_type") in more.grant_types:
                    address = request.client.host if request.client is not None else None
                    body = await more.exchange(form, request.headers.get("authorization"), address)
                    return JSONResponse(body, headers=_NO_STORE)
                issued = await service.exchange(form, [_base(endpoints, request) + TOKEN_PATH])
            except TokenRequestError as error:
                return _oauth_error(error)
            return JSONResponse(issued.to_json(), headers=_NO_STORE)

    return router


def token_url(endpoints: SecurityEndpoints, base_url: str) -> str:
    """The token endpoint URL a client must use as its assertion ``aud``."""
    return endpoints.external_token_endpoint or base_url.rstrip("/") + TOKEN_PATH
