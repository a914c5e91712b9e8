"""The public CMS-0057-F metrics over stored requests: first computation (every request parsed) and
later ones (parsed copies reused while the rows are unchanged), beside a baseline measured in the same
run: reading the same rows' Bundles and decisions from the database without parsing them.

    .venv/bin/python bench/ops_metrics.py [--requests 300] [--repeat 5]

Seeds a temporary SQLite database through ``PasService.submit`` (one item per request, half pended and
decided by a reviewer), then reports each timing (median of ``--repeat`` runs) beside the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import Figure, Report  # noqa: E402

from server.app import create_app  # noqa: E402
from server.ops.auth import Role  # noqa: E402
from server.ops.demo import CPT, SITES, request_bundle  # noqa: E402
from server.ops.service import OpsService, Staff  # noqa: E402
from server.pas.review import ReviewerAction, ReviewerDecision  # noqa: E402
from server.pas.versions import PasVersion  # noqa: E402
from server.security.config import SecuritySettings
from server.settings import Settings  # noqa: E402


def seed(ops: OpsService, count: int) -> None:
    start = datetime(2025, 1, 2, 9, tzinfo=UTC)
    reviewer = Staff("bench", "Bench Reviewer", Role.REVIEWER)
    for n in range(count):
        at = start + timedelta(hours=7 * n)
        clocked = replace(
            ops, now=lambda at=at: at, pas=replace(ops.pas, now=lambda at=at: at, validate=None)
        )
        code = (CPT, "72148", "73") if n % 2 else (CPT, "99213", "1")
        clocked.pas.submit(PasVersion.V2_2_1, request_bundle(f"BENCH-{n}", site=SITES[n % 4], codes=(code,)))
    for f in ops.facts(open_only=True):
        later = f.received_at + timedelta(hours=20)
        clocked = replace(
            ops, now=lambda t=later: t, pas=replace(ops.pas, now=lambda t=later: t, validate=None)
        )
        clocked.decide(reviewer, f.submission_id, [ReviewerDecision(1, ReviewerAction.APPROVE)])


def timed(run: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", demo_content=False, ig_path=Path(tmp))
        app = create_app(settings, prepare_database=True, security=SecuritySettings(auth_mode="off"))
        ops = app.state.ops
        assert isinstance(ops, OpsService)
        seed(ops, args.requests)
        ids = [(r.tenant, r.submission_id) for r in ops.store.requests()]
        baseline = timed(lambda: ops.store.bodies(ids), args.repeat)
        fresh = [replace(ops, _parsed_cache={}) for _ in range(args.repeat)]
        cold_samples = []
        for service in fresh:
            started = time.perf_counter()
            service.cms_report(2025)
            cold_samples.append(time.perf_counter() - started)
        cold = statistics.median(cold_samples)
        warm = timed(lambda: ops.cms_report(2025), args.repeat)
        report = ops.cms_report(2025)
        app.state.services.engine.dispose()
    out = Report(
        "ops_metrics",
        f"CMS-0057-F metrics over {len(ids)} stored requests, sqlite, median of {args.repeat} runs; "
        "baseline: reading the same rows' Bundles and decisions without parsing",
    )
    base = "read the same rows, no parsing"
    out.add(Figure("metrics, first computation", "ms", cold * 1000, base, baseline * 1000))
    out.add(Figure("metrics, parsed copies reused", "ms", warm * 1000, base, baseline * 1000))
    out.note(f"standard requests determined in 2025: {report.standard_approved.denominator}")
    out.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
