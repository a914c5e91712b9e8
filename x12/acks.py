"""Acknowledgements: TA1 (interchange) and 999 (implementation, 005010X231A1), generated and parsed.

Spec: ASC X12 5010 TA1 segment (note codes, element I18) and the 999 TR3 005010X231A1 (AK1/AK2/IK3/IK4/
IK5/AK9; IK304 element 620, IK403 element 621, IK5/AK9 status codes 717/715).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from igs.outcome import Issue
from x12.codec import Delimiters, Segment, read_delimiters, seg, tokenize
from x12.envelope import ControlNumbers, Interchange, Party, build_interchange, parse_interchange, serialize
from x12.errors import X12Error
from x12.validate import Finding, check_transaction

X231 = "005010X231A1"
# TA1 note codes (I18) for the envelope errors the parser reports.
TA1_NOTES = MappingProxyType(
    {
        "000": "No error",
        "001": "The Interchange Control Number in the Header and Trailer Do Not Match",
        "014": "Invalid Interchange Date Value",
        "015": "Invalid Interchange Time Value",
        "018": "Invalid Interchange Control Number Value",
        "020": "Invalid Test Indicator Value",
        "021": "Invalid Number of Included Groups Value",
        "022": "Invalid Control Structure",
        "023": "Improper (Premature) End-of-File (Transmission)",
        "024": "Invalid Interchange Content (e.g., Invalid GS Segment)",
        "026": "Invalid Data Element Separator",
        "027": "Invalid Component Element Separator",
    }
)
IK304 = MappingProxyType(
    {
        "2": "Unexpected segment",
        "3": "Required Segment Missing",
        "5": "Segment Exceeds Maximum Use",
        "8": "Segment Has Data Element Errors",
    }
)
IK403 = MappingProxyType(
    {
        "1": "Required Data Element Missing",
        "4": "Data Element Too Short",
        "5": "Data Element Too Long",
        "6": "Invalid Character In Data Element",
        "7": "Invalid Code Value",
        "8": "Invalid Date",
        "9": "Invalid Time",
    }
)
IK502 = MappingProxyType(
    {
        "3": "Transaction Set Control Number in Header and Trailer Do Not Match",
        "4": "Number of Included Segments Does Not Match Actual Count",
        "5": "One or More Segments in Error",
    }
)


def _ta1_note(error: X12Error) -> str:
    expression = error.issues[0].expression[0] if error.issues and error.issues[0].expression else ""
    text = error.message
    if "IEA02" in expression:
        return "001"
    if "IEA01" in expression:
        return "021"
    if "truncated" in text or "not terminated" in text or "missing IEA" in text:
        return "023"
    for element, note in (
        ("ISA09", "014"),
        ("ISA10", "015"),
        ("ISA13", "018"),
        ("ISA15", "020"),
        ("ISA16", "027"),
    ):
        if element in expression:
            return note
    if "ISA" in expression:
        return "026" if "separated by" in text else "022"
    return "024"


@dataclass(frozen=True)
class Ta1:
    """A TA1: the interchange it answers and whether it was accepted."""

    control_number: str  # TA101 = ISA13 of the answered interchange
    date: str  # TA102
    time: str  # TA103
    status: str  # TA104: A accepted, E accepted with errors, R rejected
    note: str  # TA105 (I18)

    @property
    def meaning(self) -> str:
        return TA1_NOTES.get(self.note, "")


def check_interchange(text: str) -> Ta1:
    """The TA1 verdict on an inbound interchange's envelope (ISA/IEA and the segment structure)."""
    raw = text.lstrip("\ufeff \t\r\n")
    control = raw[90:99] if len(raw) >= 99 and raw[90:99].isdigit() else "000000000"
    date = raw[70:76] if len(raw) >= 76 and raw[70:76].isdigit() else "000000"
    time = raw[77:81] if len(raw) >= 81 and raw[77:81].isdigit() else "0000"
    try:
        parse_interchange(text)
    except X12Error as error:
        expression = error.issues[0].expression[0] if error.issues and error.issues[0].expression else ""
        envelope_level = any(x in expression for x in ("ISA", "IEA")) or "truncated" in error.message
        if envelope_level or "not terminated" in error.message or "missing IEA" in error.message:
            return Ta1(control, date, time, "R", _ta1_note(error))
    return Ta1(control, date, time, "A", "000")


