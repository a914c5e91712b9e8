"""Versioned FHIR resource storage with a search index, on SQLite or PostgreSQL (SQLAlchemy Core)."""

from server.storage.engine import make_engine
from server.storage.migrate import upgrade
from server.storage.repository import (
    Repository,
    SearchPage,
    StoredResource,
    Transaction,
    WriteResult,
    parse_etag,
)

__all__ = [
    "Repository",
    "SearchPage",
    "StoredResource",
    "Transaction",
    "WriteResult",
    "make_engine",
    "parse_etag",
    "upgrade",
]
