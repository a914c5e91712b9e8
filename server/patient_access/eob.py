"""A PAS request and its current decision as a PDex 2.0.0 prior-authorization ExplanationOfBenefit.

Spec: Da Vinci PDex 2.0.0, profile ``pdex-priorauthorization`` (ExplanationOfBenefit, ``use`` =
``preauthorization``); CMS-0057-F Patient Access: the request and decision status, the dates approved or
denied, what was approved (items and services, quantity, dates), the specific denial reason and the
documentation the provider submitted, for items and services excluding drugs.

Pure: the request (``PasRequest``), the decision (``Decision``) and the ClaimResponse PriorGate answered
with go in, the resource comes out. Where each fact goes:

* request status: ``status`` (``cancelled`` when every item is cancelled, else ``active``) and
  ``outcome`` (the ClaimResponse's: ``queued`` while pended, ``complete``, ``partial``, ``error``);
* each item's decision: ``item.adjudication`` (category ``allowedunits``) with the ``reviewAction``
  extension: X12 306 action code, authorization number, X12 886 reason codes (the specific denial reason);
* what was approved: ``item.productOrService``, ``quantity``, ``serviced[x]``; ``allowedunits`` is the
  quantity authorized (0 when denied, pended or cancelled); A6 modifications as ``addItem``;
* dates approved or denied: ``itemPreAuthIssueDate`` and ``itemPreAuthPeriod`` on each item (the PAS
  extensions PDex reuses) and ``preAuthRefPeriod``;
* denial or pend reason text: ``processNote`` (``number`` = the item sequence);
* documentation: ``supportingInfo`` as submitted (category, report type; attachments named by type and
  identifier), plus the stored DTR QuestionnaireResponses the decision relied on.

Drug items (NDC / RxNorm codes, or a requested MedicationRequest) are left out; a request of drugs only
has no ExplanationOfBenefit (:func:`build_prior_auth_eob` returns ``None``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from server.pas.codes import ReviewAction
from server.pas.decision import Decision, ItemDecision
from server.pas.request import PasRequest, RequestItem, SupportingInfo

from . import urls

Json = dict[str, Any]

# Claim elements copied onto the ExplanationOfBenefit unchanged (same names and types in R4).
_HEADER_COPIED = ("type", "subType")
_ITEM_COPIED = (
    "careTeamSequence",
    "diagnosisSequence",
    "informationSequence",
    "revenue",
    "category",
    "productOrService",
    "modifier",
    "programCode",
    "servicedDate",
    "servicedPeriod",
    "locationCodeableConcept",
    "quantity",
    "unitPrice",
    "factor",
    "net",
    "bodySite",
    "subSite",
)


def is_drug_item(item: RequestItem) -> bool:
    """A drug: coded in NDC or RxNorm, or requesting a MedicationRequest (CMS-0057-F excludes drugs)."""
    codes = [item.product, *item.product_codes]
    if any(code is not None and code.system in urls.DRUG_CODE_SYSTEMS for code in codes):
        return True
    return any(service.resource_type in urls.DRUG_REQUEST_TYPES for service in item.requested_services)


def eob_status(decision: Decision) -> str:
    """``cancelled`` when every item is cancelled, else ``active`` (FHIR explanationofbenefit-status)."""
    items = decision.items
    if items and all(i.action is ReviewAction.CANCELLED for i in items):
        return "cancelled"
    return "active"


def build_prior_auth_eob(
    request: PasRequest,
    decision: Decision,
    claim_response: Mapping[str, Any],
    *,
    eob_id: str,
    patient_reference: str,
    claim_reference: str | None = None,
    received: str | None = None,
    denied_on: Mapping[int, str] | None = None,
) -> Json | None:
    """The ExplanationOfBenefit for one stored PAS request, or ``None`` when it asks for drugs only.

    ``patient_reference`` is the member's Patient (``Patient/<id>``); ``claim_reference`` the stored
    Claim; ``received`` the time the request was received (``created`` when the Claim has none);
    ``denied_on`` the dates earlier versions gave denied items (item sequence -> date), kept so a denial
    keeps its date; a new denial is dated by the decision.
    """
    by_sequence = {d.sequence: d for d in decision.items}
    items = [(item, by_sequence.get(item.sequence)) for item in request.items if not is_drug_item(item)]
    if not items:
        return None
    claim = request.claim.resource
    eob: Json = {
        "resourceType": "ExplanationOfBenefit",
        "id": eob_id,
        "meta": {"profile": [urls.PROFILE_PRIOR_AUTHORIZATION_VERSIONED]},
    }
    level = _level_of_service(claim)
    if level is not None:
        eob["extension"] = [{"url": urls.EXT_LEVEL_OF_SERVICE, "valueCodeableConcept": level}]
    identifiers = [i.to_fhir() for i in request.claim_identifiers]
    if identifiers:
        eob["identifier"] = identifiers
    eob["status"] = eob_status(decision)
    for name in _HEADER_COPIED:
        if name in claim:
            eob[name] = copy.deepcopy(claim[name])
    eob.setdefault("type", {"coding": [{"system": urls.CS_CLAIM_TYPE, "code": "professional"}]})
    eob["use"] = "preauthorization"
    eob["patient"] = {"reference": patient_reference}
    if "billablePeriod" in claim:
        eob["billablePeriod"] = copy.deepcopy(claim["billablePeriod"])
    eob["created"] = str(claim.get("created") or received or decision.decided_at.isoformat())
    eob["insurer"] = _party_reference(request.insurer.identifiers, request.insurer.name)
    eob["provider"] = _party_reference(request.provider.identifiers, request.provider.name)
    for name in ("priority", "fundsReserve"):
        if name in claim:
            eob[name] = copy.deepcopy(claim[name])
    if claim_reference:
        eob["claim"] = {"reference": claim_reference}
    if claim_response.get("id"):
        eob["claimResponse"] = {"reference": f"ClaimResponse/{claim_response['id']}"}
    eob["outcome"] = str(claim_response.get("outcome") or ("queued" if decision.pended else "complete"))
    if decision.pre_auth_ref:
        eob["preAuthRef"] = [decision.pre_auth_ref]
    period = _overall_period([d for _, d in items if d is not None])
    if period:
        eob["preAuthRefPeriod"] = [period]
    supporting = _supporting_info(request.supporting_info, [d for _, d in items if d is not None])
    if supporting:
        eob["supportingInfo"] = supporting
    if "diagnosis" in claim:
        eob["diagnosis"] = copy.deepcopy(claim["diagnosis"])
    eob["insurance"] = _insurance(request)
    denial_date = decision.decided_at.date().isoformat()
    eob["item"] = [
        _item(item, _dated(d, (denied_on or {}).get(item.sequence, denial_date))) for item, d in items
    ]
    added = [_add_item(d) for _, d in items if d is not None and d.modification is not None]
    if added:
        eob["addItem"] = added
    notes = [
        {"number": d.sequence, "type": "display", "text": d.note}
        for _, d in items
        if d is not None and d.note
    ]
    if notes:
        eob["processNote"] = notes
    return eob


def _level_of_service(claim: Mapping[str, Any]) -> Json | None:
    for ext in claim.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == urls.EXT_PAS_LEVEL_OF_SERVICE:
            value = ext.get("valueCodeableConcept")
            if isinstance(value, dict):
                return copy.deepcopy(value)
    return None


def _party_reference(identifiers: Sequence[Any], name: str | None) -> Json:
    """A logical reference (identifier and name): the request's parties live in its Bundle only."""
    out: Json = {}
    if identifiers:
        out["identifier"] = identifiers[0].to_fhir()
    if name:
        out["display"] = name
    return out or {"display": "unknown"}


