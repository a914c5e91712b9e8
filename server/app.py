"""The composition root: ``create_app(settings)`` builds the engine, repository, capabilities and routers.

No module-level mutable state: everything lives on the app (``app.state.services``), so several worker
processes, or machines, can serve one PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, FastAPI

from server.api import fhir
from server.api.limits import BodyLimit
from server.capabilities import Capabilities
from server.database import prepare
from server.errors import install_error_handlers
from server.search.definitions import load_registry
from server.services import Services
from server.settings import Settings, load_settings
from server.storage.engine import make_engine
from server.storage.repository import Repository, utc_now


@dataclass(frozen=True)
class Mount:
    """A router and the function that registers what it serves into the CapabilityStatement."""

    router: APIRouter
    register: Callable[[Services], None] | None = None


def mounts() -> list[Mount]:
    """Every router the app serves, in matching order: specific routers first, the generic FHIR REST
    routes (``/fhir/{type}/{id}``) last. Mounting another router is one line here."""
    return [
        Mount(fhir.router, fhir.register),
    ]


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
    services = Services(
        settings=chosen,
        engine=engine,
        repository=Repository(engine, registry, now=now),
        capabilities=Capabilities(software_version=software_version()),
        now=now,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="PriorGate",
        version=services.capabilities.software_version,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    for mount in mounts():
        app.include_router(mount.router)
        if mount.register is not None:
            mount.register(services)
    app.add_middleware(BodyLimit, max_bytes=chosen.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker process builds its own app from PRIORGATE_*)."""
    return create_app(load_settings())
