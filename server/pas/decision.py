"""Per-item prior-authorization decisions from the coverage rules and the linked documentation.

Spec: PAS 2.2.1 "Pended and denied results" and spec-34/36/37: every item keeps its submitted sequence;
approved is A1, modified is A6 with what was authorized in ``addItem``, pended is A4 with a reason.
A3 (not certified) is never produced here: only a reviewer decision (``review.py``) or the answer of a
payer the request was routed to over X12 (``x12_answer.py``, ``decided_by``) can deny.
Documentation is linked by CRD coverage-assertion-id, by DTR context (order or trace number), or
attached to the whole request (ainfo-1..3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from igs.outcome import Failure, OperationOutcomeError, unprocessable

from . import urls
from .codes import LOINC_PAYER_QUESTIONNAIRE, ReviewAction
from .fhirdata import Code, Ident, Period, first_day
from .ports import CoverageEvaluator, CoverageFinding, CoverageQuery, IdFactory, StoredResponse
from .request import PasRequest, RequestItem, SupportingInfo

DEFAULT_VALIDITY = timedelta(days=90)


@dataclass(frozen=True)
class Reviewer:
    """The person who decided (2.2 ``extension-claimResponseReviewer``)."""

    reviewer_id: str
    npi: str | None = None
    specialty: Code | None = None
    name: str | None = None


@dataclass(frozen=True)
class Modification:
    """What was authorized instead of the requested item (returned in ``addItem``)."""

    product: Code
    quantity: Decimal | None = None
    modifiers: tuple[Code, ...] = ()


@dataclass(frozen=True)
class ItemDecision:
    sequence: int
    action: ReviewAction
    trace_numbers: tuple[Ident, ...] = ()
    authorization_number: str | None = None  # HCR02
    pre_auth_period: Period | None = None
    issued: str | None = None  # itemPreAuthIssueDate
    reason_codes: tuple[Code, ...] = ()  # HCR03 (X12 886)
    note: str | None = None  # pend or denial reason text -> processNote
    modification: Modification | None = None
    coverage_assertion_id: str | None = None
    documentation: tuple[int, ...] = ()  # supportingInfo sequences the decision relied on
    dtr_responses: tuple[str, ...] = ()  # stored DTR QuestionnaireResponses it relied on (not in the Bundle)
    reviewer: Reviewer | None = None
    decided_by: str | None = None  # the downstream payer that decided (X12 routing), not PriorGate
    # DTR Questionnaires the decision asks the documentation with: a DTR client launched from the pend
    # (``$questionnaire-package`` context = the item trace number, PAS ainfo-3) gets these
    questionnaires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.action is ReviewAction.NOT_CERTIFIED:
            if self.decided_by is not None:
                if not self.note:
                    raise unprocessable(f"Item {self.sequence}: a payer's denial (A3) needs a reason text")
            elif self.reviewer is None or not self.reason_codes or not self.note:
                raise unprocessable(
                    f"Item {self.sequence}: a denial (A3) needs a reviewer, a reason code and a reason text"
                )
        if self.action is ReviewAction.MODIFIED and self.modification is None:
            raise unprocessable(f"Item {self.sequence}: a modified approval (A6) needs what was authorized")
        if self.action is ReviewAction.PENDED and not self.note:
            raise unprocessable(f"Item {self.sequence}: a pended item needs a reason")


@dataclass(frozen=True)
class Decision:
    """The decision on one request (all its items), the input of the response builders."""

    items: tuple[ItemDecision, ...]
    decided_at: datetime
    pre_auth_ref: str | None = None  # the certification number of the request
    version: int = 1  # bumped by every reviewer action: the ClaimResponse version
    reviewer: Reviewer | None = None
    info_requests: tuple[InfoRequest, ...] = field(default=())

    @property
    def pended(self) -> tuple[ItemDecision, ...]:
        return tuple(i for i in self.items if i.action is ReviewAction.PENDED)

    @property
    def is_final(self) -> bool:
        return not self.pended

    @property
    def pre_auth_period(self) -> Period | None:
        periods = [i.pre_auth_period for i in self.items if i.pre_auth_period is not None]
        if not periods:
            return None
        starts = [p.start for p in periods if p.start]
        ends = [p.end for p in periods if p.end]
        return Period(min(starts) if starts else None, max(ends) if ends else None)

    def item(self, sequence: int) -> ItemDecision | None:
        return next((i for i in self.items if i.sequence == sequence), None)


@dataclass(frozen=True)
class InfoRequest:
    """A request for more information (PASCommunicationRequest; the client turns it into a PASTask)."""

    item_sequence: int | None
    loinc_code: str  # attachment LOINC, or 102089-0 for "payer questionnaire" (ainfo-2/3)
    report_type: Code | None = None  # PWK01
    content_modifier: Code | None = None
    text: str | None = None


@dataclass(frozen=True)
class DecisionPolicy:
    default_validity: timedelta = DEFAULT_VALIDITY


DEFAULT_POLICY = DecisionPolicy()


def decide(
    request: PasRequest,
    evaluate: CoverageEvaluator,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy = DEFAULT_POLICY,
    stored: Sequence[StoredResponse] = (),
) -> Decision:
    """Decide every item of a parsed request (PAS spec-34/36/37); pends what automation cannot approve.
    ``stored`` are DTR responses the payer already holds that may document the items."""
    diagnoses = tuple(d.code for d in request.diagnoses if d.code is not None)
    items: list[ItemDecision] = []
    for item in request.items:
        items.append(_decide_item(request, item, diagnoses, evaluate, ids, now, policy, stored))
    certified = any(i.authorization_number for i in items)
    return Decision(
        items=tuple(items),
        decided_at=now,
        pre_auth_ref=ids.authorization_number() if certified else None,
        info_requests=questionnaire_requests(items),
    )


QUESTIONNAIRE_REQUEST_TEXT = (
    "Complete the payer questionnaire in DTR ($questionnaire-package with this trace number as context)"
)


def questionnaire_requests(items: Sequence[ItemDecision]) -> tuple[InfoRequest, ...]:
    """A "payer questionnaire" request (LOINC 102089-0, PAS ainfo-2) per item pended for documentation a
    DTR questionnaire collects: the response's CommunicationRequest names the item trace number, which is
    the DTR ``$questionnaire-package`` context (ainfo-3)."""
    return tuple(
        InfoRequest(
            item_sequence=i.sequence,
            loinc_code=LOINC_PAYER_QUESTIONNAIRE,
            text=QUESTIONNAIRE_REQUEST_TEXT,
        )
        for i in items
        if i.action is ReviewAction.PENDED and i.questionnaires
    )


def decide_update(
    request: PasRequest,
    prior: Decision,
    evaluate: CoverageEvaluator,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy = DEFAULT_POLICY,
    stored: Sequence[StoredResponse] = (),
) -> Decision:
    """Decide an update or cancel against the prior decision (PASClaimUpdate; spec-34, spec-46).

    Cancelled items (infoCancelled or certificationType 3) and a whole-request cancel become ``C``;
    items marked added or changed are decided afresh; every other item, including prior items the
    update leaves out, keeps its prior result, so the response has current results for all items.
    """
    diagnoses = tuple(d.code for d in request.diagnoses if d.code is not None)
    by_seq = {i.sequence: i for i in prior.items}
    decided: dict[int, ItemDecision] = {}
    for item in request.items:
        previous = by_seq.get(item.sequence)
        if request.is_whole_cancel or item.is_cancel:
            decided[item.sequence] = ItemDecision(
                item.sequence, ReviewAction.CANCELLED, trace_numbers=item.trace_numbers
            )
        elif previous is not None and item.info_changed is None:
            decided[item.sequence] = previous
        else:
            decided[item.sequence] = _decide_item(
                request, item, diagnoses, evaluate, ids, now, policy, stored
            )
    for sequence, previous in by_seq.items():
        if sequence not in decided:
            cancelled = request.is_whole_cancel and previous.action is not ReviewAction.CANCELLED
            decided[sequence] = (
                ItemDecision(sequence, ReviewAction.CANCELLED, trace_numbers=previous.trace_numbers)
                if cancelled
                else previous
            )
    items = tuple(decided[s] for s in sorted(decided))
    fresh = [i for i in items if i.authorization_number and i not in prior.items]
    pre_auth_ref = prior.pre_auth_ref or (ids.authorization_number() if fresh else None)
    return Decision(
        items=items,
        decided_at=now,
        pre_auth_ref=pre_auth_ref,
        version=prior.version + 1,
        info_requests=questionnaire_requests(items),
    )


def _decide_item(
    request: PasRequest,
    item: RequestItem,
    diagnoses: tuple[Code, ...],
    evaluate: CoverageEvaluator,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy,
    stored: Sequence[StoredResponse] = (),
) -> ItemDecision:
    if item.is_cancel:
        return ItemDecision(item.sequence, ReviewAction.CANCELLED, trace_numbers=item.trace_numbers)
    order = request.index.resolve(item.requested_services[0].full_url) if item.requested_services else None
    patient_entry = request.index.resolve(request.patient.full_url) if request.patient.full_url else None
    patient = patient_entry.resource if patient_entry else None
    query = CoverageQuery(
        payer_ids=request.insurer.identifiers,
        member_ids=request.member_ids,
        line_of_business=next((c.line_of_business for c in request.coverages if c.line_of_business), None),
        product=item.product,
        product_codes=item.product_codes,
        modifiers=item.modifiers,
        quantity=item.quantity,
        serviced=item.serviced,
        location=item.location,
        diagnoses=_item_diagnoses(request, item, diagnoses),
        coverage_assertion_ids=item.coverage_assertion_ids,
        urgency=request.urgency,
        today=now.date(),
        order_reference=order.full_url if order else None,
        order_resource=order.resource if order else None,
        provider_npis=_provider_npis(request, item),
        patient_birth_date=_str_field(patient, "birthDate"),
        patient_gender=_str_field(patient, "gender"),
        patient_resource=patient,
    )
    try:
        finding = evaluate(query)
    except OperationOutcomeError as exc:
        if exc.failure is Failure.INTERNAL:
            raise
        return _pend(item, f"Coverage rules could not be evaluated ({exc.message}); queued for review")
    docs = linked_documentation(request, item, finding)
    held = stored_documentation(item, finding, stored)
    usable = tuple(s.reference for s in held if s.usable)
    assertion = finding.coverage_assertion_id
    asked = finding.questionnaires if finding.doc_needed else ()
    if finding.covered == "not-covered":
        reason = "; ".join(finding.reasons) or "the service is not covered by the member's plan"
        return _pend(item, f"Clinical review required: {reason}", assertion, docs, usable, asked)
    if finding.pa_needed in ("no-auth", "satisfied"):
        return _certify(item, finding, ids, now, policy, docs, usable)
    if finding.doc_needed and not docs and not usable:
        needed = ", ".join(finding.doc_needed)
        found = "; ".join(_why_unusable(s) for s in held)
        detail = f"DTR responses found but not usable: {found}" if found else "none linked to this item"
        return _pend(item, f"Documentation required ({needed}); {detail}", assertion, docs, (), asked)
    if finding.covered == "conditional" or finding.pa_needed == "conditional":
        reason = "; ".join(finding.reasons) or "coverage depends on conditions that need review"
        return _pend(item, f"Clinical review required: {reason}", assertion, docs, usable, asked)
    return _certify(item, finding, ids, now, policy, docs, usable)


def stored_documentation(
    item: RequestItem, finding: CoverageFinding, stored: Sequence[StoredResponse]
) -> tuple[StoredResponse, ...]:
    """The stored DTR responses that answer for this item: same coverage-assertion-id as the item's
    requested service (CRD coverage-information), filled in for the same order (``qr-context``), or for
    the item's trace number (``qr-context`` by identifier: DTR launched from a PAS pend)."""
    assertions = set(item.coverage_assertion_ids)
    if finding.coverage_assertion_id:
        assertions.add(finding.coverage_assertion_id)
    orders = {_relative(s.full_url) for s in item.requested_services} - {None}
    traces = {t.value for t in item.trace_numbers}
    return tuple(
        s
        for s in stored
        if assertions.intersection(s.coverage_assertion_ids)
        or orders.intersection(s.context_refs)
        or traces.intersection(s.context_ids)
    )


