"""CDS Hooks feedback and jti replay state in the database, on both engines."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cds_hooks.models import FeedbackItem
from server.cds_storage import SqlFeedbackSink, SqlJtiStore
from server.storage.engine import make_engine
from server.storage.schema import cds_feedback

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_feedback_is_stored_per_item(database_url: str) -> None:
    engine = make_engine(database_url)
    sink = SqlFeedbackSink(engine)
    items = [
        FeedbackItem.model_validate(
            {"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-03-01T12:00:00Z"}
        ),
        FeedbackItem.model_validate(
            {
                "card": "c2",
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "x", "system": "urn:test", "display": "X"}},
                "outcomeTimestamp": "2026-03-01T12:00:00Z",
            }
        ),
    ]
    asyncio.run(sink.store("order-sign-crd", items, NOW))
    with engine.connect() as connection:
        rows = connection.execute(select(cds_feedback).order_by(cds_feedback.c.card)).mappings().all()
    assert [(r["service_id"], r["card"], r["outcome"]) for r in rows] == [
        ("order-sign-crd", "c1", "accepted"),
        ("order-sign-crd", "c2", "overridden"),
    ]
    assert rows[1]["item"]["overrideReason"]["reason"]["code"] == "x"
    engine.dispose()


def test_jti_is_accepted_once_per_issuer_until_it_expires(database_url: str) -> None:
    engine = make_engine(database_url)
    store = SqlJtiStore.of(engine)
    expires = NOW + timedelta(minutes=5)

    async def scenario() -> list[bool]:
        return [
            await store.first_use("https://ehr.a", "j1", expires, NOW),
            await store.first_use("https://ehr.a", "j1", expires, NOW + timedelta(seconds=1)),
            await store.first_use("https://ehr.b", "j1", expires, NOW),
            await store.first_use("https://ehr.a", "j1", expires + timedelta(minutes=5), expires),
        ]

    assert asyncio.run(scenario()) == [True, False, True, True]
    engine.dispose()
