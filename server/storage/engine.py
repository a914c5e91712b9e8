"""Engines for the two supported databases: SQLite (embedded default) and PostgreSQL via psycopg 3."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from igs.outcome import Failure, OperationOutcomeError
from server.fhir_json import dumps, loads

# Execution option that makes a SQLite transaction take the write lock at BEGIN, so two writers never
# deadlock upgrading from a read lock; readers keep plain deferred transactions under WAL.
WRITE_OPTION = "priorgate_write"


def make_engine(database_url: str) -> Engine:
    """Create the engine for ``database_url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise OperationOutcomeError.of(Failure.INVALID, f"not a database URL: {database_url!r}") from None
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(database_url)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(
            url,
            pool_size=10,
            max_overflow=20,
            pool_pre_ping=True,
            json_serializer=_json_text,
            json_deserializer=loads,
        )
    raise OperationOutcomeError.of(
        Failure.INVALID, f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql"
    )


def _json_text(value: Any) -> str:
    # Stored bytes arrive as orjson fragments: written through, never re-serialised.
    return dumps(value).decode()


def _sqlite_engine(database_url: str) -> Engine:
    engine = create_engine(database_url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Manage transactions ourselves (pysqlite's implicit BEGIN cannot take the write lock up front).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
