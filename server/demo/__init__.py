"""Demo content loaded into an empty database on first start (``PRIORGATE_DEMO_CONTENT``).

Each source is a transaction Bundle of PUTs (fixed ids, so loading twice changes nothing). Later features
add their own files to :data:`DEMO_SOURCES` (one line each), or to :data:`DEMO_TENANT_SOURCES` for content
that belongs to one organization (tenant) rather than the default one.
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

# Patient Access: the demo member (PriorGate member identifier PGM-DEMO-0001) and its Coverage, kept by
# the payer organization ``payer``: its prior-authorization ExplanationOfBenefits are stored in that
# tenant, and its patient login (server/app_launch/demo.py) reads there.
DEMO_MEMBER_TENANT: Final = "payer"
DEMO_MEMBER_PATIENT_ID: Final = "pgdemo-member"
DEMO_MEMBER_ID: Final = "PGM-DEMO-0001"
DEMO_TENANT_SOURCES: Final[tuple[tuple[str, Path], ...]] = ((DEMO_MEMBER_TENANT, DEMO_DIR / "member.json"),)

__all__ = [
    "DEMO_DIR",
    "DEMO_MEMBER_ID",
    "DEMO_MEMBER_PATIENT_ID",
    "DEMO_MEMBER_TENANT",
    "DEMO_PAYER_IDENTIFIER",
    "DEMO_PAYER_ROUTES",
    "DEMO_SOURCES",
    "DEMO_TENANT_SOURCES",
    "DEMO_X12_PAYER_IDENTIFIER",
]
