"""``Claim/$inquire``: parse a PAS Inquiry Request, match stored authorizations, shape the output.

Spec: PAS PASInquiryRequestBundle / PASClaimInquiry; inquiry rules spec-43 (``not-applicable`` product
means no code), spec-46 (current results for all items), spec-47/48 (a superseded REF*BB / REF*NT finds
the current authorization), spec-52/53 (a match needs the member id plus the ordering or rendering
provider); FHIR-55394: 2.2 returns a Parameters with 0..* ``return`` Bundles, 2.0.1 one Bundle.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from igs.outcome import Failure, OperationOutcomeError

from . import urls
from .codes import ReviewAction
from .decision import Decision
from .fhirdata import Code, Ident, Json, Period, ext_value, first_code, idents, instant, items_of, period
from .request import PasRequest, Problems, check_envelope, party_ref
from .response import claim_response_of
from .versions import PasVersion


@dataclass(frozen=True)
class InquiryItem:
    sequence: int
    product: Code | None  # None: not-applicable (spec-43)
    product_code_end: Code | None
    serviced: Period | None
    review_action: str | None


@dataclass(frozen=True)
class PasInquiry:
    version: PasVersion
    inquiry_identifiers: tuple[Ident, ...]  # the inquiry's own TRN, not a search key
    patient_identifiers: tuple[Ident, ...]
    member_ids: tuple[Ident, ...]
    provider_identifiers: tuple[Ident, ...]
    insurer_identifiers: tuple[Ident, ...]
    authorization_numbers: tuple[str, ...]  # REF*BB / REF*NT search keys
    billable_period: Period | None
    items: tuple[InquiryItem, ...]
    bundle_identifier: Ident | None


def parse_inquiry_request(bundle: Any, version: PasVersion) -> PasInquiry:
    """Parse a PASInquiryRequestBundle; an empty or Claim-less Bundle is INVALID (400)."""
    index = check_envelope(bundle)
    claim = index.entries[0]
    c = claim.resource
    problems = Problems()
    patient = party_ref(index, claim, c.get("patient"), f"{claim.path}.patient", problems)
    provider = party_ref(index, claim, c.get("provider"), f"{claim.path}.provider", problems)
    insurer = party_ref(index, claim, c.get("insurer"), f"{claim.path}.insurer", problems)
    problems.raise_if_any()
    assert patient is not None and provider is not None and insurer is not None
    member_ids: list[Ident] = []
    for ins in items_of(c.get("insurance")):
        cov = index.resolve_ref(ins.get("coverage"), claim)
        if cov is not None:
            member_ids.extend(idents(cov.resource.get("identifier")))
            if isinstance(cov.resource.get("subscriberId"), str):
                member_ids.append(Ident(None, cov.resource["subscriberId"]))
    providers = list(provider.identifiers)
    for member in items_of(c.get("careTeam")):
        target = index.resolve_ref(member.get("provider"), claim)
        if target is not None:
            providers.extend(idents(target.resource.get("identifier")))
    numbers = [
        v
        for v in (
            ext_value(c, urls.EXT_AUTHORIZATION_NUMBER),
            ext_value(c, urls.EXT_ADMINISTRATION_REFERENCE_NUMBER),
        )
        if isinstance(v, str)
    ]
    items: list[InquiryItem] = []
    for item in items_of(c.get("item")):
        if not isinstance(item.get("sequence"), int) or isinstance(item.get("sequence"), bool):
            continue
        for key in (urls.EXT_AUTHORIZATION_NUMBER, urls.EXT_ADMINISTRATION_REFERENCE_NUMBER):
            value = ext_value(item, key)
            if isinstance(value, str):
                numbers.append(value)
        product = first_code(item.get("productOrService"))
        if product is not None and product.system == urls.CS_DATA_ABSENT_REASON:
            product = None
        action = first_code(ext_value(item, urls.EXT_REVIEW_ACTION_CODE))
        items.append(
            InquiryItem(
                sequence=item["sequence"],
                product=product,
                product_code_end=first_code(ext_value(item, urls.EXT_PRODUCT_OR_SERVICE_CODE_END)),
                serviced=period(item.get("servicedPeriod") or item.get("servicedDate")),
                review_action=action.code if action else None,
            )
        )
    if not member_ids and not patient.identifiers:
        raise OperationOutcomeError.of(
            Failure.UNPROCESSABLE,
            "An inquiry must identify the patient by member id (2010C/2010D)",
            expression=(f"{claim.path}.insurance",),
        )
    return PasInquiry(
        version=version,
        inquiry_identifiers=idents(c.get("identifier")),
        patient_identifiers=patient.identifiers,
        member_ids=tuple(member_ids),
        provider_identifiers=tuple(providers),
        insurer_identifiers=insurer.identifiers,
        authorization_numbers=tuple(numbers),
        billable_period=period(c.get("billablePeriod")),
        items=tuple(items),
        bundle_identifier=next(iter(idents(bundle.get("identifier"))), None),
    )


@dataclass(frozen=True)
class StoredItem:
    sequence: int
    product_codes: tuple[Code, ...]
    serviced: Period | None
    pre_auth_period: Period | None
    action: ReviewAction


@dataclass(frozen=True)
class StoredAuthorization:
    """The current state of one authorization as the inquiry matcher sees it (storage keeps these)."""

    response_bundle: Json
    claim_identifiers: tuple[Ident, ...]
    patient_identifiers: tuple[Ident, ...]
    member_ids: tuple[Ident, ...]
    provider_identifiers: tuple[Ident, ...]
    insurer_identifiers: tuple[Ident, ...]
    authorization_numbers: tuple[str, ...]  # current and superseded (spec-47/48)
    items: tuple[StoredItem, ...]

    @classmethod
    def of(
        cls, request: PasRequest, decision: Decision, response_bundle: Json, superseded: Iterable[str] = ()
    ) -> StoredAuthorization:
        providers = list(request.provider.identifiers)
        for member in request.care_team:
            if member.provider is not None:
                providers.extend(member.provider.identifiers)
        numbers = [n for n in (decision.pre_auth_ref, *(i.authorization_number for i in decision.items)) if n]
        numbers.extend(
            n for n in (request.authorization_number, request.administration_reference_number) if n
        )
        for item in request.items:
            numbers.extend(n for n in (item.authorization_number, item.administration_reference_number) if n)
        items = tuple(
            StoredItem(
                sequence=d.sequence,
                product_codes=req.product_codes if (req := request.item(d.sequence)) else (),
                serviced=req.serviced if req else None,
                pre_auth_period=d.pre_auth_period,
                action=d.action,
            )
            for d in decision.items
        )
        return cls(
            response_bundle=response_bundle,
            claim_identifiers=request.claim_identifiers,
            patient_identifiers=request.patient.identifiers,
            member_ids=request.member_ids,
            provider_identifiers=tuple(providers),
            insurer_identifiers=request.insurer.identifiers,
            authorization_numbers=(*numbers, *superseded),
            items=items,
        )


def _tokens(identifiers: Iterable[Ident]) -> set[str]:
    return {i.value for i in identifiers}


def matches(inquiry: PasInquiry, stored: StoredAuthorization) -> bool:
    """The IG inquiry rules as one predicate over a stored authorization."""
    member = _tokens(inquiry.member_ids) | _tokens(inquiry.patient_identifiers)
    if not member & (_tokens(stored.member_ids) | _tokens(stored.patient_identifiers)):
        return False
    if not _tokens(inquiry.provider_identifiers) & _tokens(stored.provider_identifiers):
        return False
    if inquiry.insurer_identifiers and stored.insurer_identifiers:
        if not _tokens(inquiry.insurer_identifiers) & _tokens(stored.insurer_identifiers):
            return False
    if inquiry.authorization_numbers and not set(inquiry.authorization_numbers) & set(
        stored.authorization_numbers
    ):
        return False
    if inquiry.billable_period is not None and not _any_overlap(inquiry.billable_period, stored.items):
        return False
    return all(_item_matches(q, stored.items) for q in inquiry.items)


def _any_overlap(wanted: Period, items: Sequence[StoredItem]) -> bool:
    dated = [p for i in items for p in (i.serviced, i.pre_auth_period) if p is not None]
    return not dated or any(wanted.overlaps(p) for p in dated)


def _item_matches(query: InquiryItem, items: Sequence[StoredItem]) -> bool:
    for item in items:
        if query.product is not None and not any(_code_in_range(query, c) for c in item.product_codes):
            continue
        if query.serviced is not None:
            dated = [p for p in (item.serviced, item.pre_auth_period) if p is not None]
            if dated and not any(query.serviced.overlaps(p) for p in dated):
                continue
        if query.review_action is not None and item.action.value != query.review_action:
            continue
        return True
    return False


def _code_in_range(query: InquiryItem, code: Code) -> bool:
    # CPT comes back as HCPCS from X12, so the code value decides, not the system.
    assert query.product is not None
    low = query.product.code
    high = query.product_code_end.code if query.product_code_end else low
    return low <= code.code <= high if len(code.code) == len(low) == len(high) else code.code == low


def find_matches(inquiry: PasInquiry, candidates: Iterable[StoredAuthorization]) -> list[StoredAuthorization]:
    """Every candidate the inquiry matches (the caller pre-selects candidates by member id)."""
    return [c for c in candidates if matches(inquiry, c)]


def inquiry_response_bundle(
    stored: StoredAuthorization, version: PasVersion, *, bundle_id: str, now: datetime
) -> Json:
    """A PASInquiryResponseBundle carrying the current ClaimResponse of one stored authorization."""
    source = stored.response_bundle
    entries = copy.deepcopy(source.get("entry", []))
    claim_response = claim_response_of({"entry": entries})
    if claim_response is not None:
        claim_response["meta"] = {"profile": [version.profile(urls.PROFILE_CLAIM_INQUIRY_RESPONSE)]}
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [version.profile(urls.PROFILE_INQUIRY_RESPONSE_BUNDLE)]},
        "identifier": {"system": urls.URN_IETF_RFC_3986, "value": f"urn:uuid:{bundle_id}"},
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }


def inquire_output(version: PasVersion, bundles: Sequence[Json], *, bundle_id: str, now: datetime) -> Json:
    """The ``$inquire`` result: 2.2.1 Parameters with 0..* ``return``; 2.0.1 one Bundle (404 when empty)."""
    if version.rules.inquire_output == "parameters":
        return {
            "resourceType": "Parameters",
            "parameter": [{"name": "return", "resource": b} for b in bundles],
        }
    if not bundles:
        raise OperationOutcomeError.of(Failure.NOT_FOUND, "No prior authorization matches the inquiry")
    merged: list[Json] = []
    seen: set[str] = set()
    for b in bundles:  # ClaimResponses first (0..* in one 2.0.1 Bundle), then their referenced entries
        for e in b.get("entry", [])[:1]:
            merged.append(e)
            seen.add(e["fullUrl"])
    for b in bundles:
        for e in b.get("entry", [])[1:]:
            if e["fullUrl"] not in seen:
                seen.add(e["fullUrl"])
                merged.append(e)
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [version.profile(urls.PROFILE_INQUIRY_RESPONSE_BUNDLE)]},
        "type": "collection",
        "timestamp": instant(now),
        "entry": merged,
    }
