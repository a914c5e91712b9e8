"""Which of a batch of patients' stored resources go into the export, and as which NDJSON line.

The rules per purpose (:class:`ExportPolicy`): the date-of-service floor (Provider Access: 1 January 2016;
Payer-to-Payer: five years back), whether denied PAs are left out (Payer-to-Payer), and always: no drug
PAs, no remittance or cost sharing (``content.py``), only the requested types, only resources changed at
or after ``_since``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from server.fhir_json import dumps, loads
from server.search.values import timestamp

from .codes import PAYER_TO_PAYER_YEARS, PROVIDER_ACCESS_SINCE, Purpose
from .compartment import PatientResource
from .content import is_denied, is_drug_claim, request_id, served_on_or_after, without_cost_sharing


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


@dataclass(frozen=True)
class ExportPolicy:
    purpose: Purpose
    cutoff: str  # stored timestamp: the earliest date of service exported
    exclude_denied: bool

    @classmethod
    def of(cls, purpose: Purpose, now: datetime) -> ExportPolicy:
        if purpose is Purpose.PAYER_TO_PAYER:
            return cls(purpose, timestamp(years_before(now, PAYER_TO_PAYER_YEARS)), exclude_denied=True)
        return cls(purpose, timestamp(PROVIDER_ACCESS_SINCE), exclude_denied=False)


@dataclass(frozen=True)
class Line:
    resource_type: str
    patient_id: str
    body: bytes  # one resource, compact JSON, no newline


def select_lines(
    found: Sequence[PatientResource], types: Collection[str], since: str | None, policy: ExportPolicy
) -> Iterator[Line]:
    """The export lines of ``found`` (which may hold Claims/ClaimResponses of unrequested types: they
    decide which PA resources are drug requests or denials)."""
    # orjson for looking (fast); the exact-decimal parser only for the few resources rewritten
    parsed = {(f.resource_type, f.resource_id): orjson.loads(f.raw) for f in found}
    drug_claims = {rid for (rt, rid), body in parsed.items() if rt == "Claim" and is_drug_claim(body)}
    left_out_claims = set(drug_claims)
    for (rt, _), body in parsed.items():
        if rt == "ClaimResponse" and policy.exclude_denied and is_denied(body):
            claim = request_id(body)
            if claim is not None:
                left_out_claims.add(claim)
    for item in found:
        if item.resource_type not in types or (since is not None and item.last_updated < since):
            continue
        body = parsed[(item.resource_type, item.resource_id)]
        if item.resource_type == "Claim" and item.resource_id in left_out_claims:
            continue
        if item.resource_type == "ClaimResponse" and (
            request_id(body) in drug_claims or (policy.exclude_denied and is_denied(body))
        ):
            continue
        if item.resource_type == "ExplanationOfBenefit" and body.get("use") == "preauthorization":
            if is_drug_claim(body):  # a PDex prior-authorization EOB for drugs
                continue
        if not served_on_or_after(body, policy.cutoff):
            continue
        trimmed = without_cost_sharing(loads(item.raw)) if without_cost_sharing(body) is not None else None
        yield Line(item.resource_type, item.patient_id, item.raw if trimmed is None else dumps(trimmed))
