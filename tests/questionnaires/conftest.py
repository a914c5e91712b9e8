"""Fixtures for the DTR content tests: the loaded catalog, a fixed clock and the Node CQL toolchain."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from questionnaires import Catalog, load_catalog

CQL_DIR = Path(__file__).resolve().parents[2] / "questionnaires" / "cql"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def node_toolchain() -> Path:
    """questionnaires/cql with node_modules installed (`npm ci` once when missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the CQL translation and execution tests")
    if not (CQL_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--prefix", str(CQL_DIR)], check=True, capture_output=True, timeout=600)
    return CQL_DIR


@pytest.fixture(scope="session")
def run_cql(node_toolchain: Path) -> Callable[[list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Execute cases with cql-execution + cql-exec-fhir (run.mjs); returns define results per case id."""

    def run(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        done = subprocess.run(
            ["node", str(node_toolchain / "run.mjs")],
            input=json.dumps({"cases": cases}),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        result: dict[str, dict[str, Any]] = json.loads(done.stdout)
        return result

    return run
