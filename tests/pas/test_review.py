"""Review queue due times and reviewer decisions producing a new ClaimResponse version."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from igs.outcome import OperationOutcomeError
from server.pas import (
    Code,
    InfoRequest,
    Modification,
    PasVersion,
    ReviewAction,
    ReviewClock,
    ReviewClocks,
    Reviewer,
    ReviewerAction,
    ReviewerDecision,
    Urgency,
    additional_information_task,
    apply_review,
    build_submit_response,
    claim_response_of,
    decide,
    due_at,
    extend_due,
    open_review,
    parse_pas_request,
    request_more_information,
)

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
DENIAL_REASON = Code("https://codesystem.x12.org/external/886", "0U", "Not medically necessary")
REVIEWER = Reviewer(
    "rev-1", npi="1679576722", specialty=Code("http://nucc.org/provider-taxonomy", "207R00000X")
)


def test_default_due_times(now: datetime) -> None:
    clocks = ReviewClocks()
    assert due_at(now, Urgency.EXPEDITED, None, clocks) - now == timedelta(hours=72)
    assert due_at(now, Urgency.STANDARD, None, clocks) - now == timedelta(days=7)


def test_due_times_per_line_of_business(now: datetime) -> None:
    clocks = ReviewClocks(
        by_line_of_business=MappingProxyType({"MCD": ReviewClock(timedelta(hours=24), timedelta(days=3))})
    )
    assert due_at(now, Urgency.EXPEDITED, "MCD", clocks) - now == timedelta(hours=24)
    assert due_at(now, Urgency.STANDARD, "MCD", clocks) - now == timedelta(days=3)
    assert due_at(now, Urgency.STANDARD, "COMM", clocks) - now == timedelta(days=7)


def _pended(
    ig: Any,
    ids: Any,
    now: datetime,
    make_evaluator: Any,
    version: PasVersion = PasVersion.V2_2_1,
    name: str = "Bundle-ReferralAuthorizationBundleExample.json",
) -> Any:
    request = parse_pas_request(ig(version)[name], version)
    return request, decide(request, make_evaluator("pend"), ids, now)


def test_open_review_uses_urgency_and_records_extensions(
    ig: Any, ids: Any, now: datetime, make_evaluator: Any
) -> None:
    request, decision = _pended(ig, ids, now, make_evaluator)
    item = open_review(request, decision, review_id="R1", received_at=now)
    assert request.urgency is Urgency.EXPEDITED  # level of service U
    assert item.due_at == now + timedelta(hours=72)
    assert item.pended_sequences == (1,)
    assert item.retain_until >= now + timedelta(days=182)
    assert not item.is_overdue(now + timedelta(hours=71))
    assert item.is_overdue(now + timedelta(hours=73))
    later = extend_due(item, by=timedelta(days=2), reason="awaiting records", at=now, reviewer_id="rev-1")
    assert later.due_at == item.due_at + timedelta(days=2)
    assert later.extensions[0].reason == "awaiting records"
    with pytest.raises(OperationOutcomeError):
        extend_due(item, by=timedelta(days=1), reason="  ", at=now)


def test_standard_request_is_due_in_seven_days(ig: Any, ids: Any, now: datetime, make_evaluator: Any) -> None:
    request, decision = _pended(
        ig, ids, now, make_evaluator, name="Bundle-MedicalServicesAuthorizationBundleExample.json"
    )
    assert open_review(request, decision, review_id="R2", received_at=now).due_at == now + timedelta(days=7)


def test_only_pended_requests_enter_the_queue(ig: Any, ids: Any, now: datetime, make_evaluator: Any) -> None:
    request = parse_pas_request(
        ig(PasVersion.V2_2_1)["Bundle-ReferralAuthorizationBundleExample.json"], PasVersion.V2_2_1
    )
    with pytest.raises(OperationOutcomeError):
        open_review(
            request, decide(request, make_evaluator("approve"), ids, now), review_id="R", received_at=now
        )


def test_denial_needs_reason_code_and_text(ig: Any, ids: Any, now: datetime, make_evaluator: Any) -> None:
    request, decision = _pended(ig, ids, now, make_evaluator)
    for bad in (
        ReviewerDecision(1, ReviewerAction.DENY, reason_text="no"),
        ReviewerDecision(1, ReviewerAction.DENY, reason_code=DENIAL_REASON),
    ):
        with pytest.raises(OperationOutcomeError):
            apply_review(request, decision, [bad], reviewer=REVIEWER, ids=ids, now=now)


@pytest.mark.parametrize("version", list(PasVersion))
def test_reviewer_denial_is_the_only_a3_and_makes_a_new_version(
    version: PasVersion,
    ig: Any,
    ids: Any,
    now: datetime,
    make_evaluator: Any,
    check_profile: Any,
    validate: Any,
) -> None:
    request, decision = _pended(ig, ids, now, make_evaluator, version)
    first = build_submit_response(request, decision, ids=ids, now=now)
    first_cr = claim_response_of(first)
    assert first_cr is not None
    later = now + timedelta(hours=5)
    denied = apply_review(
        request,
        decision,
        [
            ReviewerDecision(
                1, ReviewerAction.DENY, reason_code=DENIAL_REASON, reason_text="Not medically necessary"
            )
        ],
        reviewer=REVIEWER,
        ids=ids,
        now=later,
    )
    assert denied.version == 2 and denied.items[0].action is ReviewAction.NOT_CERTIFIED
    second = build_submit_response(request, denied, ids=ids, now=later, claim_response_id=first_cr["id"])
    cr = claim_response_of(second)
    assert cr is not None and cr["id"] == first_cr["id"]
    assert second["id"] != first["id"]
    assert cr["outcome"] == "complete"
    assert check_profile(cr, version, "profile-claimresponse") == []
    assert validate(second, version) == []
    review = cr["item"][0]["adjudication"][0]["extension"][0]["extension"]
    assert {"url": "reasonCode", "valueCodeableConcept": DENIAL_REASON.concept()} in review
    assert cr["processNote"][cr["item"][0]["noteNumber"][0] - 1]["text"] == "Not medically necessary"
    reviewer_ext = [e for e in cr.get("extension", []) if e["url"] == PAS + "extension-claimResponseReviewer"]
    assert bool(reviewer_ext) is (version is PasVersion.V2_2_1)
    with pytest.raises(OperationOutcomeError):  # already decided
        apply_review(
            request,
            denied,
            [ReviewerDecision(1, ReviewerAction.APPROVE)],
            reviewer=REVIEWER,
            ids=ids,
            now=later,
        )


def test_reviewer_approval_and_modification(ig: Any, ids: Any, now: datetime, make_evaluator: Any) -> None:
    request, decision = _pended(
        ig, ids, now, make_evaluator, name="Bundle-HomecareAuthorizationBundleExample.json"
    )
    product = request.items[1].product
    assert product is not None
    reviewed = apply_review(
        request,
        decision,
        [
            ReviewerDecision(1, ReviewerAction.APPROVE),
            ReviewerDecision(
                2,
                ReviewerAction.MODIFY,
                modification=Modification(product, quantity=None),
                reason_text="fewer visits",
            ),
        ],
        reviewer=REVIEWER,
        ids=ids,
        now=now,
    )
    assert [i.action for i in reviewed.items] == [ReviewAction.CERTIFIED, ReviewAction.MODIFIED]
    assert reviewed.pre_auth_ref and all(i.authorization_number for i in reviewed.items)
    cr = claim_response_of(build_submit_response(request, reviewed, ids=ids, now=now))
    assert cr is not None and cr["addItem"][0]["itemSequence"] == [2]
    with pytest.raises(OperationOutcomeError):
        apply_review(
            request,
            decision,
            [ReviewerDecision(9, ReviewerAction.APPROVE)],
            reviewer=REVIEWER,
            ids=ids,
            now=now,
        )
    with pytest.raises(OperationOutcomeError):
        apply_review(
            request,
            decision,
            [ReviewerDecision(2, ReviewerAction.MODIFY)],
            reviewer=REVIEWER,
            ids=ids,
            now=now,
        )


@pytest.mark.parametrize("version", list(PasVersion))
def test_request_more_information_adds_communication_request(
    version: PasVersion,
    ig: Any,
    ids: Any,
    now: datetime,
    make_evaluator: Any,
    check_profile: Any,
    references: Any,
    validate: Any,
) -> None:
    request, decision = _pended(ig, ids, now, make_evaluator, version)
    asked = request_more_information(
        decision,
        [
            InfoRequest(
                1,
                "18776-5",
                report_type=Code("https://codesystem.x12.org/005010/755", "15"),
                content_modifier=Code("http://loinc.org", "18804-5"),
            )
        ],
        reviewer=REVIEWER,
        now=now,
    )
    assert asked.items[0].action is ReviewAction.PENDED and asked.version == 2
    response = build_submit_response(request, asked, ids=ids, now=now)
    assert validate(response, version) == []
    cr = claim_response_of(response)
    assert cr is not None
    (comm_ref,) = cr["communicationRequest"]
    (comm,) = [e["resource"] for e in response["entry"] if e["fullUrl"] == comm_ref["reference"]]
    assert check_profile(comm, version, "profile-communicationrequest") == []
    assert comm["payload"][0]["contentString"] == "18776-5"
    if version is PasVersion.V2_2_1:
        assert comm["identifier"][0]["value"] == "1122334"  # the item trace number
    urls = [e["fullUrl"] for e in response["entry"]]
    for ref in references(comm):
        assert ref in urls
    with pytest.raises(OperationOutcomeError):
        request_more_information(decision, [], reviewer=REVIEWER, now=now)


@pytest.mark.parametrize("version", list(PasVersion))
def test_additional_information_task_shape(
    version: PasVersion,
    ig: Any,
    ids: Any,
    now: datetime,
    make_evaluator: Any,
    check_profile: Any,
    validate: Any,
) -> None:
    request, _ = _pended(ig, ids, now, make_evaluator, version)
    for code, expected in (
        ("28570-0", "attachment-request-code"),
        ("102089-0", "attachment-request-questionnaire"),
    ):
        task = additional_information_task(
            request, InfoRequest(1, code), task_id="T1", payer_url="https://payer.example/fhir"
        )
        assert check_profile(task, version, "profile-task") == []
        assert validate(task, version) == []
        assert task["code"]["coding"][0]["code"] == expected
