"""``priorgate x12 ...``: translate and check 278 files from the command line.

priorgate x12 to-278 BUNDLE.json [--inquiry] [--control N]     PAS request Bundle -> 278 on stdout
priorgate x12 from-278 FILE [--request BUNDLE.json] [--pas 2.0.1|2.2.1]
                                  278 response -> PAS response Bundle (JSON); without --request,
                                  the 278 content as JSON (request or response)
priorgate x12 validate FILE       TR3 checks; exit 0 when clean, 1 with one issue per line
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from igs.outcome import OperationOutcomeError
from x12.envelope import ControlNumbers, parse_interchange
from x12.exchange import exchange_with_simulated_payer
from x12.inquiry import inquiry_bundle_to_278_request
from x12.request import bundle_to_278_request
from x12.response import inquiry_response_278_to_bundle, response_278_to_bundle
from x12.validate import validate_278
from x12.x217 import read_authorization


def _load_json(path: str) -> dict[str, Any]:
    data = json.loads(Path(path).read_text("utf-8"), parse_float=Decimal)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: not a JSON object")
    return data


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    raise TypeError(type(value).__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="priorgate x12", description="X12 278 bridge (005010X217 / X215)")
    sub = parser.add_subparsers(dest="command", required=True)
    to = sub.add_parser("to-278", help="PAS request (or inquiry) Bundle to a 278 interchange")
    to.add_argument("bundle")
    to.add_argument("--inquiry", action="store_true", help="the Bundle is a PAS Claim Inquiry (X215)")
    to.add_argument(
        "--control", type=int, default=1, help="interchange, group and transaction control number"
    )
    frm = sub.add_parser(
        "from-278", help="278 to JSON: a PAS response Bundle with --request, else the 278 content"
    )
    frm.add_argument("file")
    frm.add_argument("--request", help="the PAS request Bundle this 278 response answers")
    frm.add_argument("--pas", default="2.2.1", choices=["2.0.1", "2.2.1"])
    frm.add_argument("--inquiry", action="store_true", help="the 278 is an X215 inquiry response")
    val = sub.add_parser("validate", help="check a 278 against the envelope and TR3 rules")
    val.add_argument("file")
    sim = sub.add_parser("simulate", help="send a PAS Bundle through the simulated X12 payer")
    sim.add_argument("bundle")
    sim.add_argument("--inquiry", action="store_true")
    sim.add_argument("--pas", default="2.2.1", choices=["2.0.1", "2.2.1"])
    sim.add_argument("--show-x12", action="store_true", help="print both 278s to stderr")
    return parser


def main(argv: list[str]) -> int:
    """Run one ``x12`` command; returns the process exit code (0 ok, 1 invalid input, 2 usage)."""
    args = _parser().parse_args(argv)
    now = datetime.now(UTC)  # the CLI is the edge: the clock is read here and passed down
    try:
        if args.command == "to-278":
            bundle = _load_json(args.bundle)
            control = ControlNumbers(args.control, args.control, 1)
            translate = inquiry_bundle_to_278_request if args.inquiry else bundle_to_278_request
            sys.stdout.write(translate(bundle, control=control, now=now))
            return 0
        if args.command == "simulate":
            exchange = exchange_with_simulated_payer(
                _load_json(args.bundle),
                now=now,
                control=ControlNumbers(),
                pas_version=args.pas,
                inquiry=args.inquiry,
            )
            if args.show_x12:
                sys.stderr.write(exchange.request_278 + "\n" + exchange.response_278)
            print(json.dumps(exchange.response_bundle, indent=2, default=_default))
            return 0
        text = Path(args.file).read_text("utf-8")
        if args.command == "validate":
            issues = validate_278(text)
            for issue in issues:
                print(issue.diagnostics)
            if not issues:
                print("OK: no TR3 or envelope errors found")
            return 1 if issues else 0
        if args.request:
            back = inquiry_response_278_to_bundle if args.inquiry else response_278_to_bundle
            out: Any = back(text, _load_json(args.request), now=now, pas_version=args.pas)
        else:
            interchange = parse_interchange(text)
            out = [
                dataclasses.asdict(read_authorization(tx.segments, tx.implementation))
                for tx in interchange.transactions
            ]
        print(json.dumps(out, indent=2, default=_default))
        return 0
    except OperationOutcomeError as error:
        for issue in error.issues:
            print(f"error: {issue.diagnostics}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
