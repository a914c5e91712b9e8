"""What the work queue, the dashboard and the public metrics read from one stored PAS request.

Pure: a parsed :class:`PasRequest`, its current :class:`Decision` and its review item (if it was pended)
in, one flat :class:`RequestFacts` out. Filters and figures are all computed from these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from server.pas.codes import ReviewAction, Urgency
from server.pas.decision import Decision
from server.pas.fhirdata import Code
from server.pas.request import PasRequest
from server.pas.review import ReviewItem, ReviewStatus

from .metrics import AppealResult, DecisionRecord, Outcome

UNSPECIFIED: Final = "unspecified"
DUE_SOON: Final = timedelta(hours=24)

# X12 1365 service type codes used on PAS Claim.item.category (a few common ones named).
SERVICE_TYPES: Final[Mapping[str, str]] = {
    "1": "Medical care",
    "2": "Surgical",
    "4": "Diagnostic X-ray",
    "5": "Diagnostic lab",
    "12": "Durable medical equipment purchase",
    "18": "Durable medical equipment rental",
    "42": "Home health care",
    "73": "Diagnostic medical",
    "AD": "Occupational therapy",
    "PT": "Physical therapy",
}

Describe = Callable[[str | None, str], str | None]


@dataclass(frozen=True)
class Procedure:
    sequence: int
    system: str | None
    code: str
    description: str
    action: str  # X12 HCR01 of the current decision (A1, A3, A4, A6, C)


@dataclass(frozen=True)
class RequestFacts:
    submission_id: str
    review_id: str | None
    claim_identifier: str
    urgency: Urgency
    line_of_business: str
    payer: str
    specialty: str
    service_category: str
    site: str
    patient: str
    procedures: tuple[Procedure, ...]
    received_at: datetime
    due_at: datetime | None
    status: str  # open | info-requested | decided | final | cancelled
    assignee: str | None
    outcome: Outcome
    determined_at: datetime | None
    first_pass: bool  # determined without a reviewer (no review item)
    extended: bool
    denial_reasons: tuple[tuple[str, str], ...]  # (X12 886 code, text)
    appeal: AppealResult | None = None
    appeal_decided_at: datetime | None = None
    tenant: str = ""  # the submitter organization's tenant the request is stored in

    @property
    def is_open(self) -> bool:
        return self.review_id is not None and self.status in (
            ReviewStatus.OPEN.value,
            ReviewStatus.INFO_REQUESTED.value,
        )

    def time_left(self, now: datetime) -> timedelta | None:
        return None if self.due_at is None else self.due_at - now

    def aging(self, now: datetime) -> str:
        """``overdue``, ``due-soon`` (within 24 h) or ``on-time`` for an open request; ``""`` otherwise."""
        left = self.time_left(now)
        if not self.is_open or left is None:
            return ""
        if left < timedelta(0):
            return "overdue"
        if left <= DUE_SOON:
            return "due-soon"
        return "on-time"

    def record(self) -> DecisionRecord:
        return DecisionRecord(
            submission_id=self.submission_id,
            urgency=self.urgency,
            received_at=self.received_at,
            determined_at=self.determined_at,
            outcome=self.outcome,
            extended=self.extended,
            appeal=self.appeal,
            appeal_decided_at=self.appeal_decided_at,
        )

    def procedure_codes(self) -> str:
        return ", ".join(p.code for p in self.procedures)


def outcome_of(decision: Decision) -> Outcome:
    items = [i for i in decision.items if i.action is not ReviewAction.CANCELLED]
    if not items:
        return Outcome.CANCELLED
    if any(i.action is ReviewAction.PENDED for i in items):
        return Outcome.PENDED
    approved = any(i.action in (ReviewAction.CERTIFIED, ReviewAction.MODIFIED) for i in items)
    denied = any(i.action is ReviewAction.NOT_CERTIFIED for i in items)
    if approved and denied:
        return Outcome.PARTIAL
    return Outcome.APPROVED if approved else Outcome.DENIED


def _label(code: Code | None, names: Mapping[str, str] | None = None) -> str | None:
    if code is None:
        return None
    if code.display:
        return code.display
    if names is not None and code.code in names:
        return names[code.code]
    return code.code


def _concept_label(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    if isinstance(concept.get("text"), str) and concept["text"]:
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, Mapping):
            label = coding.get("display") or coding.get("code")
            if isinstance(label, str) and label:
                return label
    return None


def specialty_of(request: PasRequest) -> str:
    """The requesting provider's specialty: ``careTeam.qualification``, else the resolved
    PractitionerRole's (or Practitioner's qualification) ``specialty``."""
    for member in request.claim.resource.get("careTeam") or ():
        if isinstance(member, Mapping):
            label = _concept_label(member.get("qualification"))
            if label:
                return label
    for member in request.care_team:
        if member.provider is None or not member.provider.full_url:
            continue
        entry = request.index.resolve(member.provider.full_url)
        resource = entry.resource if entry is not None else None
        if isinstance(resource, Mapping):
            for concept in resource.get("specialty") or ():
                label = _concept_label(concept)
                if label:
                    return label
    return UNSPECIFIED


def patient_name(request: PasRequest) -> str:
    entry = request.index.resolve(request.patient.full_url) if request.patient.full_url else None
    resource = entry.resource if entry is not None else {}
    for name in resource.get("name") or ():
        if isinstance(name, Mapping):
            given = " ".join(str(g) for g in name.get("given") or ())
            family = str(name.get("family") or "")
            text = name.get("text") or f"{given} {family}".strip()
            if text:
                return str(text)
    return request.patient.name or (
        request.patient.identifiers[0].value if request.patient.identifiers else ""
    )


def _party_label(name: str | None, identifiers: tuple[Any, ...]) -> str:
    if name:
        return name
    return identifiers[0].value if identifiers else UNSPECIFIED


def request_facts(
    submission_id: str,
    request: PasRequest,
    decision: Decision,
    *,
    received_at: datetime,
    review: ReviewItem | None = None,
    assignee: str | None = None,
    describe: Describe | None = None,
    appeal: AppealResult | None = None,
    appeal_decided_at: datetime | None = None,
    tenant: str = "",
) -> RequestFacts:
    outcome = outcome_of(decision)
    procedures = []
    for item in request.items:
        current = decision.item(item.sequence)
        product = item.product
        code = product.code if product is not None else ""
        system = product.system if product is not None else None
        description = (product.display if product is not None else None) or (
            describe(system, code) if describe is not None and code else None
        )
        procedures.append(
            Procedure(
                item.sequence,
                system,
                code,
                description or code,
                current.action.value if current is not None else "",
            )
        )
    categories = [label for i in request.items if (label := _label(i.category, SERVICE_TYPES))]
    line = next((c.line_of_business for c in request.coverages if c.line_of_business), None)
    denials = tuple(
        (i.reason_codes[0].code if i.reason_codes else "", i.note or "")
        for i in decision.items
        if i.action is ReviewAction.NOT_CERTIFIED
    )
    determined = outcome in (Outcome.APPROVED, Outcome.PARTIAL, Outcome.DENIED)
    if review is not None:
        status = review.status.value
    else:
        status = "cancelled" if outcome is Outcome.CANCELLED else "final"
    return RequestFacts(
        submission_id=submission_id,
        review_id=review.review_id if review is not None else None,
        claim_identifier=request.claim_identifiers[0].value if request.claim_identifiers else submission_id,
        urgency=request.urgency,
        line_of_business=line or UNSPECIFIED,
        payer=_party_label(request.insurer.name, request.insurer.identifiers),
        specialty=specialty_of(request),
        service_category=categories[0] if categories else UNSPECIFIED,
        site=_party_label(request.provider.name, request.provider.identifiers),
        patient=patient_name(request),
        procedures=tuple(procedures),
        received_at=review.received_at if review is not None else received_at,
        due_at=review.due_at if review is not None else None,
        status=status,
        assignee=assignee,
        outcome=outcome,
        determined_at=decision.decided_at if determined else None,
        first_pass=review is None,
        extended=bool(review is not None and review.extensions),
        denial_reasons=denials,
        appeal=appeal,
        appeal_decided_at=appeal_decided_at,
        tenant=tenant,
    )
