"""A legacy payer's 278 response (005010X217) as the PAS core's :class:`Decision`, or its AAA rejections.

Spec: 005010X217 response: HCR (HCR01 action, HCR02 certification number, HCR03 reason), DTP 102 (issue
date), 007 / 036 (effective / expiration dates), SV1 / SV2 (what was authorized for A6), MSG (free text),
AAA (request validation: AAA03 list 901, AAA04 list 889); PAS 2.2.1 "Pended and denied results" and the
ClaimResponse error extensions. A denial (A3) from the payer is that payer's decision: it carries
``decided_by`` instead of a PriorGate reviewer.

Each Claim item is paired with its 2000F by the echoed trace number (TRN01 = 2): the item's
itemTraceNumber, else ``<Claim trace>-<sequence>`` (what ``x12.bundle_to_278_request`` sends), else the
2000F at the same position. An item the payer did not answer keeps the event-level HCR (2000E).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from igs.outcome import unprocessable
from x12 import Authorization
from x12.codes import display
from x12.model import DateValue, Rejection, Review, Service

from . import urls
from .codes import FollowupAction, ReviewAction
from .decision import Decision, ItemDecision, Modification
from .fhirdata import Code, Period
from .request import PasRequest, RequestItem
from .response import BusinessError
from .submission import RejectedRequest

HCR_ACTIONS = {
    "A1": ReviewAction.CERTIFIED,
    "A2": ReviewAction.MODIFIED,  # certified in part: what was authorized is in SV1 / SV2
    "A3": ReviewAction.NOT_CERTIFIED,
    "A4": ReviewAction.PENDED,
    "A6": ReviewAction.MODIFIED,
    "C": ReviewAction.CANCELLED,
}
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"


def answer_from_278(
    request: PasRequest, auth: Authorization, *, payer: str, now: datetime
) -> Decision | RejectedRequest:
    """The decision (or the rejection) a parsed 278 response carries for ``request``; a 278 that answers
    another request (its echoed event trace or BHT03 names something else) is UNPROCESSABLE."""
    _check_answers(request, auth)
    rejections = _rejections(request, auth)
    if rejections:
        return RejectedRequest(rejections)
    services = _match(request, auth)
    items = tuple(
        _item(item, services.get(item.sequence), auth, payer=payer, now=now) for item in request.items
    )
    event_number = auth.event.review.number if auth.event.review is not None else ""
    certified = [i.authorization_number for i in items if i.authorization_number]
    return Decision(
        items=items,
        decided_at=now,
        pre_auth_ref=event_number or (certified[0] if certified else None),
    )


def _check_answers(request: PasRequest, auth: Authorization) -> None:
    echoed = {t.number for t in auth.event.traces if t.type == "2"}
    claim_traces = {i.value for i in request.claim_identifiers}
    if echoed and not echoed & claim_traces:
        raise unprocessable(
            f"The 278 response answers trace {', '.join(sorted(echoed))}, not this request "
            f"({', '.join(sorted(claim_traces)) or 'no Claim identifier'})"
        )
    bundle = request.bundle_identifier.value if request.bundle_identifier is not None else None
    if not echoed and auth.reference and bundle and auth.reference != bundle:
        raise unprocessable(
            f"The 278 response answers BHT03 {auth.reference!r}, not this request ({bundle!r})"
        )


def _trace_key(request: PasRequest, item: RequestItem) -> str:
    if item.trace_numbers:
        return item.trace_numbers[0].value
    claim_trace = request.claim_identifiers[0].value if request.claim_identifiers else ""
    return f"{claim_trace}-{item.sequence}"


def _match(request: PasRequest, auth: Authorization) -> dict[int, Service]:
    by_trace: dict[str, int] = {}
    for position, service in enumerate(auth.services):
        for trace in service.traces:
            by_trace.setdefault(trace.number, position)
    out: dict[int, Service] = {}
    taken: set[int] = set()
    keys = {item.sequence: _trace_key(request, item) for item in request.items}
    for item in request.items:
        found = by_trace.get(keys[item.sequence])
        if found is not None:
            out[item.sequence] = auth.services[found]
            taken.add(found)
    known = set(keys.values())
    for n, item in enumerate(request.items):
        if item.sequence in out or n >= len(auth.services) or n in taken:
            continue
        if not {t.number for t in auth.services[n].traces} & known:
            out[item.sequence] = auth.services[n]
    return out


def _rejections(request: PasRequest, auth: Authorization) -> tuple[BusinessError, ...]:
    claim_path = request.claim.path
    found: list[tuple[Rejection, str]] = []
    targets = {
        "insurer": request.index.resolve(request.insurer.full_url),
        "provider": request.index.resolve(request.provider.full_url),
        "patient": request.index.resolve(request.patient.full_url),
    }

    def path_of(target: str) -> str:
        entry = targets.get(target)
        return entry.path if entry is not None else claim_path

    for rejection in auth.level_rejections:
        found.append((rejection, claim_path))
    for entity, target in ((auth.umo, "insurer"), (auth.requester, "provider")):
        found.extend((r, path_of(target)) for r in entity.rejections)
    coverage_path = claim_path + ".insurance"
    if request.coverages:
        coverage = request.index.resolve(request.coverages[0].full_url)
        if coverage is not None:
            coverage_path = coverage.path + ".subscriberId"
    found.extend((r, coverage_path) for r in auth.subscriber.rejections)
    if auth.dependent is not None:
        found.extend((r, path_of("patient")) for r in auth.dependent.rejections)
    found.extend((r, claim_path) for r in auth.event.rejections)
    for provider in auth.event.providers:
        found.extend((r, claim_path) for r in provider.rejections)
    services = _match(request, auth)
    positions = {item.sequence: n for n, item in enumerate(request.items)}
    for sequence, service in services.items():
        item_path = f"{claim_path}.item[{positions[sequence]}]"
        found.extend((r, item_path) for r in service.rejections)
    return tuple(_business_error(r, path) for r, path in found)


def _business_error(rejection: Rejection, path: str) -> BusinessError:
    meaning = display("901", rejection.reason) or f"reject reason {rejection.reason}"
    try:
        followup: FollowupAction | None = FollowupAction(rejection.followup)
    except ValueError:
        followup = None
    return BusinessError(
        code=rejection.reason or "42",
        text=f"The payer rejected the request ({rejection.loop}): {meaning}",
        followup=followup,
        element=rejection.loop,
        path=path,
    )


def _item(
    item: RequestItem, service: Service | None, auth: Authorization, *, payer: str, now: datetime
) -> ItemDecision:
    review: Review | None = service.review if service is not None else None
    review = review or auth.event.review
    message = (service.message if service is not None else "") or auth.event.message
    if review is None or review.action not in HCR_ACTIONS:
        action = review.action if review is not None else "none"
        return ItemDecision(
            item.sequence,
            ReviewAction.PENDED,
            trace_numbers=item.trace_numbers,
            note=f"The payer's answer has no usable decision for this item (HCR01 {action}); pended",
            decided_by=payer,
        )
    action = HCR_ACTIONS[review.action]
    reasons = (Code(urls.CS_X12_REVIEW_DECISION_REASON, review.reason),) if review.reason else ()
    dates = service.dates if service is not None else auth.event.dates
    if action is ReviewAction.PENDED:
        return ItemDecision(
            item.sequence,
            action,
            trace_numbers=item.trace_numbers,
            reason_codes=reasons,
            note=message or "Pended by the payer for review",
            decided_by=payer,
        )
    if action is ReviewAction.NOT_CERTIFIED:
        return ItemDecision(
            item.sequence,
            action,
            trace_numbers=item.trace_numbers,
            reason_codes=reasons,
            note=message or "Not certified by the payer",
            decided_by=payer,
        )
    if action is ReviewAction.CANCELLED:
        return ItemDecision(item.sequence, action, trace_numbers=item.trace_numbers, decided_by=payer)
    modification = _modification(item, service) if action is ReviewAction.MODIFIED else None
    if action is ReviewAction.MODIFIED and modification is None:
        action = ReviewAction.CERTIFIED  # nothing narrower was authorized: the item as requested
    issued = _date(dates, "102") or now.date().isoformat()
    return ItemDecision(
        item.sequence,
        action,
        trace_numbers=item.trace_numbers,
        authorization_number=review.number or None,
        pre_auth_period=_period(dates),
        issued=issued,
        reason_codes=reasons,
        note=message or None,
        modification=modification,
        decided_by=payer,
    )


def _modification(item: RequestItem, service: Service | None) -> Modification | None:
    line = service.line if service is not None else None
    if line is None or item.product is None:
        return None
    product = item.product
    if line.procedure is not None and line.procedure.code != item.product.code:
        # HC is CPT / HCPCS: the same code system the request used; N4 is an NDC
        system = NDC_SYSTEM if line.procedure.qualifier == "N4" else item.product.system
        product = Code(system, line.procedure.code)
    quantity: Decimal | None = None
    if line.quantity:
        try:
            quantity = Decimal(line.quantity)
        except InvalidOperation:
            quantity = None
    if product == item.product and (quantity is None or quantity == item.quantity):
        return None
    return Modification(product=product, quantity=quantity, modifiers=item.modifiers)


def _date(dates: tuple[DateValue, ...], qualifier: str) -> str | None:
    found = next((d for d in dates if d.qualifier == qualifier), None)
    return _iso(found.start) if found is not None else None


def _period(dates: tuple[DateValue, ...]) -> Period | None:
    effective = next((d for d in dates if d.qualifier == "007"), None)
    if effective is None:
        return None
    start = _iso(effective.start)
    expires = next((d for d in dates if d.qualifier == "036"), None)
    end = _iso(effective.end) if effective.end else (_iso(expires.start) if expires is not None else None)
    if start and end and end < start:
        end = start  # an expiration before the effective date: the certification covers that day
    return Period(start, end)


def _iso(ccyymmdd: str) -> str | None:
    try:
        return date(int(ccyymmdd[:4]), int(ccyymmdd[4:6]), int(ccyymmdd[6:8])).isoformat()
    except (ValueError, IndexError):
        return None