def generate_ta1(text: str, *, now: datetime, control: ControlNumbers, sender: Party | None = None) -> str:
    """A TA1 interchange answering ``text`` (X12 5010 control segments); sender defaults to its receiver."""
    verdict = check_interchange(text)
    delimiters = Delimiters()
    original_sender = original_receiver = Party("ZZ", "UNKNOWN")
    try:
        delimiters = read_delimiters(text.lstrip("\ufeff \t\r\n"))
        raw = text.lstrip("\ufeff \t\r\n")
        fields = raw[4:103].split(delimiters.element)
        original_sender, original_receiver = (
            Party(fields[4], fields[5].rstrip()),
            Party(fields[6], fields[7].rstrip()),
        )
    except X12Error:
        pass
    ta1 = seg("TA1", verdict.control_number, verdict.date, verdict.time, verdict.status, verdict.note)
    base = build_interchange(
        [],
        sender=sender or original_receiver,
        receiver=original_sender,
        control=control,
        now=now,
        delimiters=delimiters,
    )
    return serialize(Interchange(**{**base.__dict__, "groups": (), "ta1": (ta1,)}))


def _ik(finding: Finding, st_position: int) -> list[Segment]:
    position = str(max(finding.segment.position - st_position + 1, 1))
    out = [seg("IK3", finding.segment.id, position, finding.loop or None, finding.segment_error)]
    if finding.element is not None:
        bad = finding.segment.get(finding.element)[:99]
        out.append(seg("IK4", str(finding.element), None, finding.element_error or "1", bad or None))
    return out


def generate_999(text: str, *, now: datetime, control: ControlNumbers) -> str:
    """A 999 (005010X231A1) for every functional group in an inbound interchange, with the TR3 errors found.

    Envelope errors inside a group (SE count, ST/SE control numbers) are reported in IK5; TR3 rule
    violations as IK3/IK4. An interchange whose ISA cannot be read raises :class:`X12Error` (send a TA1).
    """
    delimiters, segments = tokenize(text)
    isa = segments[0]
    body: list[Segment] = []
    i = 1
    end = len(segments)
    while i < end:
        gs = segments[i]
        if gs.id != "GS":
            i += 1
            continue
        body.append(seg("AK1", gs.get(1), gs.get(6), gs.get(8)))
        received = accepted = 0
        i += 1
        while i < end and segments[i].id == "ST":
            st = segments[i]
            j = i + 1
            while j < end and segments[j].id not in ("SE", "ST", "GE", "IEA"):
                j += 1
            received += 1
            body.append(seg("AK2", st.get(1), st.get(2), st.get(3)))
            se = segments[j] if j < end and segments[j].id == "SE" else None
            codes: list[str] = []
            if se is None:
                codes.append("2")
            else:
                if se.get(1) != str(j - i + 1):
                    codes.append("4")
                if se.get(2) != st.get(2):
                    codes.append("3")
            findings = check_transaction(tuple(segments[i + 1 : j])) if st.get(1) == "278" else []
            for finding in findings:
                body.extend(_ik(finding, st.position))
            if findings:
                codes.append("5")
            status = "R" if codes else "A"
            accepted += status == "A"
            body.append(seg("IK5", status, *codes[:5]))
            i = j + 1 if se is not None else j
        group_status = "A" if accepted == received else ("P" if accepted else "R")
        body.append(seg("AK9", group_status, str(received), str(received), str(accepted)))
        if i < end and segments[i].id == "GE":
            i += 1
    reply = build_interchange(
        [("999", X231, body)],
        sender=Party(isa.get(7), isa.get(8).rstrip()),
        receiver=Party(isa.get(5), isa.get(6).rstrip()),
        control=control,
        now=now,
        functional_id="FA",
        usage=isa.get(15) or "P",
        delimiters=delimiters,
    )
    return serialize(reply)