def _relative(full_url: str) -> str | None:
    """``Type/id`` of an absolute or relative URL (an EHR order the DTR response names), else None."""
    if full_url.startswith("urn:"):
        return None
    parts = full_url.split("/_history/", 1)[0].rstrip("/").split("/")
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else None


def _why_unusable(response: StoredResponse) -> str:
    if not response.complete:
        return f"{response.reference} is {response.status or 'without a status'}, not completed"
    return (
        f"{response.reference} answers {response.questionnaire}, which the coverage decision did not ask for"
    )


def _str_field(resource: Mapping[str, Any] | None, key: str) -> str | None:
    value = resource.get(key) if resource is not None else None
    return value if isinstance(value, str) else None


def _provider_npis(request: PasRequest, item: RequestItem) -> tuple[str, ...]:
    parties = [request.provider]
    by_seq = {m.sequence: m for m in request.care_team}
    for seq in item.care_team_sequences:
        member = by_seq.get(seq)
        if member is not None and member.provider is not None:
            parties.append(member.provider)
    npis = [i.value for p in parties for i in p.identifiers if i.system == urls.NPI_SYSTEM]
    return tuple(dict.fromkeys(npis))


def _item_diagnoses(request: PasRequest, item: RequestItem, all_codes: tuple[Code, ...]) -> tuple[Code, ...]:
    if not item.diagnosis_sequences:
        return all_codes
    by_seq = {d.sequence: d.code for d in request.diagnoses}
    return tuple(c for s in item.diagnosis_sequences if (c := by_seq.get(s)) is not None)


