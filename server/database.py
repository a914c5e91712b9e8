"""Bringing a database to a servable state: schema at head, then demo content into an empty database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from server.demo import DEMO_SOURCES, DEMO_TENANT_SOURCES
from server.fhir_json import loads
from server.search.definitions import SearchRegistry
from server.storage.migrate import upgrade
from server.storage.repository import Repository
from server.transaction import BundleOptions, run_transaction

log = logging.getLogger("priorgate.database")


def load_demo(
    repository: Repository,
    sources: Sequence[Path] = DEMO_SOURCES,
    tenant_sources: Sequence[tuple[str, Path]] = DEMO_TENANT_SOURCES,
) -> int:
    """Load demo transaction Bundles when the database holds no resources; returns how many entries.
    ``tenant_sources`` are loaded into the tenant named beside each."""
    with repository.reading() as tx:
        if tx.count() > 0:
            return 0
    options = BundleOptions(base="", strict=True, default_count=50, max_count=50)
    loaded = 0
    placed = [(repository, source) for source in sources]
    placed += [(repository.for_tenant(tenant), source) for tenant, source in tenant_sources]
    for target, source in placed:
        bundle = loads(source.read_bytes())
        loaded += len(run_transaction(target, bundle, options)["entry"])
    log.info("loaded %d demo resources", loaded)
    return loaded


def prepare(engine: Engine, registry: SearchRegistry, *, demo_content: bool) -> None:
    """Upgrade the schema to head and, when asked, load demo content into an empty database."""
    upgrade(engine)
    if demo_content:
        load_demo(Repository(engine, registry))
