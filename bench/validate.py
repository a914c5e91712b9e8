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
) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples) * 1000, statistics.median(samples) * 1000


def main() -> int:
    folder = os.environ.get("PRIORGATE_IG_PATH")
    if not folder or not Path(folder).is_dir():
        print("bench/validate.py: PRIORGATE_IG_PATH is not set; skipped")
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
    parse_only = (max(parse[0] - copying[0], 0.001), max(parse[1] - copying[1], 0.001))

    print(f"IG packages: {len(registry.packages)} in {folder}")
    print(f"open registry (package.json only):            {1000 * (opened - start):8.1f} ms")
    print(f"index + compile {compiled} PAS/CRD/DTR profiles:     {1000 * (preloaded - opened):8.1f} ms")
    print(f"first Bundle validation (bindings, plans):   {1000 * (first_done - preloaded):8.1f} ms")
    print(f"profile loading total:                        {first_done - start:8.2f} s   (aim < 2 s)")
    print(f"profile loading, CPU time of this process:    {cpu_load:8.2f} s")
    print(f"PAS request Bundle ({entries} entries), errors: {len(errors)}")
    print("                                   min ms   median ms")
    print(f"Bundle, cold invariant memo      {bundle_cold[0]:8.2f}   {bundle_cold[1]:8.2f}")
    print(f"Bundle, warm                     {bundle_warm[0]:8.2f}   {bundle_warm[1]:8.2f}   (aim <= 5 ms)")
    print(f"Bundle, without FHIRPath         {bundle_structural[0]:8.2f}   {bundle_structural[1]:8.2f}")
    print(f"Claim alone, cold memo           {claim_cold[0]:8.2f}   {claim_cold[1]:8.2f}")
    print(f"Claim alone, warm                {claim_warm[0]:8.2f}   {claim_warm[1]:8.2f}")
    print(f"fhir.resources R4B parse Bundle  {parse_only[0]:8.2f}   {parse_only[1]:8.2f}")
    print(
        f"ratio validate/parse (min): cold {bundle_cold[0] / parse_only[0]:.1f}x, "
        f"warm {bundle_warm[0] / parse_only[0]:.1f}x"
    )
    skipped = sorted(set(memo.skipped.values()))
    print(f"invariants not evaluated: {len(memo.skipped)} ({'; '.join(skipped)[:300]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
