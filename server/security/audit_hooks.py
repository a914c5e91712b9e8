"""AuditEvents for CDS Hooks calls (CRD): each ``POST /cds-services/{id}`` touches a patient's data
(context and prefetch), so it is recorded like a FHIR operation: who (the CDS client named by its
JWT), the hook, the patient (``context.patientId``), from where, when and the outcome.

CDS Hooks routes verify their own client JWTs (``server/api/cds_hooks.py``); this middleware reads the
JWT's ``iss``/``sub``/``jti`` only for calls the route answered successfully (so verified), and records
failed calls as unauthenticated. The request body is observed as it streams by (never stored, never
logged); only ``context.patientId`` is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import jwt
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.security.audit import AuditRequest, AuditSource, audit_operation
from server.security.principal import Principal

log = logging.getLogger("priorgate.security")

CDS_SERVICES_PATH = "/cds-services"
_MAX_OBSERVED = 1024 * 1024  # patientId sits near the start of a hook request; no need to keep more


def hook_client(authorization: str | None) -> Principal | None:
    """The CDS client a (route-verified) ``Authorization: Bearer <jwt>`` names, for the audit record."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = str(claims.get("iss") or "")
    tenant = claims.get("tenant")
    return Principal(
        client_id=str(claims.get("sub") or issuer),
        tenants=frozenset({tenant}) if isinstance(tenant, str) and tenant else frozenset(),
        scopes=(),
        issuer=issuer,
        token_id=str(claims.get("jti") or ""),
    )


def hook_patient(body: bytes) -> str | None:
    """``Patient/{context.patientId}`` of a hook request, if it is readable."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    context = request.get("context") if isinstance(request, dict) else None
    patient = context.get("patientId") if isinstance(context, dict) else None
    return f"Patient/{patient}" if isinstance(patient, str) and patient else None


class HookAuditTrail:
    """ASGI middleware recording one AuditEvent per CDS Hooks service call (feedback included)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sink: Callable[[dict[str, Any]], Awaitable[None]],
        source: AuditSource,
        now: Callable[[], datetime],
        prefix: str = CDS_SERVICES_PATH,
    ):
        self.app = app
        self.sink = sink
        self.source = source
        self.now = now
        self.prefix = prefix.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status = 500

        async def observe() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _MAX_OBSERVED:
                body.extend(message.get("body", b"")[: _MAX_OBSERVED - len(body)])
            return message

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, observe, capture)
        finally:
            await self._record(scope, path[len(self.prefix) :], bytes(body), status)

    async def _record(self, scope: Scope, service: str, body: bytes, status: int) -> None:
        headers = Headers(scope=scope)
        client = scope.get("client")
        facts = AuditRequest(
            principal=hook_client(headers.get("authorization")) if status < 400 else None,
            client_address=client[0] if client else None,
            request_id=headers.get("x-request-id"),
        )
        patient = hook_patient(body)
        event = audit_operation(
            "cds-hooks:" + service,
            request=facts,
            source=self.source,
            recorded=self.now(),
            status=status,
            patients=[patient] if patient else [],
        )
        try:
            await self.sink(event)
        except Exception as exc:  # never lose the hook response to the audit writer
            log.error("audit event not recorded: %s", type(exc).__name__)
