"""CMS-0057-F public prior-authorization metrics: pure functions over decision records.

The rule (42 CFR 422.122 for Medicare Advantage, parallel sections for Medicaid, CHIP and QHPs) asks
impacted payers to post, for the previous calendar year and aggregated for all items and services
(excluding drugs), exactly these nine items:

1. the list of all items and services that require prior authorization;
2. the percentage of standard requests approved;
3. the percentage of standard requests denied;
4. the percentage of standard requests approved after appeal;
5. the percentage of requests whose review timeframe was extended and that were approved;
6. the percentage of expedited requests approved;
7. the percentage of expedited requests denied;
8. the average and median time from submission to determination, standard requests;
9. the average and median time from submission to decision, expedited requests.

Posted reports differ on denominators and clock starts, so each figure here carries its numerator,
denominator and a one-line definition (:data:`DEFINITIONS`), and every input is a stored record.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from server.pas.codes import Urgency

# Code systems of drugs, which the rule leaves out of the metrics and of the list of items and services;
# HCPCS Level II J codes (drugs administered other than orally) are drugs as well.
DRUG_CODE_SYSTEMS: Final = frozenset(
    {
        "http://hl7.org/fhir/sid/ndc",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
    }
)
HCPCS_SYSTEMS: Final = frozenset(
    {"https://bluebutton.cms.gov/resources/codesystem/hcpcs", "urn:oid:2.16.840.1.113883.6.285"}
)


def is_drug(system: str, code: str) -> bool:
    return system in DRUG_CODE_SYSTEMS or (system in HCPCS_SYSTEMS and code.upper().startswith("J"))


class Outcome(StrEnum):
    """A request's determination, over its items (cancelled items left out)."""

    APPROVED = "approved"  # every decided item certified (A1) or modified (A6)
    PARTIAL = "partially-approved"  # some items certified or modified, some not certified (A3)
    DENIED = "denied"  # every decided item not certified (A3)
    PENDED = "pended"  # no determination yet
    CANCELLED = "cancelled"  # withdrawn before a determination

    @property
    def approved(self) -> bool:
        """Counted as approved by the public metrics (a partial approval approves something)."""
        return self in (Outcome.APPROVED, Outcome.PARTIAL)


