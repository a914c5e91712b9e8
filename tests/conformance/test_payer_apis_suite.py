"""Run the payer-apis conformance suite (Bulk Data Group export, Provider Access opt-out) against the
in-process app with security on and the export worker running, on SQLite and on PostgreSQL: as a payer
administrator (who writes attribution Groups) everything passes; as a submitting client, which may not
write Groups, the export checks skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conformance import SUITES, Outcome, Target, run_suites
from server.app import create_app
from server.security.backend_client import fetch_token
from server.security.clients import dump_clients, register_client
from server.security.config import SecuritySettings
from server.security.keys import SigningKey, generate_private_key, public_jwk
from server.settings import Settings
from server.storage.private_schema import private_schema

BASE = "http://testserver"
SCOPES = "system/*.cruds"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'payer-apis.db'}"
        return
    base = os.environ.get("PRIORGATE_TEST_DATABASE_URL", "")
    if not base:
        pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    with private_schema(base, "payer_apis") as url:
        yield url


def _client(database: str, tmp_path: Path, roles: list[str]) -> Iterator[TestClient]:
    key = SigningKey.of(generate_private_key("ES384"), "ES384")
    registration = register_client(
        "conformance",
        tenants=["org-conformance"],
        scopes=SCOPES,
        roles=roles,
        jwks={"keys": [public_jwk(key.private_key, "ES384")]},
    )
    (tmp_path / "clients.json").write_bytes(dump_clients([registration]))
    security = SecuritySettings(
        security_dir=tmp_path, clients_file=tmp_path / "clients.json", demo_clients=False
    )
    settings = Settings(
        database_url=database, demo_content=False, base_url=BASE, bulk_export_poll_interval=0.05
    )
    with TestClient(create_app(settings, prepare_database=True, security=security), base_url=BASE) as http:
        token = fetch_token(
            "conformance", key, token_url=BASE + "/auth/token", scope=SCOPES, now=datetime.now(UTC), http=http
        )
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield http


def test_payer_apis_suite_passes_for_a_payer_administrator(database: str, tmp_path: Path) -> None:
    for http in _client(database, tmp_path, ["admin"]):
        results = run_suites([SUITES["payer-apis"]], Target(client=http))
        failures = [
            f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS
        ]
        assert len(results) == len(SUITES["payer-apis"].checks)
        assert not failures, "\n".join(failures)


def test_export_checks_skip_for_a_client_that_may_not_write_groups(database: str, tmp_path: Path) -> None:
    for http in _client(database, tmp_path, []):
        results = {r.check: r.outcome for r in run_suites([SUITES["payer-apis"]], Target(client=http))}
        assert results["capability-group-export"] is Outcome.PASS
        assert results["kickoff-unknown-group"] is Outcome.PASS
        assert results["export-flow"] is Outcome.SKIP
        assert results["export-opt-out"] is Outcome.SKIP
