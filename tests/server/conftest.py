"""Fixtures for the server tests: a database URL per engine (SQLite always, PostgreSQL when configured).

PostgreSQL tests run in a private schema per test session (dropped at the end) and are emptied between tests,
so they never touch other suites' tables in the shared test database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.search.definitions import load_registry
from server.storage.engine import make_engine
from server.storage.migrate import upgrade
from server.storage.private_schema import private_schema
from server.storage.repository import Repository
from server.storage.schema import metadata

ENGINES = ["sqlite", "postgresql"]


def _pg_base_url() -> str | None:
    return os.environ.get("PRIORGATE_TEST_DATABASE_URL") or None


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str | None]:
    base = _pg_base_url()
    if base is None:
        yield None
        return
    with private_schema(base, "server_tests") as rendered:
        engine = make_engine(rendered)
        upgrade(engine)
        engine.dispose()
        yield rendered


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every time would dominate the run)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=ENGINES)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema_url: str | None, sqlite_template: Path
) -> Iterator[str]:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "server.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_schema_url is None:
        pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    empty_database(pg_schema_url)
    yield pg_schema_url


def empty_database(url: str) -> None:
    """Delete every row of every table. DELETE rather than TRUNCATE: TRUNCATE's exclusive locks can
    deadlock with autovacuum analysing the same small tables when several suites share the server."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


class Clock:
    """A test clock that moves one millisecond per reading, so ordering never depends on wall time."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def repository(database_url: str, clock: Clock) -> Iterator[Repository]:
    engine = make_engine(database_url)
    yield Repository(engine, load_registry(), now=clock)
    engine.dispose()
