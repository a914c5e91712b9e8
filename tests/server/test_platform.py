"""Migrations, demo content, CLI, settings, capabilities registry and the generated search parameters."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter
from starlette.testclient import TestClient

from server.app import create_app, mounts
from server.capabilities import Capabilities
from server.cli import COMMANDS, main
from server.database import load_demo
from server.search.definitions import DEFINITIONS_FILE, load_registry
from server.search.generate import generate, render
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.migrate import current_revision, head_revision
from server.storage.repository import Repository
from server.storage.schema import metadata

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def test_migrations_match_the_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_demo_content_loads_once(database_url: str) -> None:
    engine = make_engine(database_url)
    repo = Repository(engine, load_registry())
    try:
        assert load_demo(repo) >= 8
        assert load_demo(repo) == 0
        query = repo.parse_search(
            "Organization", [("identifier", "https://priorgate.org/fhir/sid/payer-id|PGDEMO")]
        )
        (payer,) = repo.search(query).matches
        assert payer.resource()["name"] == "PriorGate Demo Health Plan"
        coverages = repo.search(repo.parse_search("Coverage", [("payor", f"Organization/{payer.id}")]))
        assert len(coverages.matches) == 3
    finally:
        engine.dispose()


def test_first_start_with_demo_content(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", demo_content=True)
    with TestClient(create_app(settings, prepare_database=True, security=AUTH_OFF)) as client:
        assert client.get("/fhir/metadata").status_code == 200
        assert client.get("/fhir/Patient?_summary=count").json()["total"] == 3


def test_cli_db_upgrade_and_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert head_revision() in capsys.readouterr().out
    os.environ["PRIORGATE_PORT"] = "eighty"
    try:
        assert main(["db", "upgrade", "--database-url", url]) == 2
    finally:
        del os.environ["PRIORGATE_PORT"]
    message = capsys.readouterr().err.strip()
    assert "PRIORGATE_PORT" in message and "\n" not in message
    assert main(["db", "upgrade", "--database-url", "mysql://x/y"]) == 2
    assert main(["nonsense"]) == 2
    assert {"serve", "db"} <= set(COMMANDS)


def test_capabilities_registry_renders_operations() -> None:
    capabilities = Capabilities(software_version="1.2.3")
    capabilities.add_resource("Claim", ("create",))
    capabilities.add_operation(
        "Claim", "$submit", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"
    )
    capabilities.add_operation(None, "$validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate")
    statement = capabilities.to_fhir("http://x/fhir", datetime(2026, 1, 1, tzinfo=UTC))
    (claim,) = statement["rest"][0]["resource"]
    assert claim["operation"] == [
        {
            "name": "submit",
            "definition": "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit",
        }
    ]
    assert statement["rest"][0]["operation"][0]["name"] == "validate"
    assert statement["software"]["version"] == "1.2.3"


def test_fhir_router_is_mounted_last() -> None:
    assert mounts(APIRouter())[-1].router.prefix == "/fhir"


@pytest.mark.igs
def test_committed_search_parameters_are_current() -> None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    package = Path(raw) / "hl7.fhir.r4.core-4.0.1.tgz"
    assert package.is_file(), f"{package} is missing"
    assert render(generate(package)) == DEFINITIONS_FILE.read_bytes(), (
        "server/search/search_parameters.json is stale: run python -m server.search.generate " + str(package)
    )