def _insurance(request: PasRequest) -> list[Json]:
    out: list[Json] = []
    for n, coverage in enumerate(request.coverages):
        reference: Json = {}
        if coverage.member_ids:
            reference["identifier"] = coverage.member_ids[0].to_fhir()
        elif coverage.subscriber_id:
            reference["identifier"] = {"value": coverage.subscriber_id}
        reference["display"] = "coverage of the prior authorization request"
        out.append({"focal": n == 0, "coverage": reference})
    return out or [{"focal": True, "coverage": {"display": "coverage of the prior authorization request"}}]


def _overall_period(decisions: Sequence[ItemDecision]) -> Json | None:
    starts = [d.pre_auth_period.start for d in decisions if d.pre_auth_period and d.pre_auth_period.start]
    ends = [d.pre_auth_period.end for d in decisions if d.pre_auth_period and d.pre_auth_period.end]
    out: Json = {}
    if starts:
        out["start"] = min(starts)
    if ends:
        out["end"] = max(ends)
    return out or None


def _supporting_info(infos: Sequence[SupportingInfo], decisions: Sequence[ItemDecision]) -> list[Json]:
    out: list[Json] = []
    for info in infos:
        if info.cancelled:
            continue
        entry: Json = {"sequence": info.sequence}
        entry["category"] = info.category.concept() if info.category else {"text": "supporting information"}
        if info.report_type is not None:
            entry["code"] = info.report_type.concept()
        if info.target is not None:
            reference: Json = {"type": info.target.resource_type}
            if info.target.identifiers:
                reference["identifier"] = info.target.identifiers[0].to_fhir()
            reference["display"] = f"{info.target.resource_type} submitted with the request"
            entry["valueReference"] = reference
        out.append(entry)
    next_sequence = max((i.sequence for i in infos), default=0) + 1
    responses = dict.fromkeys(r for d in decisions for r in d.dtr_responses)
    for response_id in responses:
        reference_text = response_id if "/" in response_id else f"QuestionnaireResponse/{response_id}"
        out.append(
            {
                "sequence": next_sequence,
                "category": {"text": "documentation collected with DTR"},
                "valueReference": {"reference": reference_text},
            }
        )
        next_sequence += 1
    return out


def _dated(decision: ItemDecision | None, denial_date: str) -> ItemDecision | None:
    """A denial carries the date it was issued too (the X12 278 certification issue date of the
    response, whatever its action): PriorGate's review records it for approvals only."""
    if decision is None or decision.issued or decision.action is not ReviewAction.NOT_CERTIFIED:
        return decision
    return replace(decision, issued=denial_date)


