"""The storage codec gives back the same Decision and ReviewItem the core made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from conformance.suites import pas_server
from server.pas import (
    Code,
    Decision,
    Ident,
    InfoRequest,
    ItemDecision,
    Modification,
    PasVersion,
    Period,
    ReviewAction,
    Reviewer,
    ReviewItem,
    Urgency,
    extend_due,
    open_review,
    parse_pas_request,
)
from server.pas.codec import dumps, loads

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_a_decision_round_trips_with_every_member() -> None:
    reviewer = Reviewer("rev-1", npi="1234567893", specialty=Code("http://nucc.org", "207Q00000X", "FM"))
    decision = Decision(
        items=(
            ItemDecision(
                1,
                ReviewAction.MODIFIED,
                trace_numbers=(Ident("urn:trn", "T1"), Ident(None, "T2")),
                authorization_number="PG0000001",
                pre_auth_period=Period("2026-03-02", "2026-05-31"),
                issued="2026-03-02",
                reason_codes=(Code("https://codesystem.x12.org/005010/886", "AA"),),
                note="reduced",
                modification=Modification(Code("http://cpt", "74160"), Decimal("1.50"), ()),
                coverage_assertion_id="ca-1",
                documentation=(1, 2),
                reviewer=reviewer,
            ),
            ItemDecision(2, ReviewAction.PENDED, note="needs review"),
        ),
        decided_at=NOW,
        pre_auth_ref="PG0000001",
        version=3,
        reviewer=reviewer,
        info_requests=(InfoRequest(2, "102089-0", text="questionnaire"),),
    )
    again = loads(Decision, dumps(decision))
    assert again == decision
    assert again.items[0].modification is not None
    assert str(again.items[0].modification.quantity) == "1.50"


def test_a_review_item_round_trips_with_extensions() -> None:
    request = parse_pas_request(pas_server.request_bundle("C1", ("72148",)), PasVersion.V2_2_1)
    decision = Decision((ItemDecision(1, ReviewAction.PENDED, note="why"),), NOW)
    item = open_review(request, decision, review_id="r1", received_at=NOW)
    item = extend_due(item, by=timedelta(days=2), reason="awaiting records", at=NOW, reviewer_id="rev-1")
    again = loads(ReviewItem, dumps(item))
    assert again == item
    assert again.urgency is Urgency.STANDARD
    assert again.due_at - again.received_at == timedelta(days=9)