def linked_documentation(request: PasRequest, item: RequestItem, finding: CoverageFinding) -> tuple[int, ...]:
    """Sequences of the supportingInfo entries that document this item.

    Linked by CRD coverage-assertion-id, by DTR context (the item's order fullUrl or trace number),
    or attached to the whole request without any link (then it documents every item).
    """
    assertions = set(item.coverage_assertion_ids)
    if finding.coverage_assertion_id:
        assertions.add(finding.coverage_assertion_id)
    contexts = {s.full_url for s in item.requested_services} | {t.value for t in item.trace_numbers}
    out: list[int] = []
    for info in request.supporting_info:
        if info.cancelled or info.target is None:
            continue
        if _links(info, assertions, contexts) or _unlinked_document(info):
            out.append(info.sequence)
    return tuple(out)


def _links(info: SupportingInfo, assertions: set[str], contexts: set[str]) -> bool:
    return bool(
        assertions.intersection(info.coverage_assertion_ids) or contexts.intersection(info.context_refs)
    )


def _unlinked_document(info: SupportingInfo) -> bool:
    return (
        not info.coverage_assertion_ids
        and not info.context_refs
        and info.target is not None
        and info.target.resource_type in ("DocumentReference", "QuestionnaireResponse", "Bundle", "Binary")
    )