class AppealResult(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # the denial was overturned
    UPHELD = "upheld"


@dataclass(frozen=True)
class DecisionRecord:
    """What the metrics need from one stored request."""

    submission_id: str
    urgency: Urgency
    received_at: datetime  # submission: the $submit (or 278) that created the request
    determined_at: datetime | None  # the final determination, None while pended
    outcome: Outcome
    extended: bool = False  # the review timeframe was extended (with a recorded reason)
    appeal: AppealResult | None = None
    appeal_decided_at: datetime | None = None

    @property
    def turnaround(self) -> timedelta | None:
        if self.determined_at is None:
            return None
        return self.determined_at - self.received_at


@dataclass(frozen=True)
class PaService:
    """One item or service on the prior-authorization list (item 1)."""

    rule_id: str
    title: str
    codes: tuple[tuple[str, str, str], ...]  # (system, code, display)


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def percent(self) -> float | None:
        if self.denominator == 0:
            return None
        return round(100.0 * self.numerator / self.denominator, 2)


@dataclass(frozen=True)
class Elapsed:
    """Average and median elapsed time, in hours (rounded to 0.01 h)."""

    count: int
    mean_hours: float | None
    median_hours: float | None


@dataclass(frozen=True)
class Cms0057Report:
    year: int
    services: tuple[PaService, ...]
    standard_approved: Ratio
    standard_denied: Ratio
    standard_approved_after_appeal: Ratio
    extended_and_approved: Ratio
    expedited_approved: Ratio
    expedited_denied: Ratio
    standard_time: Elapsed
    expedited_time: Elapsed


DEFINITIONS: Final[dict[int, tuple[str, str]]] = {
    1: (
        "Items and services that require prior authorization",
        "Coverage rules in effect during the year whose default answer is 'auth-needed', drugs excluded",
    ),
    2: (
        "Standard requests approved (%)",
        "Standard requests determined in the year and approved in full or in part, "
        "over all standard requests determined in the year",
    ),
    3: (
        "Standard requests denied (%)",
        "Standard requests determined in the year with every item denied, "
        "over all standard requests determined in the year",
    ),
    4: (
        "Standard requests approved after appeal (%)",
        "Standard requests whose appeal was decided in the year and overturned the denial, "
        "over standard requests whose appeal was decided in the year",
    ),
    5: (
        "Requests with an extended review timeframe that were approved (%)",
        "Requests (standard and expedited) determined in the year whose due time was extended and that "
        "were approved in full or in part, over all requests determined in the year",
    ),
    6: (
        "Expedited requests approved (%)",
        "Expedited requests determined in the year and approved in full or in part, "
        "over all expedited requests determined in the year",
    ),
    7: (
        "Expedited requests denied (%)",
        "Expedited requests determined in the year with every item denied, "
        "over all expedited requests determined in the year",
    ),
    8: (
        "Time from submission to determination, standard requests (hours)",
        "Average and median of (determination time - submission receipt time) over standard requests "
        "determined in the year",
    ),
    9: (
        "Time from submission to decision, expedited requests (hours)",
        "Average and median of (decision time - submission receipt time) over expedited requests "
        "determined in the year",
    ),
}


def in_year(moment: datetime | None, year: int) -> bool:
    """Calendar years are UTC calendar years."""
    return moment is not None and moment.year == year and moment.utcoffset() == timedelta(0)


def determined_in(records: Iterable[DecisionRecord], year: int) -> list[DecisionRecord]:
    """The requests with a final determination (approved, partly approved or denied) in ``year``."""
    return [
        r
        for r in records
        if r.outcome in (Outcome.APPROVED, Outcome.PARTIAL, Outcome.DENIED) and in_year(r.determined_at, year)
    ]


def _ratio(population: Sequence[DecisionRecord], hit: Any) -> Ratio:
    return Ratio(sum(1 for r in population if hit(r)), len(population))


def _elapsed(population: Sequence[DecisionRecord]) -> Elapsed:
    hours = [t.total_seconds() / 3600 for r in population if (t := r.turnaround) is not None]
    if not hours:
        return Elapsed(0, None, None)
    return Elapsed(len(hours), round(statistics.fmean(hours), 2), round(statistics.median(hours), 2))


def cms0057_report(
    records: Iterable[DecisionRecord], year: int, services: Iterable[PaService] = ()
) -> Cms0057Report:
    """The nine CMS-0057-F items for calendar ``year`` (UTC), from stored decision records."""
    everything = [_normalized(r) for r in records]
    determined = determined_in(everything, year)
    standard = [r for r in determined if r.urgency is Urgency.STANDARD]
    expedited = [r for r in determined if r.urgency is Urgency.EXPEDITED]
    appealed = [
        r
        for r in everything
        if r.urgency is Urgency.STANDARD
        and r.appeal in (AppealResult.APPROVED, AppealResult.UPHELD)
        and in_year(r.appeal_decided_at, year)
    ]
    listed = tuple(
        s
        for s in (
            PaService(s.rule_id, s.title, tuple(c for c in s.codes if not is_drug(c[0], c[1])))
            for s in services
        )
        if s.codes
    )
    return Cms0057Report(
        year=year,
        services=listed,
        standard_approved=_ratio(standard, lambda r: r.outcome.approved),
        standard_denied=_ratio(standard, lambda r: r.outcome is Outcome.DENIED),
        standard_approved_after_appeal=_ratio(appealed, lambda r: r.appeal is AppealResult.APPROVED),
        extended_and_approved=_ratio(determined, lambda r: r.extended and r.outcome.approved),
        expedited_approved=_ratio(expedited, lambda r: r.outcome.approved),
        expedited_denied=_ratio(expedited, lambda r: r.outcome is Outcome.DENIED),
        standard_time=_elapsed(standard),
        expedited_time=_elapsed(expedited),
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("decision times must be timezone-aware")
    return moment.astimezone(UTC)


def _normalized(record: DecisionRecord) -> DecisionRecord:
    """Every time in UTC, so the calendar year is the UTC year."""
    return replace(
        record,
        received_at=_utc(record.received_at),
        determined_at=_utc(record.determined_at) if record.determined_at else None,
        appeal_decided_at=_utc(record.appeal_decided_at) if record.appeal_decided_at else None,
    )


def _ratio_json(number: int, ratio: Ratio) -> dict[str, Any]:
    name, definition = DEFINITIONS[number]
    return {
        "item": number,
        "metric": name,
        "definition": definition,
        "numerator": ratio.numerator,
        "denominator": ratio.denominator,
        "percent": ratio.percent,
    }


def _elapsed_json(number: int, elapsed: Elapsed) -> dict[str, Any]:
    name, definition = DEFINITIONS[number]
    return {
        "item": number,
        "metric": name,
        "definition": definition,
        "count": elapsed.count,
        "meanHours": elapsed.mean_hours,
        "medianHours": elapsed.median_hours,
    }


def report_items(report: Cms0057Report) -> list[dict[str, Any]]:
    """The nine items, in the rule's order, as JSON objects."""
    name, definition = DEFINITIONS[1]
    return [
        {
            "item": 1,
            "metric": name,
            "definition": definition,
            "services": [
                {
                    "rule": s.rule_id,
                    "title": s.title,
                    "codes": [{"system": c[0], "code": c[1], "display": c[2]} for c in s.codes],
                }
                for s in report.services
            ],
        },
        _ratio_json(2, report.standard_approved),
        _ratio_json(3, report.standard_denied),
        _ratio_json(4, report.standard_approved_after_appeal),
        _ratio_json(5, report.extended_and_approved),
        _ratio_json(6, report.expedited_approved),
        _ratio_json(7, report.expedited_denied),
        _elapsed_json(8, report.standard_time),
        _elapsed_json(9, report.expedited_time),
    ]


def report_json(report: Cms0057Report, *, payer: str) -> dict[str, Any]:
    return {
        "rule": "CMS-0057-F",
        "payer": payer,
        "calendarYear": report.year,
        "scope": "All items and services, excluding drugs; calendar year in UTC",
        "items": report_items(report),
    }


CSV_HEADER: Final = ("item", "metric", "numerator", "denominator", "value", "unit", "code_system", "code")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def report_csv(report: Cms0057Report) -> str:
    """One row per figure (and one per listed code for item 1), RFC 4180 with CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for service in report.services:
        for system, code, display in service.codes:
            writer.writerow((1, f"{service.title}: {display}", "", "", "", "", system, code))
    for item in report_items(report)[1:]:
        if "percent" in item:
            writer.writerow(
                (
                    item["item"],
                    item["metric"],
                    item["numerator"],
                    item["denominator"],
                    _number(item["percent"]),
                    "percent",
                    "",
                    "",
                )
            )
        else:
            for key, label in (("meanHours", "average"), ("medianHours", "median")):
                writer.writerow(
                    (
                        item["item"],
                        f"{item['metric']}: {label}",
                        "",
                        item["count"],
                        _number(item[key]),
                        "hours",
                        "",
                        "",
                    )
                )
    return out.getvalue()
