"""Shared test configuration.

Tests that need PostgreSQL or the IG packages skip on a developer machine without them, but in CI
(``CI`` set) any skipped test fails the run: CI must exercise both database engines and the IGs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def ig_path() -> Path | None:
    """The IG package directory from PRIORGATE_IG_PATH, or None when it is not set or absent."""
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw:
        return None
    path = Path(raw)
    return path if path.is_dir() else None


def postgres_url() -> str | None:
    return os.environ.get("PRIORGATE_TEST_DATABASE_URL") or None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; in CI a skipped PostgreSQL or IG test is a failure")
        session.exitstatus = 1
