"""FastAPI dependencies that protect routes (RFC 6750 Bearer tokens; SMART scopes).

Usage in a route module::

    @router.post("/fhir/Claim/$submit")
    async def submit(principal: Annotated[Principal, Depends(require_operation("$submit"))]): ...

    @router.get("/fhir/{resource_type}/{id}")
    async def read(resource_type: str, principal: Annotated[Principal, Depends(authenticated)]):
        authorize(principal, resource_type, "r")

The verifier is installed once per app with :func:`install_security` (kept on ``app.state``, not in a
module global). The principal is also left on ``request.state.principal`` for audit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from igs.outcome import Failure, OperationOutcomeError
from server.errors import outcome_response
from server.security.audit import AuditRequest, AuditSource, audit_event_for_request
from server.security.constants import FHIR_BASE_PATH
from server.security.fhir_requests import fhir_request_requirement
from server.security.patient_context import patient_path_allowed, refuse
from server.security.principal import Principal, authorize, authorize_operation, insufficient_scope
from server.security.scopes import Interaction
from server.security.tokens import AccessTokenVerifier, InvalidTokenError

log = logging.getLogger("priorgate.security")

_STATE_KEY = "priorgate_security_gate"
_MARK = "__priorgate_authenticates__"

# Paths anyone may call (issue 9: metadata, discovery, SMART configuration, the public metrics page),
# plus the token endpoint and key set, which authenticate by other means.
PUBLIC_PATHS: frozenset[str] = frozenset(
    {
        "/fhir/metadata",
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/auth/token",
        "/auth/jwks",
        "/auth/authorize",  # the patient sign-in page (SMART App Launch): its own CSRF-protected form
        "/.well-known/openid-configuration",
        "/metrics",
        "/docs",
        "/openapi.json",
    }
)


@dataclass(frozen=True)
class SecurityGate:
    """Turns an ``Authorization`` header into a :class:`Principal` or a 401."""

    verifier: AccessTokenVerifier
    realm: str = "priorgate"

    def _challenge(self, error: str | None = None, description: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm}"'
        if error:
            value += f', error="{error}"'
        if description:
            value += f', error_description="{description.replace(chr(34), chr(39))}"'
        return {"WWW-Authenticate": value}

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise OperationOutcomeError.of(
                Failure.UNAUTHENTICATED,
                "an access token is required (Authorization: Bearer)",
                headers=self._challenge(),
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise OperationOutcomeError.of(
                Failure.UNAUTHENTICATED,
                "the Authorization header must be 'Bearer <token>'",
                headers=self._challenge("invalid_request"),
            )
        try:
            return await self.verifier.verify(token)
        except InvalidTokenError as exc:
            raise OperationOutcomeError.of(
                Failure.UNAUTHENTICATED, str(exc), headers=self._challenge("invalid_token", str(exc))
            ) from None


def install_security(app: FastAPI, verifier: AccessTokenVerifier, *, realm: str = "priorgate") -> None:
    """Make ``verifier`` the one the dependencies below use for ``app``."""
    setattr(app.state, _STATE_KEY, SecurityGate(verifier, realm))


def _gate(request: Request) -> SecurityGate:
    gate = getattr(request.app.state, _STATE_KEY, None)
    if not isinstance(gate, SecurityGate):
        # Misconfiguration must never mean "open": refuse instead.
        raise OperationOutcomeError.of(Failure.UNAVAILABLE, "authentication is not configured")
    return gate


async def authenticated(request: Request) -> Principal:
    """Dependency: the verified caller (401 without a valid Bearer token). Scopes are not checked."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # already verified by FhirScopeGuard
        return known
    principal = await _gate(request).principal(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def _authenticating(
    dependency: Callable[[Request], Awaitable[Principal]],
) -> Callable[[Request], Awaitable[Principal]]:
    setattr(dependency, _MARK, True)
    return dependency


def require(resource_type: str, interaction: Interaction) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency factory: a verified caller whose scopes allow ``interaction`` on ``resource_type``."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        authorize(principal, resource_type, interaction)
        return principal

    return _authenticating(dependency)


def require_on_path(
    interaction: Interaction, param: str = "resource_type"
) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency factory for generic routes (``/fhir/{resource_type}/...``): the resource type comes
    from the path parameter ``param``."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        authorize(principal, str(request.path_params.get(param, "*")), interaction)
        return principal

    return _authenticating(dependency)


def audit_request(request: Request) -> AuditRequest:
    """The audit facts of a request: the principal (if authenticated), the client address, the
    ``X-Request-ID`` correlation id. Never the Authorization header."""
    principal = getattr(request.state, "principal", None)
    return AuditRequest(
        principal=principal if isinstance(principal, Principal) else None,
        client_address=request.client.host if request.client is not None else None,
        request_id=request.headers.get("x-request-id"),
    )


def require_operation(
    operation: str, resource_type: str | None = None
) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency factory for a FHIR operation (``$submit``, ``$inquire``, ...)."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        authorize_operation(principal, operation, resource_type)
        return principal

    return _authenticating(dependency)


def _authenticates(dependant: Dependant) -> bool:
    call = dependant.call
    if call is authenticated or getattr(call, _MARK, False):
        return True
    return any(_authenticates(sub) for sub in dependant.dependencies)


def unprotected_routes(app: FastAPI, public: frozenset[str] = PUBLIC_PATHS) -> list[str]:
    """``"METHOD path"`` of every route that neither is public nor depends on authentication.

    For a test asserting that every protected route refuses anonymous calls (CDS Hooks routes, which
    check their own JWTs, are listed and excluded by the caller).
    """
    found: list[str] = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in public:
            continue
        if not _authenticates(route.dependant):
            found.extend(f"{method} {route.path}" for method in sorted(route.methods or ()))
    return found


def _relative(path: str, prefixes: tuple[str, ...]) -> str | None:
    """``path`` relative to the first of ``prefixes`` it lies under (``Claim/1``), else ``None``."""
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return None


class FhirScopeGuard:
    """ASGI middleware guarding the whole FHIR REST API in one place.

    Every request under ``fhir_prefix`` except the public ones (``/fhir/metadata``, SMART discovery)
    must carry a valid Bearer token whose scopes cover what the request does
    (:func:`~server.security.fhir_requests.fhir_request_requirement`): 401 or 403 OperationOutcome
    otherwise, answered before the route runs; a patient-context caller is further held to patient
    access (``patient_context.patient_path_allowed``: 403 otherwise). Transactions/batches are only
    authenticated here; their handler checks each entry (``bundle_requirements`` + ``authorize``). The
    principal is left on ``request.state.principal``. Paths outside the FHIR base (CDS Hooks, ``/auth``)
    pass untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        fhir_prefix: str = FHIR_BASE_PATH,
        public: frozenset[str] = PUBLIC_PATHS,
        more_prefixes: tuple[str, ...] = (),
    ):
        self.app = app
        self.prefixes = tuple(p.rstrip("/") for p in (fhir_prefix, *more_prefixes))
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        relative = _relative(path, self.prefixes) if scope["type"] == "http" else None
        if relative is None or path in self.public:
            await self.app(scope, receive, send)
            return
        requirement = fhir_request_requirement(scope["method"], relative)
        if requirement.kind == "public":
            await self.app(scope, receive, send)
            return
        try:
            gate = getattr(scope["app"].state, _STATE_KEY, None)
            if not isinstance(gate, SecurityGate):
                raise OperationOutcomeError.of(Failure.UNAVAILABLE, "authentication is not configured")
            principal = await gate.principal(Headers(scope=scope).get("authorization"))
            if not requirement.allowed_by(principal.scopes):
                raise insufficient_scope(requirement.describe())
            if principal.kind == "patient" and not patient_path_allowed(principal, scope["method"], relative):
                raise refuse(f"{scope['method']} {relative.strip('/') or '/'} is not available to a patient")
        except OperationOutcomeError as error:
            await outcome_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


AuditSink = Callable[[dict[str, Any]], Awaitable[None]]


class AuditTrail:
    """ASGI middleware: after every request under the FHIR base, build its BALP AuditEvent
    (:func:`~server.security.audit.audit_event_for_request`) and hand it to ``sink`` (the storage
    writer). Add it *after* :class:`FhirScopeGuard` so it is outermost and also records the 401/403
    refusals. A failing sink is logged (without request content) and does not alter the response.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        sink: AuditSink,
        source: AuditSource,
        now: Callable[[], datetime],
        fhir_prefix: str = FHIR_BASE_PATH,
        more_prefixes: tuple[str, ...] = (),
    ):
        self.app = app
        self.sink = sink
        self.source = source
        self.now = now
        self.prefixes = tuple(p.rstrip("/") for p in (fhir_prefix, *more_prefixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        relative = _relative(path, self.prefixes) if scope["type"] == "http" else None
        if relative is None:
            await self.app(scope, receive, send)
            return
        status = 500
        location: str | None = None

        async def capture(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = int(message["status"])
                location = Headers(raw=message.get("headers", [])).get("location")
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(scope, relative, status, location)

    async def _record(self, scope: Scope, fhir_path: str, status: int, location: str | None) -> None:
        principal = scope.get("state", {}).get("principal")
        client = scope.get("client")
        facts = AuditRequest(
            principal=principal if isinstance(principal, Principal) else None,
            client_address=client[0] if client else None,
            request_id=Headers(scope=scope).get("x-request-id"),
        )
        event = audit_event_for_request(
            scope["method"],
            fhir_path,
            scope.get("query_string", b"").decode("latin-1"),
            status=status,
            request=facts,
            source=self.source,
            recorded=self.now(),
            location=location,
        )
        if event is None:
            return
        try:
            await self.sink(event)
        except Exception as exc:  # the response is already on its way; never lose it to the audit writer
            log.error("audit event not recorded: %s", type(exc).__name__)
