"""Run the black-box conformance suites against the in-process app, on SQLite and on PostgreSQL, with
security on: the suites send a client's Bearer token, as ``python -m conformance --token`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def private_pg_schema() -> Iterator[str]:
    """A schema of its own in the shared test database, so other branches' migrations there never
    collide with this one's."""
    base = os.environ["PRIORGATE_TEST_DATABASE_URL"]
    with private_schema(base, "conformance") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conformance.db'}"
    else:
        base = os.environ.get("PRIORGATE_TEST_DATABASE_URL", "")
        if not base:
            pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
        url = request.getfixturevalue("private_pg_schema")
    key = SigningKey.of(generate_private_key("ES384"), "ES384")
    client = register_client(
        "conformance",
        tenants=["org-conformance"],
        scopes="system/*.cruds",
        jwks={"keys": [public_jwk(key.private_key, "ES384")]},
    )
    (tmp_path / "clients.json").write_bytes(dump_clients([client]))
    security = SecuritySettings(
        security_dir=tmp_path, clients_file=tmp_path / "clients.json", demo_clients=False
    )
    settings = Settings(database_url=url, demo_content=False, base_url=BASE)
    with TestClient(create_app(settings, prepare_database=True, security=security), base_url=BASE) as http:
        from datetime import UTC, datetime

        token = fetch_token(
            "conformance",
            key,
            token_url=BASE + "/auth/token",
            scope="system/*.cruds",
            now=datetime.now(UTC),
            http=http,
        )
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield http


def test_fhir_core_suite_passes(client: TestClient) -> None:
    results = run_suites([SUITES["fhir-core"]], Target(client=client))
    failures = [
        f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS
    ]
    assert len(results) == len(SUITES["fhir-core"].checks)
    assert not failures, "\n".join(failures)


def test_pas_server_suite_passes_with_a_client_token(client: TestClient) -> None:
    """The PAS suite as a submitting client runs it: everything passes except the checks that decide a
    pended request through the review API, which a client may not use (payer staff only): skipped."""
    results = run_suites([SUITES["pas-server"]], Target(client=client))
    failures = [
        f"{r.check}: {r.outcome.value}: {r.message}"
        for r in results
        if r.outcome in (Outcome.FAIL, Outcome.ERROR)
    ]
    assert len(results) == len(SUITES["pas-server"].checks)
    assert not failures, "\n".join(failures)
    skipped = sorted(r.check for r in results if r.outcome is Outcome.SKIP)
    assert skipped == [
        "pended-notification-2.0.1",
        "pended-notification-2.2.1",
        "workflow-denial-2.0.1",
        "workflow-denial-2.2.1",
    ]


class _WithPatientToken:
    """The app's verifier, plus one patient-context token standing for what a SMART authorization
    server issues a member's app (``patient`` = the suite's member Patient)."""

    def __init__(self, inner: Any, token: str, principal: Any) -> None:
        self.inner, self.token, self.principal = inner, token, principal

    async def verify(self, token: str) -> Any:
        return self.principal if token == self.token else await self.inner.verify(token)


def test_member_access_suite_passes_with_a_patient_token(client: TestClient) -> None:
    from conformance.suites import member_access
    from server.security import install_security
    from server.security.principal import Principal, kind_of
    from server.security.tokens import lenient_scopes

    scopes = lenient_scopes("patient/ExplanationOfBenefit.rs patient/Patient.rs")
    member = Principal(
        "member-app",
        frozenset({"org-conformance"}),
        scopes,
        kind=kind_of(scopes),
        patient=member_access.MEMBER_PATIENT_ID,
    )
    gate = client.app.state.priorgate_security_gate  # type: ignore[attr-defined]
    install_security(client.app, _WithPatientToken(gate.verifier, "member-token", member))  # type: ignore[arg-type]
    target = Target(
        client=client,
        patient_headers={"Authorization": "Bearer member-token"},
        organization="org-conformance",
    )
    results = run_suites([SUITES["member-access"]], target)
    failures = [
        f"{r.check}: {r.outcome.value}: {r.message}" for r in results if r.outcome is not Outcome.PASS
    ]
    assert len(results) == len(SUITES["member-access"].checks)
    assert not failures, "\n".join(failures)
