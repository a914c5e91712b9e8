"""``python -m conformance --base-url URL``: run the suites against any server and print the results."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import httpx

from conformance.framework import Outcome, Target, run_suites
from conformance.requirements import coverage_csv
from conformance.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    parser.add_argument("--base-url", help="server under test, e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--suite", action="append", choices=sorted(SUITES), help="suite to run (default: all)"
    )
    parser.add_argument("--fhir-base", default="/fhir", help="path of the FHIR base under the base URL")
    parser.add_argument("--token", help="bearer token sent with every request")
    parser.add_argument(
        "--patient-token",
        help="a patient-context bearer token for Patient/conformance-member (member-access patient checks)",
    )
    parser.add_argument(
        "--organization",
        default="",
        help="id of the Organization the --token client acts for (member-access payer-to-payer checks)",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--coverage", action="store_true", help="print the requirement coverage CSV and exit")
    args = parser.parse_args(argv)
    suites = [SUITES[name] for name in (args.suite or sorted(SUITES))]
    if args.coverage:
        sys.stdout.write(coverage_csv(SUITES.values()))
        return 0
    if not args.base_url:
        parser.error("--base-url is required")
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    with httpx.Client(base_url=args.base_url, timeout=30.0) as client:
        patient = {"Authorization": f"Bearer {args.patient_token}"} if args.patient_token else {}
        target = Target(
            client=client,
            fhir_base=args.fhir_base,
            headers=headers,
            patient_headers=patient,
            organization=args.organization,
        )
        results = run_suites(suites, target)
    if args.json:
        print(json.dumps([{**asdict(r), "outcome": r.outcome.value} for r in results], indent=2))
    else:
        for r in results:
            line = f"{r.outcome.value.upper():5} {r.suite}/{r.check} [{' '.join(r.requirements)}]"
            print(line + (f": {r.message}" if r.message else ""))
    failed = sum(r.outcome in (Outcome.FAIL, Outcome.ERROR) for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
