"""The PDex prior-authorization ExplanationOfBenefit built from a PAS request and its decision: what each
decision looks like, drugs left out, and the profile check with PriorGate's validator."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from conformance.suites import pas_server
from server.pas.codes import ReviewAction
from server.pas.decision import Decision, ItemDecision, Modification, Reviewer
from server.pas.fhirdata import Code, Period
from server.pas.request import PasRequest, parse_pas_request
from server.pas.versions import PasVersion
from server.patient_access import PROFILE_PRIOR_AUTHORIZATION, build_prior_auth_eob
from server.patient_access.eob import denial_dates
from tests.conftest import ig_path

NDC = "http://hl7.org/fhir/sid/ndc"
X12_886 = "https://codesystem.x12.org/external/886"
DECIDED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REVIEWER = Reviewer("rev-1")


def request(codes: tuple[str, ...] = ("72148", "97110"), ndc_items: tuple[int, ...] = ()) -> PasRequest:
    bundle = pas_server.request_bundle("EOB-1", codes)
    claim = bundle["entry"][0]["resource"]
    for sequence in ndc_items:
        claim["item"][sequence - 1]["productOrService"] = {
            "coding": [{"system": NDC, "code": "0002-8215-01"}]
        }
    return parse_pas_request(bundle, PasVersion.V2_2_1)


def decided(*items: ItemDecision, pre_auth_ref: str | None = "PG1") -> Decision:
    return Decision(items=items, decided_at=DECIDED, pre_auth_ref=pre_auth_ref)


def approved(sequence: int, **kw: Any) -> ItemDecision:
    return ItemDecision(
        sequence,
        ReviewAction.CERTIFIED,
        authorization_number="PG1",
        pre_auth_period=Period("2026-06-01", "2026-08-30"),
        issued="2026-03-02",
        **kw,
    )


def denied(sequence: int) -> ItemDecision:
    return ItemDecision(
        sequence,
        ReviewAction.NOT_CERTIFIED,
        reason_codes=(Code(X12_886, "AA"),),
        note="Conservative therapy not documented",
        reviewer=REVIEWER,
    )


def eob_of(req: PasRequest, decision: Decision, outcome: str = "complete") -> dict[str, Any]:
    built = build_prior_auth_eob(
        req,
        decision,
        {"resourceType": "ClaimResponse", "id": "cr-1", "outcome": outcome},
        eob_id="eob-1",
        patient_reference="Patient/member-1",
        claim_reference="Claim/eob-1",
    )
    assert built is not None
    return built


def action(item: dict[str, Any]) -> tuple[str, list[str], Decimal]:
    (adjudication,) = item["adjudication"]
    (review,) = adjudication["extension"]
    code = next(p for p in review["extension"] if p["url"].endswith("extension-reviewActionCode"))
    reasons = [
        p["valueCodeableConcept"]["coding"][0]["code"]
        for p in review["extension"]
        if p["url"] == "reasonCode"
    ]
    return code["valueCodeableConcept"]["coding"][0]["code"], reasons, adjudication["value"]


def test_approved_and_denied_items_carry_status_quantity_dates_and_the_specific_reason() -> None:
    eob = eob_of(request(), decided(denied(1), approved(2)))
    assert eob["use"] == "preauthorization" and eob["status"] == "active" and eob["outcome"] == "complete"
    assert eob["patient"] == {"reference": "Patient/member-1"} and eob["created"] == "2026-05-01T10:00:00Z"
    assert eob["preAuthRef"] == ["PG1"] and eob["preAuthRefPeriod"] == [
        {"start": "2026-06-01", "end": "2026-08-30"}
    ]
    first, second = eob["item"]
    assert action(first) == ("A3", ["AA"], Decimal(0))
    assert action(second) == ("A1", [], Decimal(1))
    assert {"url": PAS_EXT + "itemPreAuthIssueDate", "valueDate": "2026-03-02"} in second["extension"]
    assert second["servicedDate"] == "2026-06-01"
    assert second["category"]["coding"][0]["system"] == "https://x12.org/codes/service-type-codes"
    assert eob["processNote"] == [
        {"number": 1, "type": "display", "text": "Conservative therapy not documented"}
    ]


PAS_EXT = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-"


def test_a_modified_item_shows_what_was_authorized_and_pended_items_allow_nothing_yet() -> None:
    modification = Modification(Code("http://www.ama-assn.org/go/cpt", "72146"), Decimal("2"))
    change = ItemDecision(1, ReviewAction.MODIFIED, authorization_number="PG1", modification=modification)
    eob = eob_of(
        request(), decided(change, ItemDecision(2, ReviewAction.PENDED, note="Awaiting records")), "partial"
    )
    assert eob["outcome"] == "partial"
    assert action(eob["item"][0]) == ("A6", [], Decimal(2))
    assert action(eob["item"][1]) == ("A4", [], Decimal(0))
    (added,) = eob["addItem"]
    assert added["itemSequence"] == [1] and added["productOrService"]["coding"][0]["code"] == "72146"
    assert added["quantity"] == {"value": Decimal(2)}


def test_drug_items_are_left_out_and_a_drug_only_request_has_no_eob() -> None:
    mixed = eob_of(request(ndc_items=(1,)), decided(approved(1), approved(2)))
    assert [i["sequence"] for i in mixed["item"]] == [2]
    drugs_only = build_prior_auth_eob(
        request(("72148",), ndc_items=(1,)),
        decided(approved(1)),
        {"outcome": "complete"},
        eob_id="eob-2",
        patient_reference="Patient/member-1",
    )
    assert drugs_only is None


def test_a_denial_is_dated_by_its_decision_and_keeps_that_date_in_later_versions() -> None:
    pended = ItemDecision(2, ReviewAction.PENDED, note="Awaiting records")
    first = eob_of(request(), decided(denied(1), pended), "partial")
    issue = {"url": PAS_EXT + "itemPreAuthIssueDate", "valueDate": "2026-03-02"}
    assert issue in first["item"][0]["extension"]
    assert denial_dates(first) == {1: "2026-03-02"}
    later = Decision(items=(denied(1), approved(2)), decided_at=datetime(2026, 3, 9, tzinfo=UTC))
    kept = build_prior_auth_eob(
        request(),
        later,
        {"outcome": "complete"},
        eob_id="e",
        patient_reference="Patient/m",
        denied_on={1: "2026-03-02"},
    )
    assert kept is not None and issue in kept["item"][0]["extension"]
    fresh = build_prior_auth_eob(
        request(), later, {"outcome": "complete"}, eob_id="e", patient_reference="Patient/m"
    )
    assert fresh is not None
    assert {"url": PAS_EXT + "itemPreAuthIssueDate", "valueDate": "2026-03-09"} in fresh["item"][0][
        "extension"
    ]


def test_a_cancelled_request_is_a_cancelled_eob() -> None:
    cancelled = (ItemDecision(1, ReviewAction.CANCELLED), ItemDecision(2, ReviewAction.CANCELLED))
    assert eob_of(request(), decided(*cancelled))["status"] == "cancelled"
    assert eob_of(request(), decided(cancelled[0], approved(2)))["status"] == "active"


@pytest.mark.igs
def test_the_eob_conforms_to_the_pdex_prior_authorization_profile() -> None:
    path = ig_path()
    if path is None:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    from igs import load_registry
    from igs.validator import Validator

    registry = load_registry(path)
    package = registry.find("hl7.fhir.us.davinci-pdex", "2.0.0")
    if package is None:
        pytest.skip("the PDex 2.0.0 package is not installed")
    modification = Modification(Code("http://www.ama-assn.org/go/cpt", "72146"), Decimal("2"))
    change = ItemDecision(2, ReviewAction.MODIFIED, authorization_number="PG1", modification=modification)
    for decision in (decided(denied(1), approved(2)), decided(approved(1), change)):
        eob = eob_of(request(), decision)
        profile = PROFILE_PRIOR_AUTHORIZATION + "|2.0.0"
        lenient = Validator(registry, package=package).validate(copy.deepcopy(eob), profile)
        errors = [f"{i.expression}: {i.diagnostics}" for i in lenient if i.severity in ("error", "fatal")]
        assert errors == []
        # without the suppression, only the published PDex/PAS context defect remains
        strict = Validator(registry, suppressions=(), package=package).validate(copy.deepcopy(eob), profile)
        strict_errors = [i.diagnostics for i in strict if i.severity in ("error", "fatal")]
        assert strict_errors and all(
            "is not allowed to be used at ExplanationOfBenefit.item" in d for d in strict_errors
        )
