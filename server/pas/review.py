"""Pended work: the review-queue item, its due time, and reviewer decisions applied to a Decision.

Spec: PAS "Pended authorizations" (spec-51, spec-60/61: the final answer is pushed by subscription),
spec-73 (pended requests queryable for 6 months after the anticipated end of service), CMS-0057-F
decision time frames (72 hours expedited, 7 calendar days standard) as configurable defaults.
Additional-information requests follow PAS ainfo-2/3 (PASCommunicationRequest, PASTask).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType

from igs.outcome import unprocessable

from . import urls
from .codes import ReviewAction, Urgency
from .decision import (
    DEFAULT_POLICY,
    Decision,
    DecisionPolicy,
    InfoRequest,
    ItemDecision,
    Modification,
    Reviewer,
    approval_period,
)
from .fhirdata import Code, Ident, Json, first_day, reference
from .ports import IdFactory
from .request import PasRequest

RETENTION_AFTER_SERVICE = timedelta(days=183)  # spec-73: at least 6 months


@dataclass(frozen=True)
class ReviewClock:
    """Decision time frames for one program (line of business)."""

    expedited: timedelta = timedelta(hours=72)
    standard: timedelta = timedelta(days=7)

    def allowance(self, urgency: Urgency) -> timedelta:
        return self.expedited if urgency is Urgency.EXPEDITED else self.standard


@dataclass(frozen=True)
class ReviewClocks:
    """The default clock and per-line-of-business overrides (keys: Coverage.type codes)."""

    default: ReviewClock = ReviewClock()
    by_line_of_business: Mapping[str, ReviewClock] = field(default_factory=lambda: MappingProxyType({}))

    def for_line(self, line_of_business: str | None) -> ReviewClock:
        if line_of_business is not None and line_of_business in self.by_line_of_business:
            return self.by_line_of_business[line_of_business]
        return self.default


def clocks_from(settings: Mapping[str, Mapping[str, float]]) -> ReviewClocks:
    """Review clocks from configuration: ``{"QHP": {"standard_days": 15, "expedited_hours": 72}}``; the key
    ``*`` replaces the default (72 hours / 7 calendar days). Keys are Coverage.type codes."""
    known = {"expedited_hours", "standard_days"}
    default = ReviewClock()
    lines: dict[str, ReviewClock] = {}
    for line, values in settings.items():
        unknown = set(values) - known
        if unknown or any(v <= 0 for v in values.values()):
            raise ValueError(f"review clock {line!r}: use positive expedited_hours and standard_days only")
        clock = ReviewClock(
            expedited=timedelta(hours=values.get("expedited_hours", 72)),
            standard=timedelta(days=values.get("standard_days", 7)),
        )
        if line == "*":
            default = clock
        else:
            lines[line] = clock
    return ReviewClocks(default, MappingProxyType(lines))


class ReviewStatus(StrEnum):
    OPEN = "open"
    INFO_REQUESTED = "info-requested"
    DECIDED = "decided"


@dataclass(frozen=True)
class DueExtension:
    """A recorded extension of the due time (who, when, why, by how much)."""

    by: timedelta
    reason: str
    at: datetime
    reviewer_id: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """One pended request in the review queue."""

    review_id: str
    claim_identifiers: tuple[Ident, ...]
    submitter_identifiers: tuple[Ident, ...]
    urgency: Urgency
    line_of_business: str | None
    received_at: datetime
    due_at: datetime
    pended_sequences: tuple[int, ...]
    retain_until: datetime
    status: ReviewStatus = ReviewStatus.OPEN
    extensions: tuple[DueExtension, ...] = ()

    def is_overdue(self, now: datetime) -> bool:
        return self.status is not ReviewStatus.DECIDED and now > self.due_at


def due_at(
    received_at: datetime, urgency: Urgency, line_of_business: str | None, clocks: ReviewClocks
) -> datetime:
    """When a decision is due: expedited 72 h, standard 7 calendar days, unless the program says otherwise."""
    return received_at + clocks.for_line(line_of_business).allowance(urgency)


def open_review(
    request: PasRequest,
    decision: Decision,
    *,
    review_id: str,
    received_at: datetime,
    clocks: ReviewClocks = ReviewClocks(),
) -> ReviewItem:
    """The queue item for a decision with pended (A4) items."""
    pended = tuple(i.sequence for i in decision.pended)
    if not pended:
        raise unprocessable("Only a request with pended items goes to the review queue")
    line = next((c.line_of_business for c in request.coverages if c.line_of_business), None)
    due = due_at(received_at, request.urgency, line, clocks)
    return ReviewItem(
        review_id=review_id,
        claim_identifiers=request.claim_identifiers,
        submitter_identifiers=request.submitter_identifiers,
        urgency=request.urgency,
        line_of_business=line,
        received_at=received_at,
        due_at=due,
        pended_sequences=pended,
        retain_until=retention_until(request, received_at),
    )


def retention_until(request: PasRequest, received_at: datetime) -> datetime:
    """spec-73: keep a pended request queryable 6 months past the anticipated end of service."""
    ends = [first_day(i.serviced.end or i.serviced.start) for i in request.items if i.serviced is not None]
    latest = max((e for e in ends if e is not None), default=None)
    anchor = received_at
    if latest is not None:
        end_of_service = datetime.combine(latest, time(), tzinfo=received_at.tzinfo)
        anchor = max(anchor, end_of_service)
    return anchor + RETENTION_AFTER_SERVICE


def extend_due(
    item: ReviewItem, *, by: timedelta, reason: str, at: datetime, reviewer_id: str | None = None
) -> ReviewItem:
    """Extend the due time; the reason is mandatory and recorded."""
    if not reason.strip():
        raise unprocessable("A due-time extension needs a reason", "reason")
    if by <= timedelta(0):
        raise unprocessable("A due-time extension must be positive", "by")
    return replace(
        item,
        due_at=item.due_at + by,
        extensions=(*item.extensions, DueExtension(by, reason, at, reviewer_id)),
    )


class ReviewerAction(StrEnum):
    APPROVE = "approve"
    MODIFY = "modify"
    DENY = "deny"


@dataclass(frozen=True)
class ReviewerDecision:
    """What a reviewer decided for one pended item. A denial needs an X12 886 reason code and text."""

    item_sequence: int
    action: ReviewerAction
    reason_code: Code | None = None
    reason_text: str | None = None
    modification: Modification | None = None


def apply_review(
    request: PasRequest,
    decision: Decision,
    decisions: Sequence[ReviewerDecision],
    *,
    reviewer: Reviewer,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy = DEFAULT_POLICY,
) -> Decision:
    """A new version of the Decision with the reviewer's outcomes (the only path to A3)."""
    by_seq = {d.item_sequence: d for d in decisions}
    unknown = set(by_seq) - {i.sequence for i in decision.items}
    if unknown:
        raise unprocessable(f"No item with sequence {sorted(unknown)} in this request", "item_sequence")
    if len(by_seq) != len(decisions):
        raise unprocessable("Each item may be decided once per review", "item_sequence")
    items: list[ItemDecision] = []
    for current in decision.items:
        reviewed = by_seq.get(current.sequence)
        if reviewed is None:
            items.append(current)
            continue
        if current.action is not ReviewAction.PENDED:
            raise unprocessable(f"Item {current.sequence} is already decided ({current.action.value})")
        items.append(_reviewed_item(request, current, reviewed, reviewer, ids, now, policy))
    pre_auth_ref = decision.pre_auth_ref
    if pre_auth_ref is None and any(i.authorization_number for i in items):
        pre_auth_ref = ids.authorization_number()
    still_pended = {i.sequence for i in items if i.action is ReviewAction.PENDED}
    return replace(
        decision,
        items=tuple(items),
        decided_at=now,
        pre_auth_ref=pre_auth_ref,
        version=decision.version + 1,
        reviewer=reviewer,
        # a request for more information stands while what it is for is pended
        info_requests=tuple(
            r
            for r in decision.info_requests
            if (r.item_sequence in still_pended) or (r.item_sequence is None and still_pended)
        ),
    )


