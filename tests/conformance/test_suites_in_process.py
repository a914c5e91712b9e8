"""Run the black-box conformance suites against the in-process app, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conformance import SUITES, Outcome, Target, run_suites
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conformance.db'}"
    else:
        url = os.environ.get("PRIORGATE_TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    settings = Settings(database_url=url, demo_content=False)
    with TestClient(
        create_app(settings, prepare_database=True, security=AUTH_OFF), base_url="http://testserver"
    ) as test_client:
        yield test_client


def test_fhir_core_suite_passes(client: TestClient) -> None:
    results = run_suites([SUITES["fhir-core"]], Target(client=client))
    failures = [
        f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS
    ]
    assert len(results) == len(SUITES["fhir-core"].checks)
    assert not failures, "\n".join(failures)
