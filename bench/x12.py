"""X12 bridge throughput on one core: Bundle -> 278 and 278 -> Bundle per second, beside pyx12 4.0.

pyx12 ships no 005010X217 map, so it is timed on the same 278 request relabelled as 004010X094A1 (same
size, same segments; its 4010 map walks and validates it, reporting the 5010 loop differences as errors),
with its XML maps memoised as they would be in a long-running process, and on its raw tokenizer.
Run: .venv/bin/python bench/x12.py
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import Figure, Report, percentiles  # noqa: E402

from x12 import (  # noqa: E402
    ControlNumbers,
    bundle_to_278_request,
    parse_interchange,
    read_authorization,
    response_278_to_bundle,
)

GOLDEN = ROOT / "tests" / "x12" / "golden"
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


class Rate(float):
    """Calls per CPU second, carrying the per-call wall-clock p50/p99 in milliseconds."""

    p50_ms: float
    p99_ms: float


def rate(fn: Callable[[], Any], seconds: float = 1.0) -> Rate:
    """Calls per CPU second over about ``seconds`` of this process's CPU time (after a warm-up call).

    CPU time rather than wall time, so other load on a shared machine does not count against us.
    """
    fn()
    n = 0
    samples: list[float] = []
    clock = time.perf_counter
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(20):
            began = clock()
            fn()
            samples.append(clock() - began)
        n += 20
        now = time.process_time()
        if now >= deadline:
            result = Rate(n / (now - start))
            result.p50_ms, result.p99_ms = percentiles(samples)
            return result


def pyx12_rates(text: str) -> tuple[Rate | None, Rate | None, str]:
    try:
        import pyx12.map_if
        import pyx12.params
        import pyx12.x12file
        import pyx12.x12n_document
    except ImportError:
        return None, None, "pyx12 not installed"
    logging.disable(logging.CRITICAL)
    original = pyx12.map_if.load_map_file
    pyx12.map_if.load_map_file = functools.cache(original)  # type: ignore[assignment]
    param = pyx12.params.params()
    as_4010 = text.replace("*^*00501*", "*U*00401*").replace("005010X217", "004010X094A1")

    def validate() -> None:
        pyx12.x12n_document.x12n_document(param, io.StringIO(as_4010), io.StringIO(), None)

    def tokenize() -> None:
        for _ in pyx12.x12file.X12Reader(io.StringIO(text)):
            pass

    try:
        return rate(validate), rate(tokenize), "ok"
    finally:
        pyx12.map_if.load_map_file = original  # type: ignore[assignment]
        logging.disable(logging.NOTSET)


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    scenario = GOLDEN / "approval"
    bundle = json.loads((scenario / "request.json").read_text("utf-8"), parse_float=Decimal)
    request_278 = (scenario / "request.x12").read_text("utf-8")
    response_278 = (scenario / "response.x12").read_text("utf-8")
    control = ControlNumbers(1, 1, 1)

    def parse_request() -> None:
        tx = parse_interchange(request_278).transactions[0]
        read_authorization(tx.segments, tx.implementation)

    to_278 = rate(lambda: bundle_to_278_request(bundle, control=control, now=NOW))
    from_278 = rate(lambda: response_278_to_bundle(response_278, bundle, now=NOW))
    parse = rate(parse_request)
    pyx12_validate, pyx12_tokenize, status = pyx12_rates(request_278)
    segments = request_278.count("~")
    python = sys.version.split()[0]
    report = Report(
        "x12",
        f"one core, CPU time, {len(request_278)}-byte 278 ({segments} segments), Python {python}; baseline: "
        "pyx12 4.0 x12n_document (maps cached) on the same 278 relabelled 004010X094A1",
    )
    if pyx12_validate is None or pyx12_tokenize is None:
        report.note(f"pyx12: {status}; no baseline, nothing reported")
        report.finish()
        return 1
    base = "pyx12 parse+validate, same 278"
    for label, value in (
        ("Bundle -> 278 request", to_278),
        ("278 response -> PAS Bundle", from_278),
        ("278 parse to typed model", parse),
    ):
        report.add(
            Figure(
                label,
                "/s",
                value,
                base,
                pyx12_validate,
                value.p50_ms,
                value.p99_ms,
                pyx12_validate.p50_ms,
                pyx12_validate.p99_ms,
            )
        )
    report.add(
        Figure(
            "278 parse to typed model",
            "/s",
            parse,
            "pyx12 X12Reader tokenize only",
            pyx12_tokenize,
            parse.p50_ms,
            parse.p99_ms,
            pyx12_tokenize.p50_ms,
            pyx12_tokenize.p99_ms,
        )
    )
    target = 2000
    worst = min(to_278, from_278)
    verdict = "met" if worst >= target else "NOT met"
    report.note(f"aim >= {target:,} translations/s per core: {verdict} (slower direction {worst:,.0f}/s)")
    report.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