def _pend(
    item: RequestItem,
    reason: str,
    assertion: str | None = None,
    docs: Sequence[int] = (),
    responses: Sequence[str] = (),
    questionnaires: Sequence[str] = (),
) -> ItemDecision:
    return ItemDecision(
        sequence=item.sequence,
        action=ReviewAction.PENDED,
        trace_numbers=item.trace_numbers,
        note=reason,
        coverage_assertion_id=assertion,
        documentation=tuple(docs),
        dtr_responses=tuple(responses),
        questionnaires=tuple(questionnaires),
    )


def _certify(
    item: RequestItem,
    finding: CoverageFinding,
    ids: IdFactory,
    now: datetime,
    policy: DecisionPolicy,
    docs: Sequence[int],
    responses: Sequence[str] = (),
) -> ItemDecision:
    modification = _modification(item, finding)
    return ItemDecision(
        sequence=item.sequence,
        action=ReviewAction.MODIFIED if modification else ReviewAction.CERTIFIED,
        trace_numbers=item.trace_numbers,
        authorization_number=ids.authorization_number(),
        pre_auth_period=_capped(
            approval_period(item.serviced, now.date(), finding.validity or policy.default_validity),
            finding.expiry,
        ),
        issued=now.date().isoformat(),
        modification=modification,
        coverage_assertion_id=finding.coverage_assertion_id,
        documentation=tuple(docs),
        dtr_responses=tuple(responses),
        note="; ".join(finding.reasons) if modification and finding.reasons else None,
    )


def _modification(item: RequestItem, finding: CoverageFinding) -> Modification | None:
    product = finding.authorized_product
    quantity = finding.authorized_quantity
    # A limit on an unquantified request is still a modification: the client learns the limit.
    fewer = quantity is not None and (item.quantity is None or quantity < item.quantity)
    other = (
        product is not None
        and item.product is not None
        and ((product.system, product.code) != (item.product.system, item.product.code))
    )
    if not fewer and not other:
        return None
    base = product if other and product is not None else item.product
    assert base is not None  # productOrService is required by the parser
    return Modification(product=base, quantity=quantity if fewer else item.quantity, modifiers=item.modifiers)


def _capped(period: Period, expiry: date | None) -> Period:
    if expiry is None or period.end is None or period.end <= expiry.isoformat():
        return period
    return Period(period.start, max(expiry.isoformat(), period.start or expiry.isoformat()))


def approval_period(serviced: Period | None, today: date, validity: timedelta) -> Period:
    """The certification's effective period: the requested service period (a single service date
    gives that day), else ``validity`` from the start, else ``validity`` from today."""
    start = first_day(serviced.start) if serviced is not None else None
    if start is None:
        return Period(today.isoformat(), (today + validity).isoformat())
    end = first_day(serviced.end) if serviced is not None else None
    if end is None or end < start:
        end = start + validity
    return Period(start.isoformat(), end.isoformat())
