"""PAS Response Bundles per version: required elements, review action codes, references, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from server.pas import (
    BusinessError,
    CoverageFinding,
    CoverageQuery,
    FollowupAction,
    PasVersion,
    RejectReason,
    build_error_response,
    build_submit_response,
    claim_response_of,
    decide,
    parse_pas_request,
)

Json = dict[str, Any]
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
EXPECTED_CODE = {"approve": "A1", "pend": "A4", "modify": "A6", "not-covered": "A4"}


def _action_codes(item: Json) -> list[str]:
    out = []
    for adjudication in item["adjudication"]:
        for review in adjudication.get("extension", []):
            if review["url"] != PAS + "extension-reviewAction":
                continue
            for part in review["extension"]:
                if part["url"] == PAS + "extension-reviewActionCode":
                    coding = part["valueCodeableConcept"]["coding"][0]
                    assert coding["system"] == "https://codesystem.x12.org/005010/306"
                    out.append(coding["code"])
    return out


@pytest.mark.parametrize("mode", ["approve", "pend", "modify"])
def test_response_bundle_meets_the_profiles_for_its_version(
    example_bundle: tuple[PasVersion, Json],
    mode: str,
    make_evaluator: Callable[[str], Callable[[CoverageQuery], CoverageFinding]],
    ids: Any,
    now: datetime,
    check_profile: Callable[[Json, PasVersion, str], list[str]],
    references: Callable[[Any], Iterator[str]],
    validate: Callable[[Json, PasVersion], list[str]],
) -> None:
    version, bundle = example_bundle
    request = parse_pas_request(bundle, version)
    decision = decide(request, make_evaluator(mode), ids, now)
    response = build_submit_response(request, decision, ids=ids, now=now)
    assert validate(response, version) == []

    assert check_profile(response, version, "profile-pas-response-bundle") == []
    claim_response = claim_response_of(response)
    assert claim_response is not None
    assert check_profile(claim_response, version, "profile-claimresponse") == []
    assert [e["resource"]["resourceType"] for e in response["entry"]].count("ClaimResponse") == 1
    assert response["meta"]["profile"] == [f"{PAS}profile-pas-response-bundle|{version.value}"]
    assert claim_response["meta"]["profile"] == [f"{PAS}profile-claimresponse|{version.value}"]
    assert response["identifier"]["value"].startswith("urn:uuid:")

    # spec-30/31: every reference but request resolves to exactly one entry
    full_urls = [e["fullUrl"] for e in response["entry"]]
    assert len(full_urls) == len(set(full_urls))
    cr = dict(claim_response)
    cr.pop("request")
    for ref in references(cr):
        assert full_urls.count(ref) == 1, ref
    # spec-33: echoed entries keep their fullUrl and resource
    request_entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    for entry in response["entry"][1:]:
        assert request_entries[entry["fullUrl"]] == entry["resource"]

    # spec-34: item sequences echoed, in order; the decision code per item
    sequences = [i["sequence"] for i in bundle["entry"][0]["resource"]["item"]]
    assert [i["itemSequence"] for i in claim_response["item"]] == sequences
    for item, req_item in zip(claim_response["item"], request.items, strict=True):
        expected = "C" if req_item.is_cancel else EXPECTED_CODE[mode]
        assert _action_codes(item) == [expected]
    if mode == "modify":
        active = [i.sequence for i in request.items if not i.is_cancel]
        assert [a["itemSequence"] for a in claim_response["addItem"]] == [[s] for s in active]
        assert all(_action_codes(a) == ["A1"] for a in claim_response["addItem"])
    if mode == "pend":
        pended = version.rules.outcome_all_pended
        assert claim_response["outcome"] in (pended, version.rules.outcome_some_pended, "complete")
        notes = {n["number"]: n["text"] for n in claim_response["processNote"]}
        for item in claim_response["item"]:
            if _action_codes(item) == ["A4"]:
                assert "medical necessity" in notes[item["noteNumber"][0]]
    else:
        assert claim_response["outcome"] == "complete"
        assert claim_response["preAuthRef"]


def test_pended_outcome_per_version(ig: Any, ids: Any, now: datetime, make_evaluator: Any) -> None:
    name = "Bundle-ReferralAuthorizationBundleExample.json"
    outcomes = {}
    for version in PasVersion:
        request = parse_pas_request(ig(version)[name], version)
        response = build_submit_response(
            request, decide(request, make_evaluator("pend"), ids, now), ids=ids, now=now
        )
        outcomes[version] = claim_response_of(response)["outcome"]  # type: ignore[index]
    assert outcomes == {PasVersion.V2_0_1: "queued", PasVersion.V2_2_1: "complete"}


def test_partly_pended_request_is_partial_in_221(ig: Any, ids: Any, now: datetime) -> None:
    def evaluate(query: CoverageQuery) -> CoverageFinding:
        if query.product and query.product.code == "G0154":
            return CoverageFinding("covered", "no-auth")
        return CoverageFinding("conditional", "auth-needed", reasons=("review",))

    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-HomecareAuthorizationBundleExample.json"], PasVersion.V2_2_1
    )
    response = build_submit_response(request, decide(request, evaluate, ids, now), ids=ids, now=now)
    cr = claim_response_of(response)
    assert cr is not None and cr["outcome"] == "partial"
    assert [_action_codes(i) for i in cr["item"]] == [["A1"], ["A4"]]


def test_approved_item_carries_number_dates_provider_and_trace(
    ig: Any, ids: Any, now: datetime, make_evaluator: Any
) -> None:
    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-ReferralAuthorizationBundleExample.json"], PasVersion.V2_2_1
    )
    decision = decide(request, make_evaluator("approve"), ids, now)
    cr = claim_response_of(build_submit_response(request, decision, ids=ids, now=now))
    assert cr is not None
    item = cr["item"][0]
    urls = [e["url"].removeprefix(PAS) for e in item["extension"]]
    assert {
        "extension-itemTraceNumber",
        "extension-itemPreAuthIssueDate",
        "extension-itemPreAuthPeriod",
        "extension-itemAuthorizedProvider",
    } <= set(urls)
    review = item["adjudication"][0]["extension"][0]["extension"]
    assert review[0] == {"url": "number", "valueString": decision.items[0].authorization_number}
    assert cr["preAuthPeriod"]["start"] == "2026-03-02"
    # TransmissionIdentifiers echoed with sender and receiver swapped
    transmission = {p["url"]: p["valueString"] for p in cr["extension"][0]["extension"]}
    assert transmission["interchangeSenderID"] == "PAYERID"
    assert transmission["interchangeReceiverID"] == "PROVIDERID"


@pytest.mark.parametrize("version", list(PasVersion))
def test_business_error_response(
    version: PasVersion, ig: Any, ids: Any, now: datetime, check_profile: Any, validate: Any
) -> None:
    request = parse_pas_request(ig(version)["Bundle-ReferralAuthorizationBundleExample.json"], version)
    errors = [
        BusinessError(
            RejectReason.PAYER_NAME_OR_ID_MISSING,
            "Payer name missing",
            element="2010A-NM103",
            path="Bundle.entry[2].resource.name",
        ),
        BusinessError(
            RejectReason.INPUT_ERRORS, "Bad input", followup=FollowupAction.RESUBMISSION_NOT_ALLOWED
        ),
    ]
    response = build_error_response(request, errors, ids=ids, now=now)
    assert validate(response, version) == []
    assert check_profile(response, version, "profile-pas-response-bundle") == []
    cr = claim_response_of(response)
    assert cr is not None
    assert check_profile(cr, version, "profile-claimresponse") == []
    assert cr["outcome"] == "error"
    assert [e["code"]["coding"][0] for e in cr["error"]] == [
        {"system": "https://codesystem.x12.org/005010/901", "code": "T4"},
        {"system": "https://codesystem.x12.org/005010/901", "code": "33"},
    ]
    first = {e["url"].removeprefix(PAS): e for e in cr["error"][0]["extension"]}
    if version is PasVersion.V2_2_1:
        assert first["extension-errorElement"]["extension"][0] == {
            "url": "error",
            "valueString": "2010A-NM103",
        }
    else:  # 2.0.1 errorElement is a plain string
        assert first["extension-errorElement"]["valueString"] == "2010A-NM103"
    assert first["extension-errorPath"]["valueString"] == "Bundle.entry[2].resource.name"
    assert first["extension-errorFollowupAction"]["valueCodeableConcept"]["coding"][0]["code"] == "C"
    note_numbers = [
        p["valuePositiveInt"]
        for e in cr["error"]
        for x in e["extension"]
        if x["url"].endswith("errorElement")
        for p in x.get("extension", [])
        if p["url"] == "processNote"
    ]
    assert note_numbers == ([1, 2] if version is PasVersion.V2_2_1 else [])
    assert [n["text"] for n in cr["processNote"]] == ["Payer name missing", "Bad input"]


def test_echoed_entries_and_modified_quantity_serialise_with_orjson(
    ig: Any, ids: Any, now: datetime, make_evaluator: Any
) -> None:
    import orjson

    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-SurgicalRequestBundleExample.json"], PasVersion.V2_2_1
    )
    response = build_submit_response(
        request, decide(request, make_evaluator("modify"), ids, now), ids=ids, now=now
    )
    again = orjson.loads(orjson.dumps(response))
    assert again["entry"][0]["resource"]["addItem"][0]["quantity"] == {"value": 1}


def test_the_structural_profile_check_catches_missing_and_wrong_elements(
    ig: Any, ids: Any, now: datetime, make_evaluator: Any, check_profile: Any
) -> None:
    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-ReferralAuthorizationBundleExample.json"], PasVersion.V2_2_1
    )
    response = build_submit_response(
        request, decide(request, make_evaluator("approve"), ids, now), ids=ids, now=now
    )
    cr = claim_response_of(response)
    assert cr is not None
    del cr["created"], cr["request"]
    cr["use"] = "claim"
    cr["item"][0]["adjudication"][0]["category"]["coding"][0]["code"] = "eligible"
    problems = check_profile(cr, PasVersion.V2_2_1, "profile-claimresponse")
    assert any(p.startswith("ClaimResponse.created") for p in problems)
    assert any(p.startswith("ClaimResponse.request") for p in problems)
    assert any(p.startswith("ClaimResponse.use") for p in problems)
    assert any(p.startswith("ClaimResponse.item.adjudication.category") for p in problems)
    del response["identifier"]
    assert check_profile(response, PasVersion.V2_2_1, "profile-pas-response-bundle") == [
        "Bundle.identifier: min 1, found 0"
    ]
    assert check_profile(response, PasVersion.V2_0_1, "profile-pas-response-bundle") == []
