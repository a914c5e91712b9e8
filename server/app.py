"""The composition root: ``create_app(settings)`` builds the engine, repository, capabilities and routers.

No module-level mutable state: everything lives on the app (``app.state.services``), so several worker
processes, or machines, can serve one PostgreSQL database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cds_hooks import (
    DEMO_POLICY_DIR,
    CdsClientVerifier,
    CdsServices,
    ClientIdentity,
    HookResult,
    load_policies,
)
from igs import Validator
from igs import load_registry as load_ig_registry
from questionnaires import DTR_VERSIONS, load_catalog
from server.api import bulk_export, dtr, fhir, member_match, pas, pas_subscriptions, patient_access, validate
from server.api.cds_hooks import build_router as build_cds_router
from server.api.limits import BodyLimit
from server.app_launch.wiring import build_app_launch
from server.bulk.jobs import JobStore
from server.bulk.runner import ExportRunner, bulk_settings
from server.bulk.worker import ExportWorker
from server.capabilities import Capabilities
from server.cds_clients import load_trusted_issuers
from server.cds_storage import SqlFeedbackSink, SqlJtiStore
from server.coverage_assertions import CoverageAssertionStore
from server.database import prepare
from server.errors import install_error_handlers
from server.ops import web as ops_web
from server.ops.wiring import build_ops
from server.pas import PasVersion, PolicyCoverageRules
from server.pas.delivery import DeliveryWorker, delivery_settings
from server.pas.dtr_responses import DtrResponseFinder
from server.pas.outbox import Outbox
from server.pas.profiles import profile_gate
from server.pas.review import clocks_from
from server.pas.service import PasService
from server.pas.store import PasStore
from server.pas.subscription_store import SubscriptionStore
from server.pas.x12_route import X12Routing, load_x12_routing
from server.patient_access import EobPublisher
from server.search.definitions import load_registry
from server.search.values import timestamp
from server.security import AuditSource, AuditTrail, FhirScopeGuard, build_security_router, install_security
from server.security.audit_hooks import HookAuditTrail
from server.security.audit_log import AuditLog
from server.security.config import SecuritySettings, build_security, load_security_settings
from server.security.replay_sql import SqlReplayStore
from server.security.smart_configuration import capability_security
from server.security.tokens import CachingVerifier
from server.services import Services
from server.settings import Settings, load_settings
from server.storage.engine import make_engine
from server.storage.repository import Repository, utc_now
from server.storage.schema import security_jti

log = logging.getLogger("priorgate")


@dataclass(frozen=True)
class Mount:
    """A router and the function that registers what it serves into the CapabilityStatement."""

    router: APIRouter
    register: Callable[[Services], None] | None = None


def mounts(cds: APIRouter) -> list[Mount]:
    """Every router the app serves, in matching order: specific routers first, the generic FHIR REST
    routes (``/fhir/{type}/{id}``) last. Mounting another router is one line here."""
    return [
        Mount(cds),
        Mount(dtr.router, dtr.register),
        Mount(validate.router, validate.register),
        Mount(pas.router, pas.register),
        Mount(pas_subscriptions.router, pas_subscriptions.register),
        Mount(ops_web.router),
        Mount(patient_access.router, patient_access.register),
        Mount(member_match.router, member_match.register),
        Mount(bulk_export.router, bulk_export.register),
        Mount(fhir.router, fhir.register),
    ]


def cds_router(
    settings: Settings,
    http: httpx.AsyncClient,
    now: Callable[[], datetime],
    engine: Engine,
    assertions: CoverageAssertionStore,
) -> APIRouter:
    """The CRD services over the demo coverage rules; client JWTs verified unless development mode.
    Every coverage assertion handed out is stored, so DTR and PAS can find its decision."""

    async def keep(result: HookResult, _: ClientIdentity | None) -> None:
        if result.assertions:
            # fixed-width UTC text: the column holds 26 characters (an offset would not fit on PostgreSQL)
            await run_in_threadpool(assertions.save, result.assertions, timestamp(now()))

    services = CdsServices(
        load_policies(DEMO_POLICY_DIR),
        http_client=http,
        now=now,
        feedback_sink=SqlFeedbackSink(engine),
        fetch_timeout=settings.outbound_timeout,
    )
    verifier = None
    if not settings.cds_development_mode:
        issuers = load_trusted_issuers(settings.cds_trusted_issuers_file)
        verifier = CdsClientVerifier(issuers, http, SqlJtiStore.of(engine), now)
    return build_cds_router(
        services,
        verifier=verifier,
        development_mode=settings.cds_development_mode,
        public_base_url=settings.base_url,
        on_result=keep,
    )


def public_base_url(settings: Settings) -> str:
    """``PRIORGATE_BASE_URL``, else ``http://{host}:{port}``: the token issuer and audience base."""
    return (settings.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


# FHIR bases besides /fhir whose requests the scope guard and the audit trail cover.
VERSIONED_BASES: tuple[str, ...] = (
    *(f"/pas/{v.value}" for v in PasVersion),
    *(f"/dtr/{v}" for v in DTR_VERSIONS),
)


def secure(
    app: FastAPI,
    security: SecuritySettings,
    services: Services,
    http: httpx.AsyncClient,
) -> None:
    """SMART Backend Services (token endpoint, discovery), the scope guard and the audit trail.
    ``PRIORGATE_AUTH_MODE=off`` leaves every route open and says so on every start."""
    settings = services.settings
    if security.auth_mode == "off":
        log.warning(
            "PRIORGATE_AUTH_MODE=off: no access tokens are required and every caller acts for the "
            "default organization. Development only; never use it with real data."
        )
    else:
        parts = build_security(
            security,
            public_base_url=public_base_url(settings),
            http=http,
            now=services.now,
            replay=SqlReplayStore(services.engine, security_jti),
        )
        install_security(app, CachingVerifier(parts.verifier, services.now))
        # PriorGate's own SMART App Launch for patients (server/app_launch): /auth/authorize + token grants
        launch = build_app_launch(security, services, parts, public_base_url(settings))
        endpoints = parts.endpoints if launch is None else replace(parts.endpoints, more_grants=launch.grants)
        services.capabilities.security = capability_security(
            oauth_uris=launch.oauth_uris if launch is not None else None
        )
        app.include_router(build_security_router(endpoints))
        if launch is not None:
            app.include_router(launch.router)
        app.add_middleware(FhirScopeGuard, more_prefixes=VERSIONED_BASES)
    if services.audit is not None:
        app.add_middleware(
            HookAuditTrail, sink=services.audit.record, source=services.audit.source, now=services.now
        )
        app.add_middleware(
            AuditTrail,
            sink=services.audit.record,
            source=services.audit.source,
            now=services.now,
            more_prefixes=VERSIONED_BASES,
        )


def software_version() -> str:
    try:
        return version("priorgate")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings | None = None,
    *,
    now: Callable[[], datetime] = utc_now,
    prepare_database: bool = False,
    security: SecuritySettings | None = None,
    http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the ASGI app. ``prepare_database`` upgrades the schema (and loads demo content) first;
    ``priorgate serve`` does that once before starting workers instead. ``security`` defaults to the
    ``PRIORGATE_AUTH_MODE`` ... settings from the environment; ``http`` (outbound calls: EHR FHIR
    servers, JWKS, subscription notifications) defaults to a client with ``PRIORGATE_OUTBOUND_TIMEOUT``
    (a client passed in is the caller's to close)."""
    chosen = settings or load_settings()
    chosen_security = security or load_security_settings()
    engine = make_engine(chosen.database_url)
    registry = load_registry()
    if prepare_database:
        prepare(engine, registry, demo_content=chosen.demo_content)
    ig_registry = load_ig_registry(chosen.ig_path)
    for note in ig_registry.warnings:
        log.log(logging.WARNING if note.severity == "warning" else logging.INFO, "%s", note.message)
    repository = Repository(engine, registry, now=now)
    validator = Validator(ig_registry)
    policies = load_policies(DEMO_POLICY_DIR)
    only_payer = next(iter(policies.payers)) if len(policies.payers) == 1 else None
    owns_http = http is None
    http = http or httpx.AsyncClient(timeout=chosen.outbound_timeout, follow_redirects=False)
    subscriptions = SubscriptionStore(engine)
    audit = AuditLog.over(repository, AuditSource(public_base_url(chosen) + "/fhir"), now)
    delivery = (
        DeliveryWorker(Outbox(engine), http, now, delivery_settings(chosen), audit=audit)
        if chosen.notification_worker
        else None
    )
    x12: X12Routing | None = load_x12_routing(chosen, engine, now)
    exports = bulk_settings(chosen)
    bulk = (
        ExportWorker(
            ExportRunner(JobStore(engine), repository, now, exports, audit=audit), exports.poll_interval
        )
        if chosen.bulk_export_worker
        else None
    )
    assertions = CoverageAssertionStore(engine)
    services = Services(
        settings=chosen,
        engine=engine,
        repository=repository,
        capabilities=Capabilities(software_version=software_version()),
        now=now,
        ig_registry=ig_registry,
        validator=validator,
        catalog=load_catalog(),
        assertions=assertions,
        pas=PasService(
            store=PasStore(engine),
            resources=repository,
            evaluate=PolicyCoverageRules(policies, default_payer=only_payer),
            now=now,
            validate=profile_gate(ig_registry, validator),
            subscriptions=subscriptions,
            x12=x12,
            dtr_responses=DtrResponseFinder(repository, assertions),
            clocks=clocks_from(chosen.review_clocks),
            published=EobPublisher(repository),
        ),
        subscriptions=subscriptions,
        delivery=delivery,
        auth_required=chosen_security.auth_mode != "off",
        audit=audit,
        bulk=bulk,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if x12 is not None:  # X12 answers a stopped process was waiting for will not come
            try:
                await run_in_threadpool(services.pas.expire_x12)
            except Exception:  # housekeeping never stops start-up (e.g. a schema not migrated yet)
                log.warning("could not expire stale X12 exchanges", exc_info=True)
        if delivery is not None:
            delivery.start()
        if bulk is not None:
            bulk.start()
        yield
        if bulk is not None:
            await bulk.stop()
        if delivery is not None:
            await delivery.stop()
        if owns_http:
            await http.aclose()
        if x12 is not None:
            x12.close()
        engine.dispose()

    app = FastAPI(
        title="PriorGate",
        version=services.capabilities.software_version,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.state.ops = build_ops(services)  # payer operations pages and public metrics (server/ops)
    install_error_handlers(app)
    secure(app, chosen_security, services, http)
    for mount in mounts(cds_router(chosen, http, now, engine, services.assertions)):
        app.include_router(mount.router)
        if mount.register is not None:
            mount.register(services)
    app.add_middleware(BodyLimit, max_bytes=chosen.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app from PRIORGATE_*)."""
    return create_app(load_settings())
