"""Fixtures for the IG package tests: the packages come from PRIORGATE_IG_PATH (skipped when unset)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from igs.registry import Registry, load_registry


def _ig_dir() -> Path | None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    return Path(raw) if raw and Path(raw).is_dir() else None


@pytest.fixture(scope="session")
def ig_dir() -> Path:
    folder = _ig_dir()
    if folder is None:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    return folder


@pytest.fixture(scope="session")
def registry(ig_dir: Path) -> Registry:
    return load_registry(ig_dir)
