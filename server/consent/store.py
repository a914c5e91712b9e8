"""The stored Consent resources of a batch of patients (every tenant: a Consent counts wherever it was
recorded, e.g. by ``$member-match`` or by payer staff), each with the tenant that recorded it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from server.bulk.compartment import patient_resources
from server.consent.decision import Recorded
from server.fhir_json import loads


def consents_by_patient(
    connection: Connection, patient_ids: Sequence[str], in_tenants: Sequence[str] | None = None
) -> dict[str, list[Recorded]]:
    """Patient id -> the current Consent resources naming that patient (``in_tenants``: every tenant, when
    the caller already has the list)."""
    out: dict[str, list[Recorded]] = {pid: [] for pid in patient_ids}
    for found in patient_resources(connection, patient_ids, ("Consent",), in_tenants):
        consent: Any = loads(found.raw)
        if isinstance(consent, dict):
            out.setdefault(found.patient_id, []).append(Recorded(found.tenant, consent))
    return out
