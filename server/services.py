"""The per-app service container built by ``create_app``: settings, engine, repository, capabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine
from starlette.requests import Request

from igs import Registry, Validator
from igs.outcome import Failure, OperationOutcomeError
from questionnaires import Catalog
from server.bulk.worker import ExportWorker
from server.capabilities import Capabilities
from server.coverage_assertions import CoverageAssertionStore
from server.pas.delivery import DeliveryWorker
from server.pas.service import PasService
from server.pas.subscription_store import SubscriptionStore
from server.security.access import ORGANIZATION_HEADER, OpenAccess, PrincipalAccess
from server.security.audit_log import AuditLog
from server.security.dependencies import authenticated
from server.security.principal import Principal
from server.settings import Settings
from server.storage.repository import Repository


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    repository: Repository
    capabilities: Capabilities
    now: Callable[[], datetime]
    ig_registry: Registry  # the IG packages found under PRIORGATE_IG_PATH
    validator: Validator  # profile validation ($validate, PAS, CRD, DTR); loads packages on first use
    catalog: Catalog  # DTR content: Questionnaires, Libraries, ValueSets
    assertions: CoverageAssertionStore  # CRD coverage assertions, found again by DTR and PAS
    pas: PasService  # PAS Claim/$submit, Claim/$inquire and the review queue, over storage
    subscriptions: SubscriptionStore | None = None  # PAS Subscriptions and their notification outbox
    delivery: DeliveryWorker | None = None  # this process's notification delivery worker, when running
    auth_required: bool = True  # False only with PRIORGATE_AUTH_MODE=off
    audit: AuditLog | None = None  # where AuditEvents are stored
    bulk: ExportWorker | None = None  # this process's bulk export worker, when running

    def fhir_base(self, request: Request) -> str:
        """The FHIR base URL: ``PRIORGATE_BASE_URL`` + ``/fhir``, or the request's own origin."""
        base = self.settings.base_url or str(request.base_url)
        return base.rstrip("/") + "/fhir"


def services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services`."""
    found = request.app.state.services
    assert isinstance(found, Services)
    return found


def principal_of(request: Request) -> Principal | None:
    """The verified caller of this request (left by the security guard), if any."""
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else None


async def caller(request: Request) -> Principal | None:
    """FastAPI dependency: the verified caller (401 without a valid token), or ``None`` when
    authentication is off (``PRIORGATE_AUTH_MODE=off``)."""
    if not services(request).auth_required:
        return None
    return await authenticated(request)


def scoped_services(request: Request) -> Services:
    """FastAPI dependency: the app's :class:`Services` as this caller sees them: the repository filtered
    to its tenants (in SQL) and writing into its tenant (see :func:`scoped_pas` for PAS). Without
    authentication (``PRIORGATE_AUTH_MODE=off``) everything acts for the default tenant."""
    found = services(request)
    principal = principal_of(request)
    if principal is None:
        if found.auth_required:  # the guard should have answered 401 already: never fall open
            raise OperationOutcomeError.of(Failure.UNAUTHENTICATED, "an access token is required")
        return replace(found, repository=found.repository.acting_for(OpenAccess(found.repository.tenant)))
    access = PrincipalAccess(principal, request.headers.get(ORGANIZATION_HEADER))
    return replace(found, repository=found.repository.acting_for(access))


def scoped_pas(request: Request, scoped: Services) -> PasService:
    """PAS acting for the caller's organization (``scoped`` from :func:`scoped_services`): its
    submissions and inquiries. A caller acting for several organizations names one with the
    ``X-PriorGate-Organization`` header (422 otherwise)."""
    principal = principal_of(request)
    if principal is None:
        return scoped.pas
    tenant = PrincipalAccess(principal, request.headers.get(ORGANIZATION_HEADER)).tenant_for_new("Claim")
    return scoped.pas.for_tenant(tenant, scoped.repository)
