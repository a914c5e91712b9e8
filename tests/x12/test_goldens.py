"""Golden scenarios, both directions: PAS Bundle -> 278 request, 278 response -> PAS response Bundle.

Each tests/x12/golden/<scenario>/ holds request.json, request.x12 (expected), response.x12 (the simulated
payer's answer, also checked) and response.json (expected). Comparison is exact after normalising control
numbers and timestamps. Regenerate with X12_REGEN_GOLDENS=1 after an intended mapping change; review the diff.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from x12 import (
    ControlNumbers,
    authorization_from_bundle,
    bundle_to_278_request,
    inquiry_authorization,
    inquiry_bundle_to_278_request,
    inquiry_response_278_to_bundle,
    parse_interchange,
    read_authorization,
    response_278_to_bundle,
    simulate_payer_response,
    validate_278,
)

GOLDEN = Path(__file__).parent / "golden"
NAMES = [
    "approval",
    "denial",
    "pended",
    "partial_modified",
    "cancel",
    "update",
    "inpatient_admission",
    "home_health",
    "dme_rental",
    "aaa_rejection",
    "dependent_201",
    "inquiry",
]
REGEN = os.environ.get("X12_REGEN_GOLDENS") == "1"
# Outputs are produced with a different clock and control numbers than the goldens, so the normaliser is
# what makes them equal: it must blank exactly the envelope numbers and the timestamps.
OTHER_NOW = datetime(2027, 11, 12, 13, 14, tzinfo=UTC)


def normalise_x12(text: str) -> str:
    out = []
    for line in text.splitlines():
        parts = line.split("*")
        if parts[0] == "ISA":
            parts[9], parts[10], parts[13] = "YYMMDD", "HHMM", "#########"
        elif parts[0] == "GS":
            parts[4], parts[5], parts[6] = "CCYYMMDD", "HHMM", "#"
        elif parts[0] in ("GE", "IEA"):
            parts[2] = "#~"
        elif parts[0] == "BHT" and parts[2] == "11":
            parts[4], parts[5] = "CCYYMMDD", "HHMM"
        elif parts[0] == "DTP" and parts[1] in ("102", "007", "036"):
            parts[3] = "DATE~"
        out.append("*".join(parts))
    return "\n".join(out) + "\n"


def normalise_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("<time>" if k in ("timestamp", "created", "authoredOn") else normalise_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise_json(v) for v in value]
    if (
        isinstance(value, str)
        and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
        and value.startswith(("2026-03-04", "2027-11-12", "2026-06-02", "2028-02-10"))
    ):
        return "<date>"
    return value


def dumps(value: Any) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, Decimal):
            return float(v) if "." in str(v) else int(v)
        raise TypeError(type(v).__name__)

    return json.dumps(value, indent=2, default=default) + "\n"


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"), parse_float=Decimal)


def produce(
    name: str, kind: str, bundle: dict[str, Any], now: datetime, control: int
) -> tuple[str, str, dict[str, Any]]:
    controls = ControlNumbers(control, control, 1)
    to_278 = inquiry_bundle_to_278_request if kind == "inquiry" else bundle_to_278_request
    request = to_278(bundle, control=controls, now=now)
    response = simulate_payer_response(request, now=now)
    back = inquiry_response_278_to_bundle if kind == "inquiry" else response_278_to_bundle
    version = "2.0.1" if name.endswith("_201") else "2.2.1"
    return request, response, back(response, bundle, now=now, pas_version=version)


def test_scenario_set_is_complete(scenarios: dict[str, Any]) -> None:
    assert sorted(scenarios) == sorted(NAMES)
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_golden(name: str, scenarios: dict[str, tuple[str, dict[str, Any]]], now: datetime) -> None:
    kind, bundle = scenarios[name]
    folder = GOLDEN / name
    if REGEN:
        folder.mkdir(parents=True, exist_ok=True)
        request, response, out = produce(name, kind, bundle, now, 11)
        (folder / "request.json").write_text(dumps(bundle), "utf-8")
        (folder / "request.x12").write_text(request, "utf-8")
        (folder / "response.x12").write_text(response, "utf-8")
        (folder / "response.json").write_text(dumps(out), "utf-8")
    stored_bundle = load(folder / "request.json")
    request, response, _ = produce(name, kind, stored_bundle, OTHER_NOW, 987)
    # PAS -> 278 request
    assert normalise_x12(request) == normalise_x12((folder / "request.x12").read_text("utf-8"))
    assert validate_278(request) == []
    # The simulated payer answers the same way.
    assert normalise_x12(response) == normalise_x12((folder / "response.x12").read_text("utf-8"))
    assert validate_278(response) == []
    # 278 response (the stored file) -> PAS response Bundle
    back = inquiry_response_278_to_bundle if kind == "inquiry" else response_278_to_bundle
    version = "2.0.1" if name.endswith("_201") else "2.2.1"
    out = back(
        (folder / "response.x12").read_text("utf-8"), stored_bundle, now=OTHER_NOW, pas_version=version
    )
    expected = load(folder / "response.json")
    assert normalise_json(json.loads(dumps(out))) == normalise_json(json.loads(dumps(expected)))
    # ... and the 278 request carries the same authorization content as the Bundle.
    tx = parse_interchange((folder / "request.x12").read_text("utf-8")).transactions[0]
    content = (
        inquiry_authorization(stored_bundle)
        if kind == "inquiry"
        else authorization_from_bundle(stored_bundle)
    )
    assert read_authorization(tx.segments, tx.implementation) == content


EXPECTED_DECISIONS = {
    "approval": ["A1"],
    "denial": ["A3"],
    "pended": ["A4"],
    "partial_modified": ["A6", "A1"],
    "cancel": ["C"],
    "update": ["A1", "C", "A1"],
    "inpatient_admission": ["A1"],
    "home_health": ["A1"],
    "dme_rental": ["A1"],
    "aaa_rejection": [],
    "dependent_201": ["A1"],
    "inquiry": ["A1"],
}


@pytest.mark.parametrize("name", NAMES)
def test_golden_response_semantics(name: str) -> None:
    bundle = load(GOLDEN / name / "response.json")
    claim_response = bundle["entry"][0]["resource"]
    assert claim_response["resourceType"] == "ClaimResponse"
    codes = [
        item["adjudication"][0]["extension"][0]["extension"][-1]["valueCodeableConcept"]["coding"][0]["code"]
        for item in claim_response.get("item", [])
    ]
    assert codes == EXPECTED_DECISIONS[name]
    if name == "aaa_rejection":
        assert claim_response["outcome"] == "error"
        error = claim_response["error"][0]
        assert error["code"]["coding"][0]["code"] == "72"
        assert error["extension"][0]["extension"][0]["valueString"] == "2010C"
        assert error["extension"][1]["valueString"].endswith(".subscriberId")
    if name == "partial_modified":
        assert claim_response["addItem"][0]["quantity"] == {"value": 6}
        assert claim_response["addItem"][0]["itemSequence"] == [1]
    if name == "denial":
        assert "medically necessary" in claim_response["processNote"][0]["text"]
    if name == "pended":
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"][:2]]
        assert kinds == ["ClaimResponse", "CommunicationRequest"]
    if name == "dependent_201":
        assert "HL*4*3*23*1" in (GOLDEN / name / "request.x12").read_text("utf-8")
