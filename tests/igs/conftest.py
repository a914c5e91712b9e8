"""Fixtures for the IG package tests: the packages come from PRIORGATE_IG_PATH (skipped when unset).

``example`` parametrises a test over every example shipped in the CRD, DTR and PAS packages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from igs.packages import Package
from igs.registry import Registry, load_registry
from igs.validator import Validator

EXAMPLE_PACKAGES = ("hl7.fhir.us.davinci-crd", "hl7.fhir.us.davinci-dtr", "hl7.fhir.us.davinci-pas")


def _ig_dir() -> Path | None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    return Path(raw) if raw and Path(raw).is_dir() else None


def _registry() -> Registry | None:
    folder = _ig_dir()
    return load_registry(folder) if folder is not None else None


_SHARED: dict[str, Any] = {}


def shared_registry() -> Registry | None:
    if "registry" not in _SHARED:
        _SHARED["registry"] = _registry()
    registry: Registry | None = _SHARED["registry"]
    return registry


def all_examples() -> list[tuple[Package, str, dict[str, Any]]]:
    registry = shared_registry()
    if registry is None:
        return []
    return [
        (package, filename, resource)
        for package in registry.packages
        if package.name in EXAMPLE_PACKAGES
        for filename, resource in package.examples()
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "example" in metafunc.fixturenames:
        found = all_examples()
        if found:
            metafunc.parametrize(
                "example", found, ids=[f"{p.key}/{name.removeprefix('example/')}" for p, name, _ in found]
            )
        else:
            metafunc.parametrize(
                "example", [pytest.param(None, marks=pytest.mark.skip("PRIORGATE_IG_PATH unset"))]
            )


@pytest.fixture(scope="session")
def ig_dir() -> Path:
    folder = _ig_dir()
    if folder is None:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    return folder


@pytest.fixture(scope="session")
def registry(ig_dir: Path) -> Registry:
    found = shared_registry()
    assert found is not None
    return found


@pytest.fixture(scope="session")
def validator(registry: Registry) -> Validator:
    return Validator(registry)


@pytest.fixture(scope="session")
def example_list(registry: Registry) -> list[tuple[Package, str, dict[str, Any]]]:
    return all_examples()
