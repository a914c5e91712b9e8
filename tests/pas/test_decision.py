"""Per-item decisions from the injected coverage rules: A1 / A4 / A6, never an automatic A3."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    Code,
    CoverageFinding,
    CoverageQuery,
    ItemDecision,
    PasVersion,
    ReviewAction,
    Reviewer,
    decide,
    parse_pas_request,
)

Json = dict[str, Any]
Evaluator = Callable[[CoverageQuery], CoverageFinding]


def test_decisions_keep_every_submitted_sequence(
    example_bundle: tuple[PasVersion, Json],
    make_evaluator: Callable[[str], Evaluator],
    ids: Any,
    now: datetime,
) -> None:
    version, bundle = example_bundle
    request = parse_pas_request(bundle, version)
    for mode in ("approve", "pend", "modify", "not-covered"):
        decision = decide(request, make_evaluator(mode), ids, now)
        assert [d.sequence for d in decision.items] == [i.sequence for i in request.items]
        assert all(d.action is not ReviewAction.NOT_CERTIFIED for d in decision.items)


def _request(ig: Any, name: str = "Bundle-ReferralAuthorizationBundleExample.json") -> Any:
    return parse_pas_request(ig(PasVersion.V2_2_1)[name], PasVersion.V2_2_1)


def test_approval_has_authorization_number_period_and_issue_date(
    ig: Any, make_evaluator: Callable[[str], Evaluator], ids: Any, now: datetime
) -> None:
    decision = decide(_request(ig), make_evaluator("approve"), ids, now)
    (item,) = decision.items
    assert item.action is ReviewAction.CERTIFIED
    assert item.authorization_number and decision.pre_auth_ref
    assert item.authorization_number != decision.pre_auth_ref
    assert item.issued == "2026-03-02"
    assert item.pre_auth_period is not None and item.pre_auth_period.start == "2026-03-02"
    assert item.pre_auth_period.end == "2026-05-31"  # default validity: 90 days
    assert item.trace_numbers[0].value == "1122334"
    assert decision.is_final


def test_approval_period_follows_the_requested_service_period(
    ig: Any, make_evaluator: Callable[[str], Evaluator], ids: Any, now: datetime
) -> None:
    request = _request(ig, "Bundle-MedicalServicesAuthorizationBundleExample.json")
    decision = decide(request, make_evaluator("approve"), ids, now)
    served = request.items[0].serviced
    assert served is not None and decision.items[0].pre_auth_period is not None
    assert decision.items[0].pre_auth_period.start == served.start[:10]  # type: ignore[index]


def test_pend_has_reason_and_no_authorization(
    ig: Any, make_evaluator: Callable[[str], Evaluator], ids: Any, now: datetime
) -> None:
    decision = decide(_request(ig), make_evaluator("pend"), ids, now)
    (item,) = decision.items
    assert item.action is ReviewAction.PENDED
    assert item.note and "medical necessity" in item.note
    assert item.authorization_number is None and decision.pre_auth_ref is None
    assert not decision.is_final


def test_not_covered_is_pended_for_review_never_denied(
    ig: Any, make_evaluator: Callable[[str], Evaluator], ids: Any, now: datetime
) -> None:
    (item,) = decide(_request(ig), make_evaluator("not-covered"), ids, now).items
    assert item.action is ReviewAction.PENDED
    assert item.note and "excluded benefit" in item.note


def test_quantity_limit_is_a_modified_approval(
    ig: Any, make_evaluator: Callable[[str], Evaluator], ids: Any, now: datetime
) -> None:
    (item,) = decide(_request(ig), make_evaluator("modify"), ids, now).items
    assert item.action is ReviewAction.MODIFIED
    assert item.modification is not None and item.modification.quantity == Decimal(1)
    assert item.modification.product.code == "3"
    assert item.authorization_number


def test_alternative_service_is_a_modified_approval(ig: Any, ids: Any, now: datetime) -> None:
    other = Code("http://www.ama-assn.org/go/cpt", "99213")

    def evaluate(query: CoverageQuery) -> CoverageFinding:
        return CoverageFinding("covered", "auth-needed", authorized_product=other)

    (item,) = decide(_request(ig), evaluate, ids, now).items
    assert item.action is ReviewAction.MODIFIED
    assert item.modification is not None and item.modification.product == other


def test_unavailable_rules_pend_instead_of_failing(ig: Any, ids: Any, now: datetime) -> None:
    def evaluate(query: CoverageQuery) -> CoverageFinding:
        raise OperationOutcomeError.of(Failure.UNAVAILABLE, "rules engine down")

    (item,) = decide(_request(ig), evaluate, ids, now).items
    assert item.action is ReviewAction.PENDED
    assert item.note and "rules engine down" in item.note


def test_no_combination_of_findings_produces_a_denial(ig: Any, ids: Any, now: datetime) -> None:
    request = _request(ig)
    covered_values = ("covered", "not-covered", "conditional")
    pa_values = (None, "auth-needed", "no-auth", "satisfied", "performpa", "conditional")
    doc_values: tuple[tuple[str, ...], ...] = ((), ("clinical",), ("admin", "patient"))
    seen: set[ReviewAction] = set()
    for covered, pa, doc in itertools.product(covered_values, pa_values, doc_values):
        finding = CoverageFinding(covered, pa, doc)  # type: ignore[arg-type]
        decision = decide(request, lambda q, f=finding: f, ids, now)  # type: ignore[misc]
        seen.update(d.action for d in decision.items)
    assert ReviewAction.NOT_CERTIFIED not in seen
    assert {ReviewAction.CERTIFIED, ReviewAction.PENDED} <= seen


def test_documentation_needed_pends_unless_linked(ig: Any, ids: Any, now: datetime) -> None:
    def evaluate(query: CoverageQuery) -> CoverageFinding:
        return CoverageFinding("covered", "auth-needed", ("clinical",), coverage_assertion_id="CA-7")

    with_doc = _request(ig)  # carries a DocumentReference attached to the whole request
    (item,) = decide(with_doc, evaluate, ids, now).items
    assert item.action is ReviewAction.CERTIFIED and item.documentation == (1,)
    without = _request(ig, "Bundle-MedicalServicesAuthorizationBundleExample.json")
    (item,) = decide(without, evaluate, ids, now).items
    assert item.action is ReviewAction.PENDED and item.note and "Documentation required" in item.note


def test_cancelled_items_are_cancelled_not_evaluated(ig: Any, ids: Any, now: datetime) -> None:
    calls: list[str] = []

    def evaluate(query: CoverageQuery) -> CoverageFinding:
        calls.append(query.product.code if query.product else "")
        return CoverageFinding("covered", "no-auth")

    request = _request(ig, "Bundle-HomecareAuthorizationUpdateBundleExample.json")
    decision = decide(request, evaluate, ids, now)
    assert [d.action for d in decision.items] == [
        ReviewAction.CERTIFIED,
        ReviewAction.CANCELLED,
        ReviewAction.CERTIFIED,
    ]
    assert "B4184" not in calls


def test_a3_requires_reviewer_reason_code_and_text() -> None:
    reason = Code("https://codesystem.x12.org/external/886", "0U")
    with pytest.raises(OperationOutcomeError):
        ItemDecision(1, ReviewAction.NOT_CERTIFIED, reason_codes=(reason,), note="not necessary")
    with pytest.raises(OperationOutcomeError):
        ItemDecision(1, ReviewAction.NOT_CERTIFIED, reviewer=Reviewer("r1"), note="not necessary")
    with pytest.raises(OperationOutcomeError):
        ItemDecision(1, ReviewAction.PENDED)
    denied = ItemDecision(
        1, ReviewAction.NOT_CERTIFIED, reviewer=Reviewer("r1"), reason_codes=(reason,), note="x"
    )
    assert denied.action is ReviewAction.NOT_CERTIFIED


def test_approval_period_for_partial_and_open_dates() -> None:
    from datetime import date, timedelta

    from server.pas import Period
    from server.pas.decision import approval_period

    today, validity = date(2026, 3, 2), timedelta(days=30)
    assert approval_period(Period("2026-06", None), today, validity) == Period("2026-06-01", "2026-07-01")
    assert approval_period(Period("2026-06-10", "2026-06-10"), today, validity) == Period(
        "2026-06-10", "2026-06-10"
    )
    assert approval_period(Period("2026-06-10T08:00:00Z", "2026-06-20"), today, validity) == Period(
        "2026-06-10", "2026-06-20"
    )
    assert approval_period(None, today, validity) == Period("2026-03-02", "2026-04-01")
    assert approval_period(Period("2026-06-10", "2026-06-01"), today, validity).end == "2026-07-10"


def test_query_carries_what_the_crd_rules_read_and_expiry_caps_the_approval(
    ig: Any, ids: Any, now: datetime
) -> None:
    from datetime import date

    seen: list[CoverageQuery] = []

    def evaluate(query: CoverageQuery) -> CoverageFinding:
        seen.append(query)
        return CoverageFinding("covered", "auth-needed", expiry=date(2026, 4, 1))

    request = _request(ig)
    (item,) = decide(request, evaluate, ids, now).items
    (query,) = seen
    assert query.order_reference == "http://example.org/fhir/ServiceRequest/ReferralRequestExample"
    assert query.order_resource is not None and query.order_resource["resourceType"] == "ServiceRequest"
    assert "8189991234" in query.provider_npis
    assert query.patient_gender == "male" and query.today == now.date()
    assert [d.code for d in query.diagnoses] == ["G89.4"]
    assert item.pre_auth_period is not None and item.pre_auth_period.end == "2026-04-01"
