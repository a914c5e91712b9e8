"""Filters over :class:`RequestFacts`: the work-queue filters, and every dashboard drill-down (each figure
links to the requests behind it as a query string of these fields)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Final

from .facts import RequestFacts
from .metrics import in_year

# Turnaround buckets of the dashboard's distribution plots: (label, lower bound, upper bound) in hours.
TURNAROUND_BUCKETS: Final[tuple[tuple[str, float, float], ...]] = (
    ("< 1 h", 0, 1),
    ("1-4 h", 1, 4),
    ("4-24 h", 4, 24),
    ("1-3 d", 24, 72),
    ("3-7 d", 72, 168),
    ("> 7 d", 168, float("inf")),
)


def bucket_of(turnaround: timedelta) -> str:
    hours = turnaround.total_seconds() / 3600
    for label, low, high in TURNAROUND_BUCKETS:
        if low <= hours < high:
            return label
    return TURNAROUND_BUCKETS[-1][0]


@dataclass(frozen=True)
class RequestFilter:
    """Every field is optional; a set field must match exactly."""

    payer: str = ""
    line: str = ""  # line of business
    specialty: str = ""
    category: str = ""  # service category
    site: str = ""  # submitting organization or site
    urgency: str = ""  # standard | expedited
    assignee: str = ""  # a username, or "-" for unassigned
    procedure: str = ""  # a procedure code on any item (or several, comma-separated: any of them)
    status: str = ""  # open (undecided) | a review or request status
    outcome: str = ""  # approved | partially-approved | denied | pended | cancelled
    first_pass: str = ""  # "yes": determined without a reviewer; "no": determined after review
    aging: str = ""  # overdue | due-soon | on-time
    denial: str = ""  # X12 886 reason code
    turnaround: str = ""  # a TURNAROUND_BUCKETS label
    year: str = ""  # calendar year of the determination
    tenant: str = ""  # the client organization (tenant) the request is stored in

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RequestFilter:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v.strip() for k, v in query.items() if k in names and isinstance(v, str)})

    def query_items(self) -> list[tuple[str, str]]:
        return [(f.name, value) for f in fields(self) if (value := getattr(self, f.name))]

    def matches(self, facts: RequestFacts, now: datetime) -> bool:
        checks: list[tuple[str, str]] = [
            (self.payer, facts.payer),
            (self.line, facts.line_of_business),
            (self.specialty, facts.specialty),
            (self.category, facts.service_category),
            (self.site, facts.site),
            (self.urgency, facts.urgency.value),
            (self.outcome, facts.outcome.value),
            (self.aging, facts.aging(now)),
            (self.tenant, facts.tenant),
        ]
        if any(wanted and wanted != actual for wanted, actual in checks):
            return False
        if self.assignee and (facts.assignee or "-") != self.assignee:
            return False
        if self.procedure and not set(self.procedure.split(",")) & {p.code for p in facts.procedures}:
            return False
        if self.status == "open":
            if not facts.is_open:
                return False
        elif self.status and self.status != facts.status:
            return False
        if self.first_pass:
            if facts.determined_at is None or facts.first_pass != (self.first_pass == "yes"):
                return False
        if self.denial and self.denial not in {code for code, _ in facts.denial_reasons}:
            return False
        if self.turnaround:
            if (
                facts.determined_at is None
                or bucket_of(facts.determined_at - facts.received_at) != self.turnaround
            ):
                return False
        if self.year:
            if not self.year.isdigit() or not in_year(_utc(facts.determined_at), int(self.year)):
                return False
        return True


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def select(facts: Iterable[RequestFacts], wanted: RequestFilter, now: datetime) -> list[RequestFacts]:
    return [f for f in facts if wanted.matches(f, now)]


def by_time_left(facts: Iterable[RequestFacts]) -> list[RequestFacts]:
    """The work queue's order: least time left to the regulatory deadline first (overdue at the top)."""
    return sorted(
        facts,
        key=lambda f: (f.due_at is None, f.due_at.timestamp() if f.due_at else 0.0, f.submission_id),
    )


def choices(facts: Iterable[RequestFacts]) -> dict[str, list[str]]:
    """The values present for each select-box filter."""
    seen: dict[str, set[str]] = {
        k: set() for k in ("payer", "line", "specialty", "category", "site", "urgency", "assignee", "tenant")
    }
    for f in facts:
        seen["payer"].add(f.payer)
        seen["line"].add(f.line_of_business)
        seen["specialty"].add(f.specialty)
        seen["category"].add(f.service_category)
        seen["site"].add(f.site)
        seen["urgency"].add(f.urgency.value)
        if f.tenant:
            seen["tenant"].add(f.tenant)
        if f.assignee:
            seen["assignee"].add(f.assignee)
    return {k: sorted(v) for k, v in seen.items()}


def most_recent_first(facts: Iterable[RequestFacts]) -> list[RequestFacts]:
    return sorted(facts, key=lambda f: (f.received_at, f.submission_id), reverse=True)