@dataclass(frozen=True)
class ImplementationError:
    """One IK3 (and its IK4) from a 999."""

    segment_id: str
    position: str
    loop: str
    segment_error: str
    element: str = ""
    element_error: str = ""
    bad_value: str = ""


@dataclass(frozen=True)
class TransactionAck:
    """One AK2..IK5 block of a 999."""

    set_id: str
    control_number: str
    status: str  # IK501: A, E, R
    codes: tuple[str, ...]
    errors: tuple[ImplementationError, ...]


@dataclass(frozen=True)
class Acknowledgement:
    """What a partner sent back for one of our interchanges: TA1s and 999 transaction results."""

    ta1: tuple[Ta1, ...]
    transactions: tuple[TransactionAck, ...]

    @property
    def accepted(self) -> bool:
        return all(t.status == "A" for t in self.ta1) and all(
            t.status in ("A", "E") for t in self.transactions
        )

    def issues(self) -> list[Issue]:
        """The errors the partner found, as OperationOutcome issues (diagnostics carry the TA1/999 text)."""
        out: list[Issue] = []
        for ta1 in self.ta1:
            if ta1.status != "A":
                out.append(Issue(diagnostics=f"TA1 {ta1.status} {ta1.note}: {ta1.meaning}", code="structure"))
        for tx in self.transactions:
            for e in tx.errors:
                where = f"transaction {tx.control_number}, segment {e.position} ({e.segment_id})"
                where += f" in loop {e.loop}" if e.loop else ""
                if e.element:
                    where += f", element {e.segment_id}{int(e.element):02d}" if e.element.isdigit() else ""
                    detail = IK403.get(e.element_error, e.element_error)
                    bad = f" {e.bad_value!r}" if e.bad_value else ""
                    out.append(Issue(diagnostics=f"999: {where}: {detail}{bad}", code="value"))
                else:
                    out.append(
                        Issue(
                            diagnostics=f"999: {where}: {IK304.get(e.segment_error, e.segment_error)}",
                            code="structure",
                        )
                    )
            if tx.status == "R" and not tx.errors:
                reasons = ", ".join(IK502.get(c, c) for c in tx.codes) or "rejected"
                out.append(
                    Issue(diagnostics=f"999: transaction {tx.control_number}: {reasons}", code="structure")
                )
        return out


def read_acknowledgement(text: str) -> Acknowledgement:
    """Parse a TA1 and/or 999 interchange received for one of our outbound interchanges."""
    interchange = parse_interchange(text)
    ta1 = tuple(Ta1(s.get(1), s.get(2), s.get(3), s.get(4), s.get(5)) for s in interchange.ta1)
    results: list[TransactionAck] = []
    for tx in interchange.transactions:
        if tx.set_id != "999":
            raise X12Error.at(
                f"transaction set {tx.set_id!r} is not a 999",
                position=tx.position,
                segment_id="ST",
                element=1,
            )
        current: dict[str, object] | None = None
        errors: list[ImplementationError] = []
        for s in tx.segments:
            if s.id == "AK2":
                current = {"set_id": s.get(1), "control": s.get(2)}
                errors = []
            elif s.id == "IK3":
                errors.append(ImplementationError(s.get(1), s.get(2), s.get(3), s.get(4)))
            elif s.id == "IK4" and errors:
                last = errors[-1]
                element = s.composite(1)[0] if s.get(1) else ""
                errors[-1] = ImplementationError(
                    last.segment_id, last.position, last.loop, last.segment_error, element, s.get(3), s.get(4)
                )
            elif s.id == "IK5":
                if current is None:
                    raise X12Error.at("IK5 without AK2", position=s.position, segment_id="IK5")
                codes = tuple(x for x in s.elements[1:] if x)
                results.append(
                    TransactionAck(
                        str(current["set_id"]), str(current["control"]), s.get(1), codes, tuple(errors)
                    )
                )
                current = None
    return Acknowledgement(ta1, tuple(results))
