"""The nine CMS-0057-F items computed exactly from decision records."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.ops.metrics import (
    AppealResult,
    DecisionRecord,
    Outcome,
    PaService,
    cms0057_report,
    report_csv,
    report_json,
)
from server.pas.codes import Urgency

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
STD, EXP = Urgency.STANDARD, Urgency.EXPEDITED


def rec(
    n: int,
    urgency: Urgency,
    outcome: Outcome,
    hours: float | None,
    *,
    start: datetime = T0,
    extended: bool = False,
    appeal: AppealResult | None = None,
    appeal_at: datetime | None = None,
) -> DecisionRecord:
    decided = start + timedelta(hours=hours) if hours is not None else None
    return DecisionRecord(f"s{n}", urgency, start, decided, outcome, extended, appeal, appeal_at)


RECORDS = [
    rec(1, STD, Outcome.APPROVED, 0),  # first-pass approval
    rec(2, STD, Outcome.APPROVED, 48, extended=True),
    rec(3, STD, Outcome.PARTIAL, 100),
    rec(4, STD, Outcome.DENIED, 24, appeal=AppealResult.APPROVED, appeal_at=datetime(2025, 5, 1, tzinfo=UTC)),
    rec(5, STD, Outcome.DENIED, 30, appeal=AppealResult.UPHELD, appeal_at=datetime(2025, 6, 1, tzinfo=UTC)),
    rec(6, EXP, Outcome.APPROVED, 2),
    rec(7, EXP, Outcome.DENIED, 10, extended=True),
    rec(8, EXP, Outcome.APPROVED, 6, extended=True),
    # not in 2025: still pended, cancelled, and determined in 2024 / 2026
    rec(9, STD, Outcome.PENDED, None),
    rec(10, STD, Outcome.CANCELLED, 5),
    rec(11, STD, Outcome.APPROVED, 1, start=datetime(2024, 6, 1, tzinfo=UTC)),
    rec(12, EXP, Outcome.DENIED, 72, start=datetime(2025, 12, 30, 12, tzinfo=UTC)),  # decided 2026-01-02
]


def test_the_nine_items_for_a_year() -> None:
    services = [
        PaService("mri", "MRI", (("http://www.ama-assn.org/go/cpt", "72148", "MRI lumbar"),)),
        PaService("drug", "A drug", (("http://hl7.org/fhir/sid/ndc", "0002-1433-80", "x"),)),
    ]
    report = cms0057_report(RECORDS, 2025, services)
    assert [s.rule_id for s in report.services] == ["mri"]  # drugs are excluded
    assert (report.standard_approved.numerator, report.standard_approved.denominator) == (3, 5)
    assert report.standard_approved.percent == 60.0
    assert (report.standard_denied.numerator, report.standard_denied.denominator) == (2, 5)
    assert (
        report.standard_approved_after_appeal.numerator,
        report.standard_approved_after_appeal.denominator,
    ) == (
        1,
        2,
    )
    # extended and approved over all requests determined in the year (standard 5 + expedited 3)
    assert (report.extended_and_approved.numerator, report.extended_and_approved.denominator) == (2, 8)
    assert report.extended_and_approved.percent == 25.0
    assert (report.expedited_approved.numerator, report.expedited_approved.denominator) == (2, 3)
    assert report.expedited_approved.percent == 66.67
    assert (report.expedited_denied.numerator, report.expedited_denied.denominator) == (1, 3)
    assert report.standard_time.count == 5
    assert report.standard_time.mean_hours == pytest.approx((0 + 48 + 100 + 24 + 30) / 5)
    assert report.standard_time.median_hours == 30.0
    assert (report.expedited_time.mean_hours, report.expedited_time.median_hours) == (6.0, 6.0)


def test_the_year_is_the_utc_calendar_year() -> None:
    late = datetime(2025, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 2026-01-01 01:00 UTC
    record = DecisionRecord("x", STD, late - timedelta(hours=1), late, Outcome.APPROVED)
    assert cms0057_report([record], 2025).standard_approved.denominator == 0
    assert cms0057_report([record], 2026).standard_approved.denominator == 1


def test_an_empty_year_has_no_percentages() -> None:
    report = cms0057_report([], 2025)
    assert report.standard_approved.percent is None
    assert report.standard_time.mean_hours is None and report.standard_time.count == 0


def test_json_lists_exactly_nine_items_with_definitions() -> None:
    body = report_json(cms0057_report(RECORDS, 2025), payer="Demo")
    assert [i["item"] for i in body["items"]] == list(range(1, 10))
    assert all(i["definition"] for i in body["items"])
    assert body["items"][1]["percent"] == 60.0 and body["items"][7]["medianHours"] == 30.0


def test_csv_has_a_row_per_figure() -> None:
    text = report_csv(
        cms0057_report(RECORDS, 2025, [PaService("mri", "MRI", (("cpt", "72148", "MRI lumbar"),))])
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["item"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7", "8", "8", "9", "9"]
    assert rows[0]["code"] == "72148"
    assert rows[1]["value"] == "60.00" and rows[1]["numerator"] == "3" and rows[1]["denominator"] == "5"
    assert rows[7]["unit"] == "hours" and rows[8]["value"] == "30.00"
    assert text.endswith("\r\n")
