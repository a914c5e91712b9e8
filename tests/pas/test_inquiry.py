"""$inquire: matching rules over stored authorizations and the per-version output shape."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    CoverageFinding,
    CoverageQuery,
    PasVersion,
    StoredAuthorization,
    build_submit_response,
    decide,
    find_matches,
    inquire_output,
    inquiry_response_bundle,
    matches,
    parse_inquiry_request,
    parse_pas_request,
)

Json = dict[str, Any]
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"


def _approve(query: CoverageQuery) -> CoverageFinding:
    return CoverageFinding("covered", "auth-needed")


def _stored(
    ig: Any,
    version: PasVersion,
    ids: Any,
    now: datetime,
    name: str = "Bundle-HomecareAuthorizationBundleExample.json",
    superseded: tuple[str, ...] = (),
) -> StoredAuthorization:
    request = parse_pas_request(ig(version)[name], version)
    decision = decide(request, _approve, ids, now)
    response = build_submit_response(request, decision, ids=ids, now=now)
    return StoredAuthorization.of(request, decision, response, superseded)


def _inquiry(ig: Any, version: PasVersion) -> Json:
    return copy.deepcopy(ig(version)["Bundle-PASClaimInquiryBundleExample.json"])


@pytest.mark.parametrize("version", list(PasVersion))
def test_ig_inquiry_matches_the_approved_homecare_request(
    version: PasVersion, ig: Any, ids: Any, now: datetime
) -> None:
    stored = _stored(ig, version, ids, now)
    other = _stored(ig, version, ids, now, "Bundle-SurgicalRequestBundleExample.json")
    inquiry = parse_inquiry_request(_inquiry(ig, version), version)
    assert find_matches(inquiry, [other, stored]) == [stored]


def _set_provider_npi(bundle: Json, npi: str) -> None:
    for entry in bundle["entry"]:
        if entry["fullUrl"].endswith("Organization/UMOExample"):
            entry["resource"]["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}]


def test_provider_and_member_are_required_for_a_match(ig: Any, ids: Any, now: datetime) -> None:
    v = PasVersion.V2_2_1
    stored = _stored(ig, v, ids, now)
    bundle = _inquiry(ig, v)
    _set_provider_npi(bundle, "1111111112")
    assert not matches(parse_inquiry_request(bundle, v), stored)
    bundle = _inquiry(ig, v)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] in ("Patient", "Coverage"):
            entry["resource"]["identifier"] = [{"value": "someone-else"}]
            entry["resource"].pop("subscriberId", None)
    assert not matches(parse_inquiry_request(bundle, v), stored)


def test_item_filters_code_range_and_review_action(ig: Any, ids: Any, now: datetime) -> None:
    v = PasVersion.V2_2_1
    stored = _stored(ig, v, ids, now)
    bundle = _inquiry(ig, v)
    item = bundle["entry"][0]["resource"]["item"][1]
    for ext in item["extension"]:
        if ext["url"].endswith("extension-productOrServiceCodeEnd"):
            ext["valueCodeableConcept"]["coding"][0]["code"] = "B4183"  # range B4184..B4183 is empty
    assert not matches(parse_inquiry_request(bundle, v), stored)
    bundle = _inquiry(ig, v)
    for ext in bundle["entry"][0]["resource"]["item"][1]["extension"]:
        if ext["url"].endswith("extension-reviewActionCode"):
            ext["valueCodeableConcept"]["coding"][0]["code"] = "A4"
    assert not matches(parse_inquiry_request(bundle, v), stored)
    bundle = _inquiry(ig, v)
    bundle["entry"][0]["resource"]["item"][0]["productOrService"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable"}
        ]
    }
    assert matches(parse_inquiry_request(bundle, v), stored)  # spec-43: no product code means any


def test_search_by_authorization_number_finds_current_even_when_superseded(
    ig: Any, ids: Any, now: datetime
) -> None:
    v = PasVersion.V2_2_1
    stored = _stored(ig, v, ids, now, superseded=("OLD-REF-1",))
    for number, expected in (("OLD-REF-1", True), (stored.authorization_numbers[0], True), ("NOPE", False)):
        bundle = _inquiry(ig, v)
        bundle["entry"][0]["resource"].setdefault("extension", []).append(
            {"url": PAS + "extension-authorizationNumber", "valueString": number}
        )
        assert matches(parse_inquiry_request(bundle, v), stored) is expected, number


def test_dates_must_overlap(ig: Any, ids: Any, now: datetime) -> None:
    v = PasVersion.V2_2_1
    stored = _stored(ig, v, ids, now)
    bundle = _inquiry(ig, v)
    bundle["entry"][0]["resource"]["billablePeriod"] = {"start": "2020-01-01", "end": "2020-02-01"}
    assert not matches(parse_inquiry_request(bundle, v), stored)
    bundle["entry"][0]["resource"]["billablePeriod"] = {"start": "2026-03-01", "end": "2026-04-01"}
    assert matches(parse_inquiry_request(bundle, v), stored)


def test_output_221_is_parameters_with_return_bundles(
    ig: Any, ids: Any, now: datetime, check_profile: Any, validate: Any
) -> None:
    v = PasVersion.V2_2_1
    stored = _stored(ig, v, ids, now)
    bundle = inquiry_response_bundle(stored, v, bundle_id="b1", now=now)
    assert check_profile(bundle, v, "profile-pas-inquiry-response-bundle") == []
    assert check_profile(bundle["entry"][0]["resource"], v, "profile-claiminquiryresponse") == []
    assert bundle["entry"][0]["resource"]["meta"]["profile"] == [f"{PAS}profile-claiminquiryresponse|2.2.1"]
    assert stored.response_bundle["entry"][0]["resource"]["meta"]["profile"] == [
        f"{PAS}profile-claimresponse|2.2.1"
    ]
    out = inquire_output(v, [bundle], bundle_id="x", now=now)
    assert validate(bundle, v) == [] and validate(out, v) == []
    assert out["resourceType"] == "Parameters"
    assert [p["name"] for p in out["parameter"]] == ["return"]
    assert inquire_output(v, [], bundle_id="x", now=now) == {"resourceType": "Parameters", "parameter": []}


def test_output_201_is_one_bundle_and_404_when_nothing_matches(
    ig: Any, ids: Any, now: datetime, check_profile: Any, validate: Any
) -> None:
    v = PasVersion.V2_0_1
    first = inquiry_response_bundle(_stored(ig, v, ids, now), v, bundle_id="b1", now=now)
    second = inquiry_response_bundle(_stored(ig, v, ids, now), v, bundle_id="b2", now=now)
    out = inquire_output(v, [first, second], bundle_id="x", now=now)
    assert out["resourceType"] == "Bundle"
    assert check_profile(out, v, "profile-pas-inquiry-response-bundle") == []
    assert validate(out, v) == []
    types = [e["resource"]["resourceType"] for e in out["entry"]]
    assert types[:2] == ["ClaimResponse", "ClaimResponse"] and types.count("ClaimResponse") == 2
    urls = [e["fullUrl"] for e in out["entry"]]
    assert len(urls) == len(set(urls))
    with pytest.raises(OperationOutcomeError) as exc:
        inquire_output(v, [], bundle_id="x", now=now)
    assert exc.value.failure is Failure.NOT_FOUND
