"""Coverage rule data (one TOML file per payer); schema and loader live in ``cds_hooks.policy``."""

from __future__ import annotations

from pathlib import Path

DEMO_POLICY_DIR = Path(__file__).resolve().parent

__all__ = ["DEMO_POLICY_DIR"]