def denial_dates(eob: Mapping[str, Any]) -> dict[int, str]:
    """Item sequence -> issue date of the items a stored ExplanationOfBenefit shows denied (A3)."""
    out: dict[int, str] = {}
    for item in eob.get("item") or ():
        if not isinstance(item, dict) or not isinstance(item.get("sequence"), int):
            continue
        codes = {
            part.get("valueCodeableConcept", {}).get("coding", [{}])[0].get("code")
            for adjudication in item.get("adjudication") or ()
            for ext in adjudication.get("extension") or ()
            if ext.get("url") == urls.EXT_REVIEW_ACTION
            for part in ext.get("extension") or ()
            if part.get("url") == urls.EXT_REVIEW_ACTION_CODE
        }
        dates = [
            e.get("valueDate")
            for e in item.get("extension") or ()
            if e.get("url") == urls.EXT_ITEM_PRE_AUTH_ISSUE_DATE
        ]
        if ReviewAction.NOT_CERTIFIED.value in codes and dates and isinstance(dates[0], str):
            out[item["sequence"]] = dates[0]
    return out


def _review_action(decision: ItemDecision) -> Json:
    parts: list[Json] = []
    if decision.authorization_number:
        parts.append({"url": "number", "valueString": decision.authorization_number})
    action = decision.action
    coding = {"system": urls.CS_X12_ACTION_CODE, "code": action.value, "display": action.display}
    parts.append({"url": urls.EXT_REVIEW_ACTION_CODE, "valueCodeableConcept": {"coding": [coding]}})
    parts.extend(
        {"url": "reasonCode", "valueCodeableConcept": code.concept()} for code in decision.reason_codes
    )
    return {"url": urls.EXT_REVIEW_ACTION, "extension": parts}


def _allowed_units(item: RequestItem, decision: ItemDecision) -> Decimal:
    """The quantity authorized: the modification's or the requested one (1 when none was given) for A1
    and A6; 0 for an item denied, pended or cancelled."""
    if decision.action not in (ReviewAction.CERTIFIED, ReviewAction.MODIFIED):
        return Decimal(0)
    if decision.modification is not None and decision.modification.quantity is not None:
        return decision.modification.quantity
    return item.quantity if item.quantity is not None else Decimal(1)


def _item(item: RequestItem, decision: ItemDecision | None) -> Json:
    raw = item.raw
    out: Json = {"sequence": item.sequence}
    extensions: list[Json] = []
    traces = decision.trace_numbers if decision is not None and decision.trace_numbers else item.trace_numbers
    extensions.extend({"url": urls.EXT_ITEM_TRACE_NUMBER, "valueIdentifier": t.to_fhir()} for t in traces)
    if decision is not None and decision.issued:
        extensions.append({"url": urls.EXT_ITEM_PRE_AUTH_ISSUE_DATE, "valueDate": decision.issued})
    if decision is not None and decision.pre_auth_period is not None:
        extensions.append(
            {"url": urls.EXT_ITEM_PRE_AUTH_PERIOD, "valuePeriod": decision.pre_auth_period.to_fhir()}
        )
    if item.authorization_number:
        extensions.append({"url": urls.EXT_AUTHORIZATION_NUMBER, "valueString": item.authorization_number})
    if extensions:
        out["extension"] = extensions
    for name in _ITEM_COPIED:
        if name in raw:
            out[name] = copy.deepcopy(raw[name])
    if "category" in out:
        out["category"] = _service_type(out["category"])
    if "productOrService" not in out:
        out["productOrService"] = item.product.concept() if item.product else {"text": "not coded"}
    if decision is not None:
        out["adjudication"] = [
            {
                "extension": [_review_action(decision)],
                "category": {
                    "coding": [{"system": urls.CS_ADJUDICATION_DISCRIMINATOR, "code": "allowedunits"}]
                },
                "value": _allowed_units(item, decision),
            }
        ]
    return out


def _service_type(category: Any) -> Any:
    """The X12 service type code as PDex binds it (same code list, published system URL)."""
    if not isinstance(category, dict):
        return category
    codings = [
        {**c, "system": urls.CS_X12_SERVICE_TYPE}
        if isinstance(c, dict) and c.get("system") == urls.CS_X12_SERVICE_TYPE_PAS
        else c
        for c in category.get("coding") or ()
    ]
    return {**category, "coding": codings} if codings else category


def _add_item(decision: ItemDecision) -> Json:
    """What an A6 item authorized (the item's own adjudication carries the review action: PDex slices
    no ``addItem.adjudication``, and its category binding admits none of the PDex discriminators)."""
    modification = decision.modification
    assert modification is not None
    out: Json = {"itemSequence": [decision.sequence], "productOrService": modification.product.concept()}
    if modification.modifiers:
        out["modifier"] = [m.concept() for m in modification.modifiers]
    if modification.quantity is not None:
        out["quantity"] = {"value": modification.quantity}
    return out
