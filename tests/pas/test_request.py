"""Parsing PAS request Bundles: every IG example of both versions, and the structural errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    CertificationType,
    InfoChange,
    PasVersion,
    Urgency,
    parse_inquiry_request,
    parse_pas_request,
)

Json = dict[str, Any]


def test_every_ig_request_example_parses(example_bundle: tuple[PasVersion, Json]) -> None:
    version, bundle = example_bundle
    request = parse_pas_request(bundle, version)
    claim = bundle["entry"][0]["resource"]
    assert request.version is version
    assert [i.sequence for i in request.items] == [i["sequence"] for i in claim["item"]]
    assert request.claim_identifiers and request.claim_identifiers[0].value == claim["identifier"][0]["value"]
    assert request.patient.resource_type == "Patient"
    assert request.insurer.resource_type == "Organization"
    assert request.provider.full_url.startswith("http")
    assert all(item.product is not None for item in request.items)
    assert request.coverages
    assert request.member_ids or request.patient.identifiers


def _minimal(version: PasVersion = PasVersion.V2_2_1) -> Json:
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:example", "value": "B1"},
        "type": "collection",
        "timestamp": "2026-03-02T10:00:00Z",
        "entry": [
            {
                "fullUrl": "urn:uuid:c1",
                "resource": {
                    "resourceType": "Claim",
                    "identifier": [{"system": "urn:trnorg:123", "value": "T1"}],
                    "status": "active",
                    "use": "preauthorization",
                    "patient": {"reference": "urn:uuid:p1"},
                    "insurer": {"reference": "urn:uuid:o1"},
                    "provider": {"reference": "urn:uuid:o2"},
                    "priority": {"coding": [{"code": "normal"}]},
                    "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "urn:uuid:cov1"}}],
                    "item": [
                        {
                            "sequence": 1,
                            "productOrService": {
                                "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]
                            },
                            "quantity": {"value": 2},
                        }
                    ],
                },
            },
            {
                "fullUrl": "urn:uuid:p1",
                "resource": {"resourceType": "Patient", "identifier": [{"value": "M1"}]},
            },
            {
                "fullUrl": "urn:uuid:o1",
                "resource": {"resourceType": "Organization", "identifier": [{"value": "PAYER"}]},
            },
            {
                "fullUrl": "urn:uuid:o2",
                "resource": {
                    "resourceType": "Organization",
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
                },
            },
            {
                "fullUrl": "urn:uuid:cov1",
                "resource": {
                    "resourceType": "Coverage",
                    "identifier": [{"type": {"coding": [{"code": "MB"}]}, "value": "M1"}],
                    "type": {"coding": [{"code": "MCPOL"}]},
                    "beneficiary": {"reference": "urn:uuid:p1"},
                    "payor": [{"reference": "urn:uuid:o1"}],
                },
            },
        ],
    }


@pytest.fixture
def minimal() -> Json:
    return _minimal()


def _issues(exc: pytest.ExceptionInfo[OperationOutcomeError]) -> list[str]:
    return [e for issue in exc.value.issues for e in issue.expression]


@pytest.mark.parametrize("version", list(PasVersion))
def test_empty_bundle_is_a_4xx_operation_outcome_on_both_operations(version: PasVersion) -> None:
    empty = {"resourceType": "Bundle", "type": "collection", "entry": []}
    for parse in (parse_pas_request, parse_inquiry_request):
        with pytest.raises(OperationOutcomeError) as exc:
            parse(empty, version)
        assert exc.value.failure is Failure.INVALID
        assert "Bundle.entry" in _issues(exc)
        assert exc.value.to_fhir()["resourceType"] == "OperationOutcome"


def test_not_a_bundle_and_claim_not_first_are_invalid(minimal: Json) -> None:
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request({"resourceType": "Claim"}, PasVersion.V2_2_1)
    assert exc.value.failure is Failure.INVALID
    minimal["entry"].append(minimal["entry"].pop(0))
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request(minimal, PasVersion.V2_2_1)
    assert "Bundle.entry[0].resource" in _issues(exc)


def test_unresolved_reference_duplicate_sequence_and_wrong_use_are_all_reported(minimal: Json) -> None:
    claim = minimal["entry"][0]["resource"]
    claim["patient"] = {"reference": "urn:uuid:missing"}
    claim["use"] = "claim"
    claim["item"].append(copy.deepcopy(claim["item"][0]))
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request(minimal, PasVersion.V2_2_1)
    assert exc.value.failure is Failure.UNPROCESSABLE
    expressions = _issues(exc)
    assert "Bundle.entry[0].resource.patient.reference" in expressions
    assert "Bundle.entry[0].resource.use" in expressions
    assert "Bundle.entry[0].resource.item" in expressions


def test_missing_entry_fields_are_invalid_not_crashes(minimal: Json) -> None:
    del minimal["entry"][1]["fullUrl"]
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request(minimal, PasVersion.V2_2_1)
    assert _issues(exc) == ["Bundle.entry[1].fullUrl"]
    minimal["entry"][1] = "nonsense"
    with pytest.raises(OperationOutcomeError):
        parse_pas_request(minimal, PasVersion.V2_2_1)


def test_items_without_product_are_rejected(minimal: Json) -> None:
    del minimal["entry"][0]["resource"]["item"][0]["productOrService"]
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request(minimal, PasVersion.V2_2_1)
    assert "Bundle.entry[0].resource.item[0].productOrService" in _issues(exc)


def test_urgency_from_priority_or_level_of_service(minimal: Json) -> None:
    assert parse_pas_request(minimal, PasVersion.V2_2_1).urgency is Urgency.STANDARD
    minimal["entry"][0]["resource"]["priority"] = {"coding": [{"code": "stat"}]}
    assert parse_pas_request(minimal, PasVersion.V2_2_1).urgency is Urgency.EXPEDITED
    minimal["entry"][0]["resource"]["priority"] = {"coding": [{"code": "normal"}]}
    minimal["entry"][0]["resource"]["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-levelOfServiceCode",
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1338", "code": "U"}]
            },
        }
    ]
    assert parse_pas_request(minimal, PasVersion.V2_2_1).urgency is Urgency.EXPEDITED


def test_items_carry_quantity_exactly_and_member_ids(minimal: Json) -> None:
    minimal["entry"][0]["resource"]["item"][0]["quantity"] = {"value": 2.5}
    request = parse_pas_request(minimal, PasVersion.V2_2_1)
    assert str(request.items[0].quantity) == "2.5"
    assert [m.value for m in request.member_ids] == ["M1"]
    assert request.coverages[0].line_of_business == "MCPOL"


def test_whole_cancel_needs_no_items(minimal: Json) -> None:
    claim = minimal["entry"][0]["resource"]
    claim["item"] = []
    with pytest.raises(OperationOutcomeError):
        parse_pas_request(minimal, PasVersion.V2_2_1)
    claim["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType",
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]
            },
        }
    ]
    del claim["item"]
    request = parse_pas_request(minimal, PasVersion.V2_2_1)
    assert request.is_whole_cancel and request.is_update
    assert request.certification_type == CertificationType.CANCEL


def test_update_examples_link_the_prior_request(ig: Any) -> None:
    new = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-HomecareAuthorizationUpdateBundleExample.json"], PasVersion.V2_2_1
    )
    assert new.is_update and new.prior_claim is not None
    assert [i.value for i in new.prior_claim_identifiers] == ["111099"]
    assert new.item(2) is not None and new.item(2).is_cancel  # type: ignore[union-attr]
    assert new.item(3) is not None and new.item(3).info_changed is InfoChange.ADDED  # type: ignore[union-attr]
    old = parse_pas_request(
        ig(PasVersion.V2_0_1)["Bundle-HomecareAuthorizationUpdateBundleExample.json"], PasVersion.V2_0_1
    )
    assert old.is_update and old.prior_claim is None  # 2.0.1 updates reuse the identifier instead


def test_submitter_identifiers_include_isa06(ig: Any) -> None:
    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-ReferralAuthorizationBundleExample.json"], PasVersion.V2_2_1
    )
    values = [i.value for i in request.submitter_identifiers]
    assert values[0] == "PROVIDERID"
    assert "8189991234" in values
    assert request.items[0].trace_numbers[0].value == "1122334"
    assert request.supporting_info[0].target is not None
    assert request.supporting_info[0].target.resource_type == "DocumentReference"


def test_dtr_response_links_by_coverage_assertion_and_context(minimal: Json) -> None:
    crd = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
    minimal["entry"].append(
        {
            "fullUrl": "urn:uuid:qr1",
            "resource": {
                "resourceType": "QuestionnaireResponse",
                "extension": [
                    {"url": crd, "extension": [{"url": "coverage-assertion-id", "valueString": "CA-9"}]},
                    {
                        "url": "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context",
                        "valueReference": {"identifier": {"value": "TRACE-1"}},
                    },
                ],
                "status": "completed",
            },
        }
    )
    minimal["entry"][0]["resource"]["supportingInfo"] = [
        {
            "sequence": 1,
            "category": {"coding": [{"code": "additionalInformation"}]},
            "valueReference": {"reference": "urn:uuid:qr1"},
        }
    ]
    info = parse_pas_request(minimal, PasVersion.V2_2_1).supporting_info[0]
    assert info.coverage_assertion_ids == ("CA-9",)
    assert info.context_refs == ("TRACE-1",)


@pytest.mark.parametrize("bad", [{"servicedDate": "2026-13-01"}, {"servicedPeriod": {"start": "soon"}}])
def test_invalid_service_dates_are_rejected(minimal: Json, bad: Json) -> None:
    minimal["entry"][0]["resource"]["item"][0].update(bad)
    with pytest.raises(OperationOutcomeError) as exc:
        parse_pas_request(minimal, PasVersion.V2_2_1)
    assert exc.value.failure is Failure.UNPROCESSABLE
    assert _issues(exc)[0].startswith("Bundle.entry[0].resource.item[0].serviced")


def test_claim_level_authorization_numbers(minimal: Json) -> None:
    pas = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
    minimal["entry"][0]["resource"]["extension"] = [
        {"url": pas + "extension-authorizationNumber", "valueString": "BB-1"},
        {"url": pas + "extension-administrationReferenceNumber", "valueString": "NT-1"},
    ]
    request = parse_pas_request(minimal, PasVersion.V2_2_1)
    assert (request.authorization_number, request.administration_reference_number) == ("BB-1", "NT-1")
