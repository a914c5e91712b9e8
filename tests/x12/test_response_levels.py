"""278 responses written by hand: AAA at every level, HCR decisions without 2000F, inquiry replies."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from x12 import X12Error, response_278_to_bundle

GOLDEN = Path(__file__).parent / "golden"
REQUEST = json.loads((GOLDEN / "partial_modified" / "request.json").read_text("utf-8"), parse_float=Decimal)
HEAD = (
    "ISA*00*          *00*          *ZZ*PAYER01        *ZZ*PROVIDER01     "
    "*260304*0506*^*00501*000000001*0*P*:~\n"
    "GS*HI*PAYERAPP*PGCLIENT*20260304*0506*1*X*005010X217~\nST*278*0001*005010X217~\n"
)


def interchange(body: list[str]) -> str:
    lines = [*body, f"SE*{len(body) + 2}*0001~", "GE*1*1~", "IEA*1*000000001~"]
    return HEAD + "\n".join(lines) + "\n"


PARTIES = [
    "BHT*0007*11*TX-PARTIAL_MODIFIED*20260304*0506~",
    "HL*1**20*1~",
    "AAA*Y**42*W~",
    "NM1*X3*2*EXAMPLE HEALTH PLAN*****PI*PAYER01~",
    "HL*2*1*21*1~",
    "NM1*1P*1*OKAFOR*GRACE****XX*1982794441~",
    "AAA*N**51*C~",
    "HL*3*2*22*1~",
    "NM1*IL*1*RIVERA*ANA****MI*W123456789~",
]


def claim_response(body: list[str], now: datetime, version: str = "2.2.1") -> dict[str, Any]:
    bundle = response_278_to_bundle(interchange(body), REQUEST, now=now, pas_version=version)
    resource = bundle["entry"][0]["resource"]
    assert resource["resourceType"] == "ClaimResponse"
    return resource


def test_aaa_at_every_level_becomes_claim_response_error(now: datetime) -> None:
    body = [
        *PARTIES,
        "HL*4*3*EV*1~",
        "TRN*2*EV-PARTIAL_MODIFIED*1311234567~",
        "AAA*N**15*C~",
        "HL*5*4*SS*0~",
        "TRN*2*TRACE-2*1311234567~",
        "AAA*N**AG*C~",
    ]
    resource = claim_response(body, now)
    assert resource["outcome"] == "error"
    found = [
        (
            e["code"]["coding"][0]["code"],
            e["extension"][0]["extension"][0]["valueString"],
            e["extension"][1]["valueString"],
        )
        for e in resource["error"]
    ]
    assert found == [
        ("42", "2000A", "Bundle.entry[1].resource"),
        ("51", "2010B", "Bundle.entry[2].resource"),
        ("15", "2000E", "Bundle.entry[0].resource"),
        ("AG", "2000F", "Bundle.entry[0].resource.item[1]"),
    ]
    assert resource["error"][0]["extension"][2]["valueCodeableConcept"]["coding"][0]["code"] == "W"


def test_version_201_error_element_is_a_string(now: datetime) -> None:
    resource = claim_response([*PARTIES], now, version="2.0.1")
    element = resource["error"][0]["extension"][0]
    assert element == {
        "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-errorElement",
        "valueString": "2000A",
    }


def test_event_level_decision_applies_to_every_item(now: datetime) -> None:
    body = [
        *[line for line in PARTIES if not line.startswith("AAA")],
        "HL*4*3*EV*0~",
        "TRN*2*EV-PARTIAL_MODIFIED*1311234567~",
        "HCR*CT**X9~",
        "DTP*007*RD8*20260301-20260331~",
        "MSG*Call the utilization review line~",
    ]
    resource = claim_response(body, now)
    assert resource["outcome"] == "complete"
    assert [i["itemSequence"] for i in resource["item"]] == [1, 2]
    review = resource["item"][0]["adjudication"][0]["extension"][0]["extension"]
    assert review[0]["valueCodeableConcept"]["coding"][0] == {
        "system": "https://codesystem.x12.org/external/886",
        "code": "X9",
    }
    assert review[-1]["valueCodeableConcept"]["coding"][0]["display"] == "Contact Payer"
    assert resource["preAuthPeriod"] == {"start": "2026-03-01", "end": "2026-03-31"}
    assert resource["processNote"] == [
        {"number": 1, "type": "display", "text": "Call the utilization review line"}
    ]


def test_a_request_is_not_a_response(now: datetime) -> None:
    text = (GOLDEN / "approval" / "request.x12").read_text("utf-8")
    with pytest.raises(X12Error, match="BHT02 '13' is not 11"):
        response_278_to_bundle(text, REQUEST, now=now)


def test_unknown_pas_version_is_rejected(now: datetime) -> None:
    with pytest.raises(X12Error, match="PAS version"):
        response_278_to_bundle(interchange([*PARTIES]), REQUEST, now=now, pas_version="1.0")


def test_loinc_requests_become_communication_requests(now: datetime) -> None:
    body = [
        *[line for line in PARTIES if not line.startswith("AAA")],
        "HL*4*3*EV*0~",
        "TRN*2*EV-PARTIAL_MODIFIED*1311234567~",
        "TRN*1*DTRCTX0001*9PRIORGATE~",
        "HCR*A4~",
        "HI*LOI:102089-0*LOI:18842-5~",
        "NM1*FA*2*COLUMBUS SURGICAL CENTER*****XX*1234567893~",
    ]
    bundle = response_278_to_bundle(interchange(body), REQUEST, now=now)
    requests = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CommunicationRequest"
    ]
    assert [r["payload"][0]["contentString"] for r in requests] == ["102089-0", "18842-5"]
    assert requests[0]["identifier"] == [{"system": "urn:trnorg:9PRIORGATE", "value": "DTRCTX0001"}]
    assert "identifier" not in requests[1]
    # A pended decision does not name authorized providers.
    item = bundle["entry"][0]["resource"]["item"][0]
    assert all("itemAuthorizedProvider" not in e["url"] for e in item.get("extension", []))
