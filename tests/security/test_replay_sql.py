"""The database-backed replay store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData

from server.security.replay_sql import SqlReplayStore, jti_table
from server.storage.engine import make_engine

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sqlite(tmp_path):
    return make_engine(f"sqlite:///{tmp_path / 'replay.db'}")


def _postgres():
    url = os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    return make_engine(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    engine = _sqlite(tmp_path) if request.param == "sqlite" else _postgres()
    metadata = MetaData()
    table = jti_table(metadata, name=f"security_jti_test_{uuid.uuid4().hex[:8]}")
    metadata.create_all(engine)
    try:
        yield SqlReplayStore(engine, table)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_second_use_is_a_replay_until_expiry(store):
    until = NOW + timedelta(minutes=5)

    async def run() -> list[bool]:
        return [
            await store.first_use("ehr", "j1", until, NOW),
            await store.first_use("ehr", "j1", until, NOW + timedelta(minutes=1)),
            await store.first_use("other-client", "j1", until, NOW),
            await store.first_use("ehr", "j1", until + timedelta(minutes=5), until + timedelta(seconds=1)),
        ]

    assert asyncio.run(run()) == [True, False, True, True]


def test_concurrent_first_uses_have_one_winner(store):
    until = NOW + timedelta(minutes=5)

    async def race() -> list[bool]:
        return list(await asyncio.gather(*(store.first_use("ehr", "same", until, NOW) for _ in range(8))))

    assert sorted(asyncio.run(race())) == [False] * 7 + [True]
