"""Demo content loaded into an empty database on first start (``PRIORGATE_DEMO_CONTENT``).

Each source is a transaction Bundle of PUTs (fixed ids, so loading twice changes nothing). Later features
add their own files to :data:`DEMO_SOURCES` (one line each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

DEMO_DIR: Final = Path(__file__).resolve().parent

# The demo payer "PriorGate Demo Health Plan" (payer id PGDEMO), a clinic, a practitioner, members;
# the legacy payer "Legacy Mutual Insurance" (PGX12, routed over X12 278 to the simulated payer).
DEMO_SOURCES: Final[tuple[Path, ...]] = (DEMO_DIR / "payer.json", DEMO_DIR / "legacy_payer.json")

DEMO_PAYER_IDENTIFIER: Final = ("https://priorgate.org/fhir/sid/payer-id", "PGDEMO")
DEMO_X12_PAYER_IDENTIFIER: Final = ("https://priorgate.org/fhir/sid/payer-id", "PGX12")
# Payer routing when PRIORGATE_PAYER_ROUTES_FILE is unset and demo content is on: PGX12 over X12.
DEMO_PAYER_ROUTES: Final = DEMO_DIR / "payer_routes.toml"

__all__ = [
    "DEMO_DIR",
    "DEMO_PAYER_IDENTIFIER",
    "DEMO_PAYER_ROUTES",
    "DEMO_SOURCES",
    "DEMO_X12_PAYER_IDENTIFIER",
]
