"""Profile validation benchmark: profile loading, a 10-entry PAS request Bundle, a PAS Claim alone.

Baseline in the same run: parsing the same Bundle with ``fhir.resources.R4B`` (structure only, no profiles).
Reads the IG packages from PRIORGATE_IG_PATH. Reports min and median of repeated runs (the minimum is the
least disturbed by other load on the machine), and the CPU time of loading beside its wall-clock time.
"cold memo" clears the memo of context-free invariant results before each run, as for a Bundle whose
identifiers and codings were never seen; "warm" keeps it.

    PRIORGATE_IG_PATH=/path/to/igs .venv/bin/python bench/validate.py
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import Figure, Report

from igs.registry import load_registry
from igs.validator import Validator

PAS = ("hl7.fhir.us.davinci-pas", "2.2.1")
BUNDLE = "example/Bundle-ReferralAuthorizationBundleExample.json"
CLAIM = "example/Claim-ReferralAuthorizationExample.json"
PRELOAD = (
    ("hl7.fhir.us.davinci-pas", "2.2.1"),
    ("hl7.fhir.us.davinci-crd", "2.2.0"),
    ("hl7.fhir.us.davinci-dtr", "2.0.1"),
)
RUNS = 60


def _timed(
    fn: Callable[[], Any], runs: int = RUNS, before: Callable[[], None] | None = None
) -> tuple[float, float, float]:
    """min, median and p99 in milliseconds."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return samples[0] * 1000, statistics.median(samples) * 1000, p99 * 1000


def main() -> int:
    folder = os.environ.get("PRIORGATE_IG_PATH")
    if not folder or not Path(folder).is_dir():
        report = Report("validate", "profile validation")
        report.note("PRIORGATE_IG_PATH is not set; skipped")
        report.finish()
        return 0

    cpu_start = time.process_time()
    start = time.perf_counter()
    registry = load_registry(folder)
    opened = time.perf_counter()
    package = registry.require(*PAS)
    validator = Validator(registry, package=package)
    profiles = [
        entry.url
        for name, version in PRELOAD
        for entry in registry.require(name, version).index()
        if entry.resource_type == "StructureDefinition" and entry.url
    ]
    compiled = validator.preload(profiles)
    preloaded = time.perf_counter()
    examples = dict(package.examples())
    bundle, claim = examples[BUNDLE], examples[CLAIM]
    first = validator.validate(bundle)
    first_done = time.perf_counter()
    cpu_load = time.process_time() - cpu_start

    errors = [i for i in first if i.severity == "error"]
    entries = len(bundle.get("entry", []))
    memo = validator.invariants

    bundle_cold = _timed(lambda: validator.validate(bundle), before=memo.clear_memo)
    bundle_warm = _timed(lambda: validator.validate(bundle))
    claim_cold = _timed(lambda: validator.validate(claim), before=memo.clear_memo)
    claim_warm = _timed(lambda: validator.validate(claim))
    structural = Validator(registry, package=package, invariants=False)
    structural.validate(bundle)
    bundle_structural = _timed(lambda: structural.validate(bundle))

    from fhir.resources.R4B.bundle import Bundle  # noqa: PLC0415 - the baseline is optional

    raw = copy.deepcopy(bundle)
    Bundle.model_validate(raw)
    parse = _timed(lambda: Bundle.model_validate(copy.deepcopy(raw)))
    copying = _timed(lambda: copy.deepcopy(raw))
    parse_only = tuple(max(p - c, 0.001) for p, c in zip(parse, copying, strict=True))

    report = Report(
        "validate",
        f"profile validation of the PAS 2.2.1 request Bundle example ({entries} entries, "
        f"{len(errors)} errors) and its Claim, {RUNS} runs; value is the minimum (least disturbed), "
        "p50 the median; baseline: "
        "fhir.resources R4B parse of the same Bundle (structure only, no profiles)",
    )
    base = "fhir.resources R4B parse, same Bundle"
    for name, timed in (
        ("Bundle, cold invariant memo (min)", bundle_cold),
        ("Bundle, warm (min)", bundle_warm),
        ("Bundle, without FHIRPath (min)", bundle_structural),
        ("Claim alone, cold memo (min)", claim_cold),
        ("Claim alone, warm (min)", claim_warm),
    ):
        report.add(Figure(name, "ms", timed[0], base, parse_only[0], timed[1], timed[2], *parse_only[1:]))
    report.note(f"IG packages: {len(registry.packages)} in {folder}")
    report.note(
        f"profile loading {first_done - start:.2f} s (aim < 2 s; CPU {cpu_load:.2f} s): open registry "
        f"{1000 * (opened - start):.0f} ms, compile {compiled} PAS/CRD/DTR profiles "
        f"{1000 * (preloaded - opened):.0f} ms, first Bundle {1000 * (first_done - preloaded):.0f} ms"
    )
    skipped = sorted(set(memo.skipped.values()))
    report.note(f"invariants not evaluated: {len(memo.skipped)} ({'; '.join(skipped)[:300]})")
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