def _reviewed_item(
    request: PasRequest,
    current: ItemDecision,
    reviewed: ReviewerDecision,
    reviewer: Reviewer,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy,
) -> ItemDecision:
    if reviewed.action is ReviewerAction.DENY:
        if reviewed.reason_code is None or not (reviewed.reason_text or "").strip():
            raise unprocessable(
                f"Denying item {current.sequence} needs a reason code (X12 886) and a reason text",
                "reason_code",
            )
        return replace(
            current,
            action=ReviewAction.NOT_CERTIFIED,
            reason_codes=(reviewed.reason_code,),
            note=reviewed.reason_text,
            reviewer=reviewer,
        )
    req_item = request.item(current.sequence)
    serviced = req_item.serviced if req_item is not None else None
    if reviewed.action is ReviewerAction.MODIFY and reviewed.modification is None:
        raise unprocessable(f"Modifying item {current.sequence} needs what is authorized", "modification")
    return replace(
        current,
        action=ReviewAction.MODIFIED if reviewed.action is ReviewerAction.MODIFY else ReviewAction.CERTIFIED,
        authorization_number=ids.authorization_number(),
        pre_auth_period=approval_period(serviced, now.date(), policy.default_validity),
        issued=now.date().isoformat(),
        modification=reviewed.modification if reviewed.action is ReviewerAction.MODIFY else None,
        reason_codes=(reviewed.reason_code,) if reviewed.reason_code else (),
        note=reviewed.reason_text,
        reviewer=reviewer,
    )


