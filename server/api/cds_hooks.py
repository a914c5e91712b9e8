"""HTTP routes for the CRD CDS services: thin over ``cds_hooks.CdsServices``.

``GET /cds-services``, ``POST /cds-services/{id}``, ``POST /cds-services/{id}/feedback``
(CDS Hooks 2.0 §Discovery, §Calling a CDS Service, §Feedback). Every call carries a CDS client JWT
verified against the exact URL called, unless the router is built in explicit development mode.
Errors are OperationOutcome bodies with the status from ``server.errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cds_hooks import CdsClientVerifier, CdsServices, ClientIdentity, HookResult
from igs.outcome import OperationOutcomeError
from server.errors import outcome_response

log = logging.getLogger("priorgate.api.cds_hooks")

CDS_JSON = "application/json"


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # keep FHIR decimals exactly as received
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content, default=_default), status_code=status_code, media_type=CDS_JSON)


def build_router(
    services: CdsServices,
    *,
    verifier: CdsClientVerifier | None,
    development_mode: bool = False,
    public_base_url: str | None = None,
    on_result: Callable[[HookResult, ClientIdentity | None], Awaitable[None]] | None = None,
    discovery_requires_jwt: bool = False,
) -> APIRouter:
    """The CDS Hooks router; ``on_result`` receives every HookResult with its verified caller
    (to store coverage assertions and keep the call log CRD found-37 asks for).

    ``verifier=None`` is only accepted with ``development_mode=True``, which logs a warning each time
    the router is built (i.e. on every start).
    """
    if verifier is None and not development_mode:
        raise ValueError("a CdsClientVerifier is required unless development_mode=True")
    if development_mode:
        log.warning("CDS Hooks development mode: client JWTs are NOT verified; never run this in production")
    router = APIRouter(tags=["CDS Hooks (CRD)"])

    def called_url(request: Request, suffix: str) -> str:
        """The URL the client invoked: the JWT ``aud`` must equal it (CDS Hooks §Trusting CDS Clients).

        Behind a proxy the public base is configured; otherwise the request URL is used as is, so a
        router mounted under a prefix still checks the right audience.
        """
        if public_base_url:
            return public_base_url.rstrip("/") + suffix
        return str(request.url).split("?", 1)[0]

    async def authenticate(request: Request, *audience: str) -> ClientIdentity | None:
        if verifier is None:
            return None
        return await verifier.verify(request.headers.get("authorization"), list(audience))

    @router.get("/cds-services")
    async def discovery(request: Request) -> Response:
        try:
            if discovery_requires_jwt:
                await authenticate(request, called_url(request, "/cds-services"))
            return _json(services.discovery())
        except OperationOutcomeError as exc:
            return outcome_response(exc)

    @router.post("/cds-services/{service_id}")
    async def call(service_id: str, request: Request) -> Response:
        try:
            services.spec(service_id)
            caller = await authenticate(request, called_url(request, f"/cds-services/{service_id}"))
            result = await services.call(service_id, await request.body())
            if on_result is not None:
                await on_result(result, caller)
            return _json(result.response)
        except OperationOutcomeError as exc:
            return outcome_response(exc)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> Response:
        try:
            services.spec(service_id)
            url = called_url(request, f"/cds-services/{service_id}/feedback")
            await authenticate(request, url, url.removesuffix("/feedback"))
            await services.feedback(service_id, await request.body())
            return Response(status_code=200)
        except OperationOutcomeError as exc:
            return outcome_response(exc)

    return router
