"""Database-backed state for the CDS Hooks services, shared by every worker process and machine:
card feedback (CDS Hooks §Feedback) and the client-JWT ``jti`` replay store (CDS Hooks §Trusting CDS Clients).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert

from cds_hooks.models import FeedbackItem
from server.security.replay_sql import SqlReplayStore
from server.storage.schema import cds_feedback, security_jti

# Replay namespace of CDS client JWTs, apart from SMART client assertions in the same table.
CDS_JTI_NAMESPACE = "cds-hooks:"


@dataclass(frozen=True)
class SqlFeedbackSink:
    """Stores each feedback item as received, with the service it was about."""

    engine: Engine
    tenant: str = ""

    async def store(self, service_id: str, items: Sequence[FeedbackItem], received: datetime) -> None:
        rows: list[dict[str, object]] = [
            {
                "tenant": self.tenant,
                "service_id": service_id,
                "card": item.card,
                "outcome": item.outcome,
                "received": received.isoformat(),
                "item": item.model_dump(mode="json", by_alias=True, exclude_none=True),
            }
            for item in items
        ]
        if rows:
            await asyncio.to_thread(self._insert, rows)

    def _insert(self, rows: list[dict[str, object]]) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(cds_feedback), rows)


@dataclass(frozen=True)
class SqlJtiStore:
    """The CDS Hooks ``JtiStore`` over the shared replay table: a replay is caught by any worker."""

    replay: SqlReplayStore

    @classmethod
    def of(cls, engine: Engine) -> SqlJtiStore:
        return cls(SqlReplayStore(engine, security_jti))

    async def first_use(self, iss: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        return await self.replay.first_use(CDS_JTI_NAMESPACE + iss, jti, expires_at, now)
