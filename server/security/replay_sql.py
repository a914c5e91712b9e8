"""The database-backed ``ReplayStore``: one table shared by every worker process and machine.

Correct under concurrency on both engines: the primary key (namespace, jti) makes the second insert
of a live ``jti`` fail, whichever worker tries. Expired rows are purged as new ones arrive. Times are
stored as integer epoch seconds, which compare the same on SQLite and PostgreSQL.

The table is declared with :func:`jti_table` on the storage layer's ``MetaData`` (its migration adds it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
)
from sqlalchemy.exc import IntegrityError

from server.storage.engine import WRITE_OPTION

JTI_TABLE = "security_jti"


def jti_table(metadata: MetaData, name: str = JTI_TABLE) -> Table:
    """Declare the replay table on ``metadata``."""
    return Table(
        name,
        metadata,
        Column("namespace", String(255), nullable=False),
        Column("jti", String(255), nullable=False),
        Column("expires_at", BigInteger, nullable=False),
        PrimaryKeyConstraint("namespace", "jti", name=f"pk_{name}"),
        Index(f"ix_{name}_expires_at", "expires_at"),
    )


@dataclass(frozen=True)
class SqlReplayStore:
    """``ReplayStore`` over a SQLAlchemy engine (blocking calls run in a worker thread)."""

    engine: Engine
    table: Table

    async def first_use(self, namespace: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        return await asyncio.to_thread(
            self._first_use, namespace, jti, int(expires_at.timestamp()), int(now.timestamp())
        )

    def _first_use(self, namespace: str, jti: str, expires_at: int, now: int) -> bool:
        table = self.table
        try:
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
                with connection.begin():
                    connection.execute(delete(table).where(table.c.expires_at <= now))
                    connection.execute(
                        insert(table).values(namespace=namespace, jti=jti, expires_at=expires_at)
                    )
        except IntegrityError:
            # The row exists and outlived the purge above: the jti is live, so this is a replay.
            return False
        return True
