"""Work-queue filters and order, aging flags, dashboard figures, roles, password hashing, review clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from server.ops.auth import Passwords, Permission, Role, allowed, same_token
from server.ops.dashboard import (
    bar_chart_svg,
    denial_reasons,
    exposure,
    first_pass_rates,
    stale_rules,
    turnaround,
)
from server.ops.facts import Procedure, RequestFacts
from server.ops.filters import RequestFilter, by_time_left, select
from server.ops.metrics import Outcome
from server.pas.codes import Urgency
from server.pas.review import clocks_from

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def facts(
    n: int,
    *,
    urgency: Urgency = Urgency.STANDARD,
    due_in: timedelta | None = None,
    outcome: Outcome = Outcome.PENDED,
    determined_after: timedelta | None = None,
    first_pass: bool = False,
    specialty: str = "Sleep Medicine",
    site: str = "Lakeview",
    code: str = "E0601",
    assignee: str | None = None,
    denial: tuple[tuple[str, str], ...] = (),
) -> RequestFacts:
    received = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    open_ = outcome is Outcome.PENDED
    return RequestFacts(
        submission_id=f"s{n}",
        review_id=None if first_pass else f"r{n}",
        claim_identifier=f"C{n}",
        urgency=urgency,
        line_of_business="HMO",
        payer="Demo Plan",
        specialty=specialty,
        service_category="Diagnostic medical",
        site=site,
        patient="Sam",
        procedures=(Procedure(1, "cpt", code, code, "A4" if open_ else "A1"),),
        received_at=received if not open_ else NOW - timedelta(days=1),
        due_at=(NOW + due_in) if due_in is not None else None,
        status="open" if open_ else ("final" if first_pass else "decided"),
        assignee=assignee,
        outcome=outcome,
        determined_at=received + determined_after if determined_after is not None else None,
        first_pass=first_pass,
        extended=False,
        denial_reasons=denial,
    )


def test_the_queue_order_is_time_left_and_aging_flags_mark_overdue_and_due_soon() -> None:
    rows = [
        facts(1, due_in=timedelta(days=3)),
        facts(2, due_in=timedelta(hours=-2)),
        facts(3, due_in=timedelta(hours=20), urgency=Urgency.EXPEDITED),
    ]
    assert [f.submission_id for f in by_time_left(rows)] == ["s2", "s3", "s1"]
    assert [f.aging(NOW) for f in rows] == ["on-time", "overdue", "due-soon"]
    assert facts(4, due_in=timedelta(hours=24)).aging(NOW) == "due-soon"
    assert facts(5, outcome=Outcome.APPROVED, determined_after=timedelta(hours=1)).aging(NOW) == ""


def test_filters_match_exactly_and_unassigned_is_a_dash() -> None:
    rows = [
        facts(1, due_in=timedelta(days=1), assignee="rev", specialty="Cardiology"),
        facts(2, due_in=timedelta(days=1), urgency=Urgency.EXPEDITED, code="72148"),
        facts(3, due_in=timedelta(hours=-1)),
    ]
    pick = lambda **kw: [f.submission_id for f in select(rows, RequestFilter(**kw), NOW)]  # noqa: E731
    assert pick(assignee="rev") == ["s1"]
    assert pick(assignee="-") == ["s2", "s3"]
    assert pick(urgency="expedited") == ["s2"]
    assert pick(procedure="72148") == ["s2"]
    assert pick(specialty="Cardiology") == ["s1"]
    assert pick(aging="overdue") == ["s3"]
    assert pick(status="open") == ["s1", "s2", "s3"]
    assert RequestFilter.from_query({"urgency": " standard ", "bogus": "x"}) == RequestFilter(
        urgency="standard"
    )


def test_first_pass_rates_and_drill_down_filters() -> None:
    rows = [
        facts(1, outcome=Outcome.APPROVED, determined_after=timedelta(0), first_pass=True),
        facts(2, outcome=Outcome.APPROVED, determined_after=timedelta(hours=30)),
        facts(3, outcome=Outcome.DENIED, determined_after=timedelta(hours=5), specialty="Cardiology"),
        facts(4, due_in=timedelta(days=1)),  # open: not counted
    ]
    (sleep, cardio) = first_pass_rates(rows, 2025, "specialty")
    assert (sleep.value, sleep.first_pass_approved, sleep.determined, sleep.percent) == (
        "Sleep Medicine",
        1,
        2,
        50.0,
    )
    assert (cardio.first_pass_approved, cardio.determined) == (0, 1)
    assert [f.submission_id for f in select(rows, sleep.drill_hits, NOW)] == ["s1"]
    assert [f.submission_id for f in select(rows, sleep.drill, NOW)] == ["s1", "s2"]
    assert first_pass_rates(rows, 2024, "specialty") == []


def test_turnaround_distribution_exposure_and_denial_reasons() -> None:
    rows = [
        facts(1, outcome=Outcome.APPROVED, determined_after=timedelta(minutes=10), first_pass=True),
        facts(2, outcome=Outcome.APPROVED, determined_after=timedelta(hours=30)),
        facts(3, outcome=Outcome.DENIED, determined_after=timedelta(hours=5), denial=(("AA", "No therapy"),)),
        facts(4, outcome=Outcome.APPROVED, determined_after=timedelta(hours=2), urgency=Urgency.EXPEDITED),
        facts(5, due_in=timedelta(hours=-3)),
        facts(6, due_in=timedelta(hours=3), urgency=Urgency.EXPEDITED),
    ]
    standard, expedited = turnaround(rows, 2025)
    assert dict(standard.counts) == {"< 1 h": 1, "1-4 h": 0, "4-24 h": 1, "1-3 d": 1, "3-7 d": 0, "> 7 d": 0}
    assert standard.median_hours == 5.0 and standard.p90_hours == 30.0
    assert dict(expedited.counts)["1-4 h"] == 1
    flags = {(e.aging, e.urgency.value): e.count for e in exposure(rows, NOW)}
    assert flags[("overdue", "standard")] == 1 and flags[("due-soon", "expedited")] == 1
    assert sum(flags.values()) == 2
    assert denial_reasons(rows, 2025) == [("AA", "No therapy", 1)]


def test_stale_rules_are_those_past_their_review_interval() -> None:
    rules = [
        ("a", "A", date(2025, 1, 1), 365, ("72148", "72149")),
        ("b", "B", date(2025, 6, 1), 365, ("E0601",)),
        ("c", "C", date(2024, 1, 1), 90, ("27447",)),
    ]
    stale = stale_rules(rules, date(2026, 3, 1))
    assert [(r.rule_id, r.days_overdue) for r in stale] == [("c", 700), ("a", 59)]
    rows = [
        facts(1, code="72149", due_in=timedelta(days=1)),
        facts(2, code="E0601", due_in=timedelta(days=1)),
    ]
    assert [f.submission_id for f in select(rows, stale[1].drill, NOW)] == ["s1"]


def test_bar_chart_svg_links_each_bar_and_escapes_labels() -> None:
    svg = bar_chart_svg("T<1>", [("< 1 h", 3, "/ops/requests?a=1&b=2"), ("x", 0, "/y")])
    assert svg.count("<a href=") == 2 and "&lt; 1 h" in svg and "a=1&amp;b=2" in svg
    assert "<title" in svg and 'role="img"' in svg


def test_roles() -> None:
    assert allowed("clinician-reviewer", Permission.DENY)
    assert not allowed("reviewer", Permission.DENY)
    assert not allowed("manager", Permission.DECIDE) and allowed("manager", Permission.ASSIGN)
    assert allowed("reviewer", Permission.TAKE) and not allowed("reviewer", Permission.ASSIGN)
    assert not allowed("unknown-role", Permission.DECIDE)
    assert Role.CLINICIAN_REVIEWER.label == "Clinician reviewer"


def test_passwords_are_argon2id_and_verify_only_the_right_one() -> None:
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "wrong")
    assert not passwords.verify(None, "anything")  # unknown user: same work, no match
    assert not passwords.verify("not-a-hash", "x")
    assert same_token("abc", "abc") and not same_token("abc", "abd") and not same_token(None, "")


def test_review_clocks_per_line_of_business() -> None:
    clocks = clocks_from({"QHP": {"standard_days": 15}, "*": {"expedited_hours": 24}})
    assert clocks.for_line("QHP").standard == timedelta(days=15)
    assert clocks.for_line("QHP").expedited == timedelta(hours=72)
    assert clocks.for_line("HMO").expedited == timedelta(hours=24)
    assert clocks.for_line(None).standard == timedelta(days=7)
    with pytest.raises(ValueError):
        clocks_from({"QHP": {"standard_hours": 5}})