def request_more_information(
    decision: Decision, requests: Sequence[InfoRequest], *, reviewer: Reviewer, now: datetime
) -> Decision:
    """Ask the provider for more information: items stay pended (A4), CommunicationRequests are added."""
    if not requests:
        raise unprocessable("A request for more information needs at least one requested item")
    pended = {i.sequence for i in decision.pended}
    for info in requests:
        if info.item_sequence is not None and info.item_sequence not in pended:
            raise unprocessable(
                f"Item {info.item_sequence} is not pended; nothing to ask for", "item_sequence"
            )
    return replace(
        decision,
        info_requests=(*decision.info_requests, *requests),
        decided_at=now,
        version=decision.version + 1,
        reviewer=reviewer,
    )


def additional_information_task(
    request: PasRequest, info: InfoRequest, *, task_id: str, payer_url: str, payer_npi: str | None = None
) -> Json:
    """A PASTask conveying a request for more information (the shape the client creates for CDex/DTR)."""
    code = "attachment-request-questionnaire" if info.loinc_code == "102089-0" else "attachment-request-code"
    rules = request.version.rules
    line = info.item_sequence or 1
    line_value = (
        "valuePositiveInt"
        if rules.task_line_number_extension == urls.EXT_SERVICE_LINE_NUMBER
        else "valueInteger"
    )
    line_ext = [{"url": rules.task_line_number_extension, line_value: line}]
    req_item = request.item(info.item_sequence) if info.item_sequence is not None else None
    trace = (req_item.trace_numbers if req_item else ()) or request.claim_identifiers
    inputs: list[Json] = [
        {"type": _temp("payer-url"), "valueUrl": payer_url},
    ]
    if code == "attachment-request-questionnaire" and trace:
        # The trace number is the DTR context id (ainfo-3): a string in 2.2, an Identifier in 2.0.1.
        value = (
            {"valueString": trace[0].value}
            if rules.task_questionnaire_input == "questionnaire-context"
            else {"valueIdentifier": trace[0].to_fhir()}
        )
        inputs.append({"extension": line_ext, "type": _temp(rules.task_questionnaire_input), **value})
    else:
        inputs.append(
            {
                "extension": line_ext,
                "type": _temp("attachments-needed"),
                "valueCodeableConcept": {"coding": [{"system": urls.CS_LOINC, "code": info.loinc_code}]},
            }
        )
    payer = (
        {"system": urls.NPI_SYSTEM, "value": payer_npi}
        if payer_npi
        else _first_ident(request.insurer.identifiers)
    )
    provider = _first_ident(request.provider.identifiers)
    return {
        "resourceType": "Task",
        "id": task_id,
        "meta": {"profile": [request.version.profile(urls.PROFILE_TASK)]},
        "identifier": [t.to_fhir() for t in trace[:1]] or [{"value": task_id}],
        "status": "requested",
        "intent": "order",
        "code": _temp(code),
        "for": reference(request.patient.full_url),
        "requester": {"identifier": payer},
        "owner": {"identifier": provider},
        "reasonCode": _temp("priorAuthorization"),
        "reasonReference": reference(request.claim.full_url),
        "input": inputs,
    }


def _temp(code: str) -> Json:
    return {"coding": [{"system": urls.CS_PAS_TEMP, "code": code}]}


def _first_ident(identifiers: tuple[Ident, ...]) -> Json:
    return identifiers[0].to_fhir() if identifiers else {"value": "unknown"}
