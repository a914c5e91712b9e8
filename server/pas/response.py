"""Build the PAS Response Bundle (``Claim/$submit`` output) for each version.

Spec: PAS PASResponseBundle and PASClaimResponse (``profile-pas-response-bundle``,
``profile-claimresponse``); spec-30 (ClaimResponse first, every referenced resource included),
spec-31/32 (each resource once), spec-33 (echoed resources keep fullUrl and identifiers), spec-34
(itemSequence echoes item.sequence), spec-36/37 (A6 plus addItem), business errors as
``ClaimResponse.error`` with X12 AAA codes and the errorElement / errorPath extensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import urls
from .bundle import Entry
from .codes import FollowupAction, ReviewAction
from .decision import Decision, InfoRequest, ItemDecision, Reviewer
from .fhirdata import Code, Json, as_list, complex_ext, ext, first_code, instant, json_number, reference
from .ports import IdFactory
from .request import PasRequest, RequestItem
from .versions import PasVersion


@dataclass(frozen=True)
class BusinessError:
    """One AAA segment: a business rejection returned inside a ClaimResponse with ``outcome=error``."""

    code: str  # AAA03, X12 list 901
    text: str
    followup: FollowupAction | None = FollowupAction.CORRECT_AND_RESUBMIT  # AAA04, list 889
    element: str | None = None  # loop / segment, e.g. "2010A-NM103"
    path: str | None = None  # FHIRPath from the Bundle, e.g. "Bundle.entry[0].resource.item[1]"


def build_submit_response(
    request: PasRequest,
    decision: Decision,
    *,
    ids: IdFactory,
    now: datetime,
    claim_response_id: str | None = None,
) -> Json:
    """The PAS Response Bundle for a decision (approved, modified, pended, cancelled, reviewed items).

    A reviewer's later decision passes the first ClaimResponse's id so storage records a new version of
    the same resource; the Bundle itself is always new.
    """
    version = request.version
    notes = _Notes()
    claim_response = _claim_response_header(request, claim_response_id or ids.new_id(), now)
    claim_response["outcome"] = _outcome(version, decision)
    if decision.pre_auth_ref:
        claim_response["preAuthRef"] = decision.pre_auth_ref
    period = decision.pre_auth_period
    if period is not None and decision.pre_auth_ref:
        claim_response["preAuthPeriod"] = period.to_fhir()
    if decision.reviewer is not None and version.rules.has_reviewer_extension:
        claim_response.setdefault("extension", []).insert(0, _reviewer_extension(decision.reviewer))
    extra: list[Entry] = []
    items: list[Json] = []
    add_items: list[Json] = []
    for item_decision in decision.items:
        req_item = request.item(item_decision.sequence)
        items.append(_item(request, req_item, item_decision, notes, extra))
        if item_decision.modification is not None:
            add_items.append(_add_item(version, item_decision))
    if items:
        claim_response["item"] = items
    if add_items:
        claim_response["addItem"] = add_items
    communication_requests = [
        _communication_request(request, info, ids.new_id(), version) for info in decision.info_requests
    ]
    if communication_requests:
        claim_response["communicationRequest"] = [
            reference(f"urn:uuid:{cr['id']}") for cr in communication_requests
        ]
    if notes.notes:
        claim_response["processNote"] = notes.notes
    return _bundle(request, claim_response, extra, communication_requests, ids, now)


def build_error_response(
    request: PasRequest,
    errors: Sequence[BusinessError],
    *,
    ids: IdFactory,
    now: datetime,
    claim_response_id: str | None = None,
) -> Json:
    """A PAS Response Bundle whose ClaimResponse has ``outcome=error`` and one ``error`` per AAA."""
    claim_response = _claim_response_header(request, claim_response_id or ids.new_id(), now)
    claim_response["outcome"] = "error"
    notes = _Notes()
    rendered: list[Json] = []
    for err in errors:
        number = notes.add(err.text)
        extensions: list[Json] = []
        if request.version.rules.error_element_parts:
            element_parts: list[Json] = [ext("processNote", valuePositiveInt=number)]
            if err.element:
                element_parts.insert(0, ext("error", valueString=err.element))
            extensions.append(complex_ext(urls.EXT_ERROR_ELEMENT, element_parts))
        elif err.element:  # 2.0.1: a plain string naming the loop and segment
            extensions.append(ext(urls.EXT_ERROR_ELEMENT, valueString=err.element))
        if err.path:
            extensions.append(ext(urls.EXT_ERROR_PATH, valueString=err.path))
        if err.followup is not None:
            code = Code(urls.CS_X12_FOLLOWUP_ACTION, err.followup.value)
            extensions.append(ext(urls.EXT_ERROR_FOLLOWUP_ACTION, valueCodeableConcept=code.concept()))
        rendered.append(
            {"extension": extensions, "code": Code(urls.CS_X12_REJECT_REASON, err.code).concept()}
        )
    claim_response["processNote"] = notes.notes
    claim_response["error"] = rendered
    return _bundle(request, claim_response, [], [], ids, now)


class _Notes:
    """ClaimResponse.processNote with sequential numbers (2.2 requires ``number``)."""

    def __init__(self) -> None:
        self.notes: list[Json] = []

    def add(self, text: str) -> int:
        number = len(self.notes) + 1
        self.notes.append({"number": number, "type": "display", "text": text})
        return number


def _claim_response_header(request: PasRequest, resource_id: str, now: datetime) -> Json:
    version = request.version
    claim = request.claim.resource
    out: Json = {
        "resourceType": "ClaimResponse",
        "id": resource_id,
        "meta": {"profile": [version.profile(urls.PROFILE_CLAIM_RESPONSE)]},
    }
    if request.transmission is not None and version.rules.has_transmission_identifiers:
        t = request.transmission
        swapped = [  # the response travels the other way: GS02/GS03 and ISA06/ISA08 swap
            ("applicationSenderCode", t.application_receiver),
            ("applicationReceiverCode", t.application_sender),
            ("interchangeSenderID", t.interchange_receiver),
            ("interchangeReceiverID", t.interchange_sender),
        ]
        parts = [ext(name, valueString=value) for name, value in swapped if value]
        if parts:
            out["extension"] = [complex_ext(urls.EXT_TRANSMISSION_IDENTIFIERS, parts)]
    # Echo the Claim identifiers (TRN01=2); 2.2 requires system and value on each.
    out["identifier"] = [
        dict(i)
        for i in as_list(claim.get("identifier"))
        if isinstance(i, dict) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
    ]
    out["status"] = "active"
    claim_type = claim.get("type")
    out["type"] = (
        claim_type
        if first_code(claim_type) is not None
        else {"coding": [{"system": urls.CS_CLAIM_TYPE, "code": "professional"}]}
    )
    out["use"] = "preauthorization"
    out["patient"] = _ref(request.patient.full_url)
    out["created"] = instant(now)
    out["insurer"] = _ref(request.insurer.full_url)
    out["requestor"] = _ref(request.provider.full_url)
    request_ref: Json = {"reference": request.claim.full_url}
    if request.claim_identifiers:
        request_ref["identifier"] = request.claim_identifiers[0].to_fhir()
    out["request"] = request_ref
    return out


def _ref(full_url: str) -> Json:
    return reference(full_url)


def _outcome(version: PasVersion, decision: Decision) -> str:
    pended = len(decision.pended)
    if pended == 0:
        return "complete"
    if pended == len(decision.items):
        return version.rules.outcome_all_pended
    return version.rules.outcome_some_pended


def _review_action(decision: ItemDecision, *, number: str | None = None) -> Json:
    action = decision.action
    parts: list[Json] = []
    if number:
        parts.append(ext("number", valueString=number))
    parts.append(
        ext(
            urls.EXT_REVIEW_ACTION_CODE,
            valueCodeableConcept=Code(urls.CS_X12_ACTION_CODE, action.value, action.display).concept(),
        )
    )
    for reason in decision.reason_codes:
        parts.append(ext("reasonCode", valueCodeableConcept=reason.concept()))
    return complex_ext(urls.EXT_REVIEW_ACTION, parts)


def _adjudication(decision: ItemDecision, number: str | None) -> list[Json]:
    return [
        {
            "extension": [_review_action(decision, number=number)],
            "category": {"coding": [{"system": urls.CS_ADJUDICATION, "code": "submitted"}]},
        }
    ]


def _item(
    request: PasRequest,
    req_item: RequestItem | None,
    decision: ItemDecision,
    notes: _Notes,
    extra: list[Entry],
) -> Json:
    extensions: list[Json] = [
        ext(urls.EXT_ITEM_TRACE_NUMBER, valueIdentifier=t.to_fhir()) for t in decision.trace_numbers
    ]
    if req_item is not None and req_item.serviced is not None:
        serviced = req_item.serviced
        if serviced.start and serviced.start == serviced.end:
            extensions.append(ext(urls.EXT_ITEM_REQUESTED_SERVICE_DATE, valueDateTime=serviced.start))
        else:
            extensions.append(ext(urls.EXT_ITEM_REQUESTED_SERVICE_DATE, valuePeriod=serviced.to_fhir()))
    certified = decision.action in (ReviewAction.CERTIFIED, ReviewAction.MODIFIED)
    if certified and decision.issued:
        extensions.append(ext(urls.EXT_ITEM_PRE_AUTH_ISSUE_DATE, valueDate=decision.issued))
    if certified and decision.pre_auth_period is not None:
        extensions.append(ext(urls.EXT_ITEM_PRE_AUTH_PERIOD, valuePeriod=decision.pre_auth_period.to_fhir()))
    if certified:
        for provider_url in _authorized_providers(request, req_item):
            extra.extend(e for e in request.index if e.full_url == provider_url and e not in extra)
            provider = complex_ext(
                urls.EXT_ITEM_AUTHORIZED_PROVIDER, [ext("provider", valueReference=_ref(provider_url))]
            )
            extensions.append(provider)
    out: Json = {}
    if extensions:
        out["extension"] = extensions
    out["itemSequence"] = decision.sequence
    if decision.note:
        out["noteNumber"] = [notes.add(decision.note)]
    out["adjudication"] = _adjudication(decision, decision.authorization_number)
    return out


def _authorized_providers(request: PasRequest, req_item: RequestItem | None) -> list[str]:
    """Item care-team members (2010F) when given, else the requesting provider (2010EA).

    itemAuthorizedProvider.provider names an Organization or Practitioner, so a PractitionerRole
    stands for its practitioner (or, failing that, its organization) when that is in the Bundle.
    """
    members: list[str] = []
    if req_item is not None:
        by_seq = {m.sequence: m for m in request.care_team}
        for seq in req_item.care_team_sequences:
            member = by_seq.get(seq)
            if member is not None and member.provider is not None and member.provider.full_url:
                members.append(member.provider.full_url)
    candidates = members or [request.provider.full_url]
    out: list[str] = []
    for full_url in candidates:
        resolved = _organization_or_practitioner(request, full_url) if full_url else None
        if resolved is not None and resolved not in out:
            out.append(resolved)
    return out


def _organization_or_practitioner(request: PasRequest, full_url: str) -> str | None:
    entry = request.index.resolve(full_url)
    if entry is None:
        return None
    if entry.resource_type in ("Organization", "Practitioner"):
        return entry.full_url
    if entry.resource_type == "PractitionerRole":
        for key in ("practitioner", "organization"):
            target = request.index.resolve_ref(entry.resource.get(key), entry)
            if target is not None and target.resource_type in ("Organization", "Practitioner"):
                return target.full_url
    return None


def _add_item(version: PasVersion, decision: ItemDecision) -> Json:
    mod = decision.modification
    assert mod is not None
    out: Json = {}
    if version.rules.add_item_extensions:
        extensions: list[Json] = [
            ext(urls.EXT_ITEM_TRACE_NUMBER, valueIdentifier=t.to_fhir()) for t in decision.trace_numbers
        ]
        if decision.issued:
            extensions.append(ext(urls.EXT_ITEM_PRE_AUTH_ISSUE_DATE, valueDate=decision.issued))
        if decision.pre_auth_period is not None:
            extensions.append(
                ext(urls.EXT_ITEM_PRE_AUTH_PERIOD, valuePeriod=decision.pre_auth_period.to_fhir())
            )
        if extensions:
            out["extension"] = extensions
    out["itemSequence"] = [decision.sequence]
    out["productOrService"] = mod.product.concept()
    if mod.modifiers:
        out["modifier"] = [m.concept() for m in mod.modifiers]
    if mod.quantity is not None:
        out["quantity"] = {"value": json_number(mod.quantity)}
    authorized = ItemDecision(decision.sequence, ReviewAction.CERTIFIED, reason_codes=decision.reason_codes)
    out["adjudication"] = _adjudication(authorized, decision.authorization_number)
    return out


def _reviewer_extension(reviewer: Reviewer) -> Json:
    parts: list[Json] = [ext("wasHumanReviewedFlag", valueBoolean=True)]
    if reviewer.npi:
        parts.append(ext("reviewerNPI", valueIdentifier={"system": urls.NPI_SYSTEM, "value": reviewer.npi}))
    if reviewer.specialty is not None:
        parts.append(ext("reviewerSpecialty", valueCodeableConcept=reviewer.specialty.concept()))
    return complex_ext(urls.EXT_CLAIM_RESPONSE_REVIEWER, parts)


def _communication_request(
    request: PasRequest, info: InfoRequest, resource_id: str, version: PasVersion
) -> Json:
    """PASCommunicationRequest: what the payer needs (LOINC attachment code, PWK01 category, line number)."""
    payload: Json = {"contentString": info.loinc_code}
    if info.content_modifier is not None:
        payload["extension"] = [
            ext(urls.EXT_CONTENT_MODIFIER, valueCodeableConcept=info.content_modifier.concept())
        ]
    out: Json = {
        "resourceType": "CommunicationRequest",
        "id": resource_id,
        "meta": {"profile": [version.profile(urls.PROFILE_COMMUNICATION_REQUEST)]},
    }
    if info.item_sequence is not None:
        line = ext(urls.EXT_SERVICE_LINE_NUMBER, valuePositiveInt=info.item_sequence)
        if version.rules.line_number_on_payload:
            payload.setdefault("extension", []).insert(0, line)
        else:
            out["extension"] = [line]
    req_item = request.item(info.item_sequence) if info.item_sequence is not None else None
    trace = (req_item.trace_numbers if req_item else ()) or request.claim_identifiers
    if trace:
        # With LOINC 102089-0 the trace number is the DTR context id (ainfo-3).
        out["identifier"] = [trace[0].to_fhir()]
    out["status"] = "active"
    if info.report_type is not None:
        out["category"] = [info.report_type.concept()]
    out["subject"] = _ref(request.patient.full_url)
    out["payload"] = [payload]
    out["recipient"] = [_ref(request.provider.full_url)]
    out["sender"] = _ref(request.insurer.full_url)
    if info.text:
        out["note"] = [{"text": info.text}]
    return out


def _bundle(
    request: PasRequest,
    claim_response: Json,
    extra: list[Entry],
    communication_requests: list[Json],
    ids: IdFactory,
    now: datetime,
) -> Json:
    version = request.version
    bundle_id = ids.new_id()
    entries: list[Json] = [{"fullUrl": f"urn:uuid:{claim_response['id']}", "resource": claim_response}]
    seen: set[str] = set()
    echoed = [
        request.index.resolve(request.patient.full_url),
        request.index.resolve(request.insurer.full_url),
        request.index.resolve(request.provider.full_url),
        *extra,
    ]
    for entry in echoed:
        if entry is None or entry.full_url in seen:
            continue
        seen.add(entry.full_url)
        entries.append({"fullUrl": entry.full_url, "resource": entry.resource})
    for cr in communication_requests:
        entries.append({"fullUrl": f"urn:uuid:{cr['id']}", "resource": cr})
    out: Json = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [version.profile(urls.PROFILE_RESPONSE_BUNDLE)]},
        "identifier": {"system": urls.URN_IETF_RFC_3986, "value": f"urn:uuid:{bundle_id}"},
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }
    return out


def claim_response_of(bundle: Any) -> Json | None:
    """The first-entry ClaimResponse of a PAS Response Bundle (ClaimResponseFirst invariant)."""
    if not isinstance(bundle, dict):
        return None
    entries = bundle.get("entry") or []
    if entries and isinstance(entries[0], dict):
        resource = entries[0].get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "ClaimResponse":
            return resource
    return None
