"""Tokenizer and envelope: delimiters from the ISA, counts and control numbers, precise errors."""

from __future__ import annotations

import pytest

from igs.outcome import Failure
from x12 import Delimiters, X12Error, parse_interchange, serialize, tokenize
from x12.codec import Segment, seg, write_segments

ISA = (
    "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*PAYER01        "
    "*240220*1005*^*00501*000000123*0*T*:~"
)
BODY = [
    "GS*HI*SUBMITTER01*PAYER01*20240220*1005*123*X*005010X217~",
    "ST*278*0001*005010X217~",
    "BHT*0007*13*PA1*20240220*1005~",
    "HL*1**20*1~",
    "NM1*X3*2*PLAN*****PI*PAYER01~",
    "SE*5*0001~",
    "GE*1*123~",
    "IEA*1*000000123~",
]
TEXT = "\n".join([ISA, *BODY]) + "\n"


def error_of(text: str) -> X12Error:
    with pytest.raises(X12Error) as caught:
        parse_interchange(text)
    assert caught.value.failure is Failure.INVALID
    return caught.value


def test_round_trip_is_exact() -> None:
    interchange = parse_interchange(TEXT)
    assert interchange.sender.id == "SUBMITTER01"
    assert interchange.control_number == "000000123"
    assert [tx.implementation for tx in interchange.transactions] == ["005010X217"]
    assert serialize(interchange) == TEXT


def test_other_delimiters_are_read_from_the_isa() -> None:
    text = TEXT.replace("*", "|").replace("~\n", "\r\n").replace(":", "}").replace("|^|", "|!|")
    text = text.replace("ISA|00", "ISA|00", 1)
    interchange = parse_interchange(text)
    assert interchange.delimiters == Delimiters("|", "}", "!", "\r")
    # Same content as the '*' version, written back with its own delimiters.
    assert interchange.transactions == parse_interchange(TEXT).transactions
    assert serialize(interchange, newline=False) == text.replace("\r\n", "\r")


def test_component_separator_is_swapped_consistently() -> None:
    text = TEXT.replace("*:~", "*>~", 1).replace("NM1*X3*2*PLAN", "NM1*X3*2*A>B:C")
    interchange = parse_interchange(text)
    nm1 = interchange.transactions[0].segments[2]
    assert nm1.composite(3) == ("A", "B>C")
    assert serialize(interchange) == text


def test_multiple_transactions_and_groups() -> None:
    st2 = ["ST*278*0002*005010X217~", "BHT*0007*13*PA2*20240220*1005~", "SE*3*0002~"]
    body = (
        BODY[:6]
        + st2
        + [
            "GE*2*123~",
            "GS*HI*A*B*20240220*1005*124*X*005010X217~",
            *BODY[1:6],
            "GE*1*124~",
            "IEA*2*000000123~",
        ]
    )
    interchange = parse_interchange("\n".join([ISA, *body]))
    assert [g.control_number for g in interchange.groups] == ["123", "124"]
    assert [tx.control_number for tx in interchange.transactions] == ["0001", "0002", "0001"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda t: t.replace("SE*5*0001", "SE*6*0001"),
            "segment 7 (SE), element SE01: SE01 segment count is '6', counted 5",
        ),
        (lambda t: t.replace("SE*5*0001", "SE*5*0002"), "segment 7 (SE), element SE02"),
        (lambda t: t.replace("GE*1*123", "GE*2*123"), "segment 8 (GE), element GE01"),
        (lambda t: t.replace("GE*1*123", "GE*1*999"), "segment 8 (GE), element GE02"),
        (lambda t: t.replace("IEA*1*000000123", "IEA*1*000000124"), "segment 9 (IEA), element IEA02"),
        (lambda t: t.replace("IEA*1*000000123", "IEA*3*000000123"), "segment 9 (IEA), element IEA01"),
        (lambda t: t.replace("HL*1**20*1~\n", "HL*1**20*1\n"), "segment 5 (HL): line break inside a segment"),
        (lambda t: t.replace("ISA*00*    ", "ISA*00*   "), "segment 1 (ISA)"),
        (lambda t: t.replace("*240220*", "*24022A*"), "segment 1 (ISA), element ISA09: must be numeric"),
        (lambda t: t.replace("*0*T*:~", "*0*X*:~"), "element ISA15"),
        (lambda t: t.replace("*^*00501", "*A*00501"), "element ISA11"),
        (lambda t: t.replace("*0*T*:~", "*0*T**~"), "element ISA16"),
        (lambda t: t[:60], "truncated ISA"),
        (lambda t: t.rstrip("\n")[:-1], "not terminated"),
        (lambda t: t.replace("GE*1*123~\n", ""), "segment 8 (IEA): expected GE, found IEA"),
        (lambda t: t.replace("IEA*1*000000123~\n", ""), "missing IEA"),
        (lambda t: t + "NM1*X~\n", "segment 10 (NM1): segment after IEA"),
        (lambda t: t.replace("NM1*X3", "nm1*X3"), "segment 6: invalid segment id 'nm1'"),
        (lambda t: "GS*HI~" + t, "must start with ISA"),
        (lambda t: t[:107] + t[107:].replace("~\n", "|\n"), "segment 2 (GS): line break inside a segment"),
    ],
)
def test_malformed_input_names_the_place(mutate: object, expected: str) -> None:
    error = error_of(mutate(TEXT))  # type: ignore[operator]
    assert expected in error.message
    assert error.issues[0].expression or "must start" in expected


def test_errors_render_as_operation_outcome() -> None:
    outcome = error_of(TEXT.replace("SE*5*0001", "SE*9*0001")).to_fhir()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["segment[7].SE01"]


def test_non_text_input_is_an_x12_error() -> None:
    with pytest.raises(X12Error):
        tokenize(b"ISA" * 50)  # type: ignore[arg-type]


def test_seg_builds_composites_and_drops_trailing_empties() -> None:
    segment = seg("SV1", ("HC", "27447", "RT", "", ""), "100", None, None)
    assert segment == Segment("SV1", ("HC:27447:RT", "100"))
    assert write_segments([segment], newline=False) == "SV1*HC:27447:RT*100~"


def test_delimiters_in_data_cannot_break_the_interchange() -> None:
    segment = seg("NM1", "IL", "1", "O*BRIEN~", ("HC", "27:447"), "A^B\nC")
    assert segment.elements == ("IL", "1", "O BRIEN ", "HC:27 447", "A B C")
    custom = Delimiters("|", ">", "!", "'")
    text = write_segments([Segment("MSG", ("IT'S|OK!",))], custom, newline=False)
    assert text == "MSG|IT S OK '"
