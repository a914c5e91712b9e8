"""Operations dashboard figures: pure aggregations over :class:`RequestFacts` and coverage rules, and
server-rendered SVG bar charts. Every figure carries the filter that lists the requests behind it."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape

from server.pas.codes import Urgency

from .facts import RequestFacts
from .filters import TURNAROUND_BUCKETS, RequestFilter, bucket_of
from .metrics import in_year


@dataclass(frozen=True)
class RateRow:
    value: str
    first_pass_approved: int
    determined: int
    drill: RequestFilter  # the determined requests of this row
    drill_hits: RequestFilter  # the first-pass approvals of this row

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.first_pass_approved / self.determined, 1) if self.determined else None


@dataclass(frozen=True)
class Distribution:
    urgency: Urgency
    counts: tuple[tuple[str, int], ...]  # (bucket label, requests)
    mean_hours: float | None
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class Exposure:
    aging: str  # overdue | due-soon | on-time
    urgency: Urgency
    count: int


@dataclass(frozen=True)
class StaleRule:
    rule_id: str
    title: str
    last_reviewed: date
    due_for_review: date
    days_overdue: int
    codes: tuple[str, ...] = ()  # the rule's procedure codes: the drill-down to requests it decided

    @property
    def drill(self) -> RequestFilter:
        return RequestFilter(procedure=",".join(self.codes))


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def determined_in(facts: Iterable[RequestFacts], year: int) -> list[RequestFacts]:
    return [f for f in facts if f.determined_at is not None and in_year(_utc(f.determined_at), year)]


DIMENSIONS: dict[str, Callable[[RequestFacts], Sequence[str]]] = {
    "specialty": lambda f: (f.specialty,),
    "payer": lambda f: (f.payer,),
    "procedure": lambda f: tuple(dict.fromkeys(p.code for p in f.procedures)),
    "site": lambda f: (f.site,),
}


def first_pass_rates(facts: Iterable[RequestFacts], year: int, dimension: str) -> list[RateRow]:
    """First-pass approval rate (approved at submission, without a reviewer) per value of a dimension,
    over the requests determined in ``year``; highest volume first."""
    key = DIMENSIONS[dimension]
    totals: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for f in determined_in(facts, year):
        for value in key(f):
            totals[value] += 1
            if f.first_pass and f.outcome.approved:
                hits[value] += 1
    rows = []
    for value, total in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        base = RequestFilter(year=str(year), **{dimension: value})
        rows.append(
            RateRow(value, hits[value], total, base, RequestFilter(**{**base.__dict__, "first_pass": "yes"}))
        )
    return rows


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return round(ordered[rank], 2)


def turnaround(facts: Iterable[RequestFacts], year: int) -> list[Distribution]:
    """Submission-to-determination time per urgency: bucket counts, mean, median and 90th percentile."""
    out = []
    done = determined_in(facts, year)
    for urgency in (Urgency.STANDARD, Urgency.EXPEDITED):
        times = [
            f.determined_at - f.received_at
            for f in done
            if f.urgency is urgency and f.determined_at is not None
        ]
        counts = Counter(bucket_of(t) for t in times)
        hours = [t.total_seconds() / 3600 for t in times]
        out.append(
            Distribution(
                urgency,
                tuple((label, counts[label]) for label, _, _ in TURNAROUND_BUCKETS),
                round(statistics.fmean(hours), 2) if hours else None,
                round(statistics.median(hours), 2) if hours else None,
                _percentile(hours, 0.9),
            )
        )
    return out


def exposure(facts: Iterable[RequestFacts], now: datetime) -> list[Exposure]:
    """Open requests by aging flag and urgency (the aged-request exposure)."""
    counts: Counter[tuple[str, Urgency]] = Counter()
    for f in facts:
        if f.is_open:
            counts[(f.aging(now), f.urgency)] += 1
    return [
        Exposure(aging, urgency, counts[(aging, urgency)])
        for aging in ("overdue", "due-soon", "on-time")
        for urgency in (Urgency.EXPEDITED, Urgency.STANDARD)
    ]


def denial_reasons(facts: Iterable[RequestFacts], year: int) -> list[tuple[str, str, int]]:
    """(X12 886 code, an example reason text, requests) for denied items in ``year``, most frequent first."""
    counts: Counter[str] = Counter()
    texts: dict[str, str] = defaultdict(str)
    for f in determined_in(facts, year):
        for code in dict.fromkeys(c for c, _ in f.denial_reasons):
            counts[code] += 1
        for code, text in f.denial_reasons:
            texts[code] = texts[code] or text
    return [(code, texts[code], n) for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def stale_rules(
    rules: Iterable[tuple[str, str, date, int, tuple[str, ...]]],
    today: date,
    *,
    horizon: timedelta = timedelta(0),
) -> list[StaleRule]:
    """Rules (id, title, last reviewed, review every N days, codes) whose review is due by
    ``today + horizon``."""
    out = []
    for rule_id, title, last_reviewed, every, codes in rules:
        due = last_reviewed + timedelta(days=every)
        if due <= today + horizon:
            out.append(StaleRule(rule_id, title, last_reviewed, due, (today - due).days, codes))
    return sorted(out, key=lambda r: (r.due_for_review, r.rule_id))


def bar_chart_svg(
    title: str, bars: Sequence[tuple[str, int, str]], *, width: int = 420, bar_height: int = 22
) -> str:
    """A horizontal bar chart as inline SVG; each bar (label, value, link) links to its requests."""
    label_width = 90
    top = 8
    height = top + len(bars) * (bar_height + 6) + 8
    peak = max((v for _, v, _ in bars), default=0) or 1
    span = width - label_width - 50
    ident = "chart-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{ident}">',
        f'<title id="{ident}">{escape(title)}</title>',
    ]
    for n, (label, value, link) in enumerate(bars):
        y = top + n * (bar_height + 6)
        length = round(span * value / peak)
        parts.append(f'<a href="{escape(link)}"><g>')
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.7:.0f}" text-anchor="end" '
            f'font-size="12">{escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{max(length, 1)}" height="{bar_height}" '
            f'class="bar"><title>{escape(label)}: {value}</title></rect>'
        )
        parts.append(
            f'<text x="{label_width + max(length, 1) + 4}" y="{y + bar_height * 0.7:.0f}" '
            f'font-size="12">{value}</text>'
        )
        parts.append("</g></a>")
    parts.append("</svg>")
    return "".join(parts)
