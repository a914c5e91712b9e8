"""The composition root: ``create_app(settings)`` builds the engine, repository, capabilities and routers.

No module-level mutable state: everything lives on the app (``app.state.services``), so several worker
processes, or machines, can serve one PostgreSQL database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from questionnaires import load_catalog
from server.api import dtr, fhir, pas, validate
from server.api.cds_hooks import build_router as build_cds_router
from server.api.limits import BodyLimit
from server.capabilities import Capabilities
from server.cds_clients import load_trusted_issuers
from server.cds_storage import SqlFeedbackSink, SqlJtiStore
from server.coverage_assertions import CoverageAssertionStore
from server.database import prepare
from server.errors import install_error_handlers
from server.ops import web as ops_web
from server.ops.wiring import build_ops
from server.pas import PolicyCoverageRules
from server.pas.profiles import profile_gate
from server.pas.review import clocks_from
from server.pas.service import PasService
from server.pas.store import PasStore
from server.search.definitions import load_registry
from server.services import Services
from server.settings import Settings, load_settings
from server.storage.engine import make_engine
from server.storage.repository import Repository, utc_now

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
        Mount(ops_web.router),
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
            await run_in_threadpool(assertions.save, result.assertions, now().isoformat())

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
) -> FastAPI:
    """Build the ASGI app. ``prepare_database`` upgrades the schema (and loads demo content) first;
    ``priorgate serve`` does that once before starting workers instead."""
    chosen = settings or load_settings()
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
    services = Services(
        settings=chosen,
        engine=engine,
        repository=repository,
        capabilities=Capabilities(software_version=software_version()),
        now=now,
        ig_registry=ig_registry,
        validator=validator,
        catalog=load_catalog(),
        assertions=CoverageAssertionStore(engine),
        pas=PasService(
            store=PasStore(engine),
            resources=repository,
            evaluate=PolicyCoverageRules(policies, default_payer=only_payer),
            now=now,
            validate=profile_gate(ig_registry, validator),
            clocks=clocks_from(chosen.review_clocks),
        ),
    )
    http = httpx.AsyncClient(timeout=chosen.outbound_timeout, follow_redirects=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()
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
    for mount in mounts(cds_router(chosen, http, now, engine, services.assertions)):
        app.include_router(mount.router)
        if mount.register is not None:
            mount.register(services)
    app.add_middleware(BodyLimit, max_bytes=chosen.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app from PRIORGATE_*)."""
    return create_app(load_settings())
