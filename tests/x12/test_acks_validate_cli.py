"""TA1/999 generation and parsing, TR3 validation findings, the simulated payer's decide hook, the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from x12 import (
    ControlNumbers,
    Decision,
    check_interchange,
    generate_999,
    generate_ta1,
    parse_interchange,
    read_acknowledgement,
    read_authorization,
    simulate_payer_response,
    validate_278,
)
from x12.cli import main
from x12.codes import code_lists, display
from x12.validate import rules

GOLDEN = Path(__file__).parent / "golden"
APPROVAL = (GOLDEN / "approval" / "request.x12").read_text("utf-8")
BROKEN = (
    APPROVAL.replace("NM1*X3*2*EXAMPLE HEALTH PLAN*****PI*PAYER01", "NM1*X3*2*EXAMPLE HEALTH PLAN")
    .replace("UM*HS*I*2*11:B**U", "UM*ZZ*I*2*11:B**U")
    .replace("DTP*472*RD8*20260315-20260318", "DTP*472*RD8*20261315-20260318")
)


def test_clean_request_has_no_findings() -> None:
    assert validate_278(APPROVAL) == []


def test_broken_request_findings_name_loop_segment_and_element() -> None:
    found = [issue.diagnostics for issue in validate_278(BROKEN)]
    assert len(found) == 3
    assert found[0].startswith("loop 2010A, segment 6 (NM1), element NM109: required element is missing [TR3")
    assert "loop 2000E, segment 20 (UM), element UM01: code 'ZZ' is not allowed here" in found[1]
    assert (
        "element DTP03: '20261315-20240318'" not in found[2]
        and "'20261315-20260318' is not a valid RD8" in found[2]
    )


def test_every_rule_has_a_source() -> None:
    loaded = rules()
    assert all(rule.source for rule in loaded.segments)
    assert all(rule.source for group in loaded.elements.values() for rule in group)
    assert len(loaded.segments) >= 20 and sum(map(len, loaded.elements.values())) >= 60


def test_codes_have_meanings() -> None:
    assert display("306", "A1") == "Certified in total"
    assert display("901", "72") == "Invalid/Missing Subscriber/Insured ID"
    assert all(meaning for codes in code_lists().values() for meaning in codes.values())


def test_999_accepts_a_clean_278(now: datetime) -> None:
    ack = read_acknowledgement(generate_999(APPROVAL, now=now, control=ControlNumbers(9, 9, 1)))
    assert ack.accepted and ack.issues() == []
    assert [t.status for t in ack.transactions] == ["A"]


def test_999_reports_tr3_errors(now: datetime) -> None:
    text = generate_999(BROKEN, now=now, control=ControlNumbers(9, 9, 1))
    lines = text.splitlines()
    assert "ST*999*0001*005010X231A1~" in lines
    assert "IK3*NM1*4*2010A*8~" in lines and "IK4*9**1~" in lines
    assert "IK4*1**7*ZZ~" in lines
    assert "IK5*R*5~" in lines and "AK9*R*1*1*0~" in lines
    ack = read_acknowledgement(text)
    assert not ack.accepted
    assert any("element UM01: Invalid Code Value 'ZZ'" in i.diagnostics for i in ack.issues())


def test_999_reports_a_wrong_segment_count(now: datetime) -> None:
    count_line = next(line for line in APPROVAL.splitlines() if line.startswith("SE*"))
    wrong = APPROVAL.replace(count_line, "SE*99*0001~")
    ack = read_acknowledgement(generate_999(wrong, now=now, control=ControlNumbers()))
    assert ack.transactions[0].codes == ("4",)
    assert "Number of Included Segments" in ack.issues()[0].diagnostics


def test_ta1_accepts_and_rejects(now: datetime) -> None:
    assert check_interchange(APPROVAL).status == "A"
    bad = APPROVAL.replace("IEA*1*000000011", "IEA*1*000000012")
    verdict = check_interchange(bad)
    assert (verdict.status, verdict.note, verdict.control_number) == ("R", "001", "000000011")
    ack = read_acknowledgement(generate_ta1(bad, now=now, control=ControlNumbers(4, 4, 1)))
    assert ack.ta1[0].status == "R"
    assert "Header and Trailer Do Not Match" in ack.issues()[0].diagnostics
    assert check_interchange(APPROVAL[:80]).note == "023"


def test_decide_hook_controls_the_simulated_payer(now: datetime) -> None:
    response = simulate_payer_response(
        APPROVAL, now=now, decide=lambda auth, service: Decision("A3", reason="X1", message="no")
    )
    tx = parse_interchange(response).transactions[0]
    auth = read_authorization(tx.segments, tx.implementation)
    assert auth.services[0].review is not None
    assert (auth.services[0].review.action, auth.services[0].review.reason) == ("A3", "X1")
    assert auth.services[0].message == "no"


def test_marker_in_msg_selects_the_decision(now: datetime) -> None:
    marked = APPROVAL.replace(
        "SV1*HC:27447:RT*35000*UN*1~", "SV1*HC:27447:RT*35000*UN*1~\nMSG*please X12-DECISION:A4~"
    )
    count_line = next(line for line in marked.splitlines() if line.startswith("SE*"))
    n = int(count_line.split("*")[1])
    marked = marked.replace(count_line, f"SE*{n + 1}*0001~")
    tx = parse_interchange(simulate_payer_response(marked, now=now)).transactions[0]
    auth = read_authorization(tx.segments, tx.implementation)
    assert [s.review.action for s in auth.services if s.review] == ["A4"]


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request_json = GOLDEN / "approval" / "request.json"
    assert main(["to-278", str(request_json)]) == 0
    text = capsys.readouterr().out
    (tmp_path / "req.x12").write_text(text, "utf-8")
    assert main(["validate", str(tmp_path / "req.x12")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["from-278", str(GOLDEN / "approval" / "response.x12"), "--request", str(request_json)]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["entry"][0]["resource"]["outcome"] == "complete"
    assert main(["from-278", str(tmp_path / "req.x12")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["purpose"] == "13"


def test_cli_reports_errors_without_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.x12").write_text(BROKEN, "utf-8")
    assert main(["validate", str(tmp_path / "bad.x12")]) == 1
    assert "NM109" in capsys.readouterr().out
    (tmp_path / "garbage.x12").write_text("hello", "utf-8")
    assert main(["from-278", str(tmp_path / "garbage.x12")]) == 1
    assert "must start with ISA" in capsys.readouterr().err
    (tmp_path / "not-a-bundle.json").write_text('{"resourceType": "Patient"}', "utf-8")
    assert main(["to-278", str(tmp_path / "not-a-bundle.json")]) == 1
    assert "expected a Bundle" in capsys.readouterr().err


def test_composite_components_are_checked() -> None:
    broken = APPROVAL.replace("HI*ABK", "HI*XXK").replace("SV1*HC:", "SV1*QQ:")
    found = [issue.diagnostics for issue in validate_278(broken)]
    assert len(found) == 2
    assert "element HI01: component 1: code 'XXK'" in found[0]
    assert "element SV101: component 1: code 'QQ'" in found[1]


def test_cli_inquiry_response(capsys: pytest.CaptureFixture[str]) -> None:
    folder = GOLDEN / "inquiry"
    args = ["from-278", str(folder / "response.x12"), "--request", str(folder / "request.json"), "--inquiry"]
    assert main(args) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["meta"]["profile"][0].endswith("profile-pas-inquiry-response-bundle")


def test_check_holds_generated_278s_to_the_tr3(now: datetime) -> None:
    from decimal import Decimal

    from igs.outcome import Failure, OperationOutcomeError
    from x12 import bundle_to_278_request

    bundle = json.loads((GOLDEN / "approval" / "request.json").read_text("utf-8"), parse_float=Decimal)
    assert bundle_to_278_request(bundle, control=ControlNumbers(), now=now, check=True)
    bundle["entry"][0]["resource"]["identifier"][0]["assigner"]["identifier"]["value"] = "SHORT"
    with pytest.raises(OperationOutcomeError) as caught:
        bundle_to_278_request(bundle, control=ControlNumbers(), now=now, check=True)
    assert caught.value.failure is Failure.UNPROCESSABLE
    assert "element TRN03: length 5 outside 10..10" in caught.value.message


def test_cli_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(GOLDEN / "denial" / "request.json"), "--show-x12"]) == 0
    captured = capsys.readouterr()
    bundle = json.loads(captured.out)
    item = bundle["entry"][0]["resource"]["item"][0]
    assert (
        item["adjudication"][0]["extension"][0]["extension"][-1]["valueCodeableConcept"]["coding"][0]["code"]
        == "A3"
    )
    assert "BHT*0007*11*TX-DENIAL" in captured.err
