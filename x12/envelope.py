"""The interchange envelope: ISA/IEA, GS/GE and ST/SE, with control numbers and counts checked both ways.

Spec: ASC X12 5010 control segments; the 278 TR3s (005010X217, 005010X215) section 2 (envelopes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from x12.codec import DEFAULT_DELIMITERS, Delimiters, Segment, tokenize, write_segments
from x12.errors import X12Error


@dataclass(frozen=True)
class ControlNumbers:
    """ISA13 interchange, GS06 group and first ST02 transaction control numbers of an outbound interchange."""

    interchange: int = 1
    group: int = 1
    transaction: int = 1

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("interchange", self.interchange, 999_999_999),
            ("group", self.group, 999_999_999),
            ("transaction", self.transaction, 999_999_999),
        ):
            if not 0 < value <= limit:
                raise X12Error.mapping(f"control number {name}={value} must be between 1 and {limit}")


@dataclass(frozen=True)
class Party:
    """An interchange (ISA05/06, ISA07/08) or application (GS02/03) sender or receiver."""

    qualifier: str = "ZZ"
    id: str = ""
    application: str = ""


@dataclass(frozen=True)
class Transaction:
    """One ST..SE transaction set; ``segments`` is everything between ST and SE."""

    set_id: str  # ST01, e.g. 278
    control_number: str  # ST02
    implementation: str  # ST03, e.g. 005010X217
    segments: tuple[Segment, ...]
    position: int = 0  # of the ST segment


@dataclass(frozen=True)
class FunctionalGroup:
    """One GS..GE functional group."""

    functional_id: str  # GS01, HI for 278, FA for 999
    sender: str  # GS02
    receiver: str  # GS03
    date: str  # GS04 CCYYMMDD
    time: str  # GS05 HHMM
    control_number: str  # GS06
    version: str  # GS08
    transactions: tuple[Transaction, ...]
    position: int = 0


@dataclass(frozen=True)
class Interchange:
    """One ISA..IEA interchange (and optional TA1 acknowledgements inside it)."""

    sender: Party
    receiver: Party
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    control_number: str  # ISA13
    usage: str  # ISA15 P or T
    ack_requested: str = "0"  # ISA14
    version: str = "00501"  # ISA12
    groups: tuple[FunctionalGroup, ...] = ()
    delimiters: Delimiters = DEFAULT_DELIMITERS
    ta1: tuple[Segment, ...] = field(default=())

    @property
    def transactions(self) -> tuple[Transaction, ...]:
        return tuple(tx for group in self.groups for tx in group.transactions)


def _expect(segment: Segment | None, segment_id: str, after: Segment) -> Segment:
    if segment is None:
        raise X12Error.at(
            f"missing {segment_id}: input ends after this segment",
            position=after.position,
            segment_id=after.id,
        )
    if segment.id != segment_id:
        raise X12Error.at(
            f"expected {segment_id}, found {segment.id}", position=segment.position, segment_id=segment.id
        )
    return segment


def _count(segment: Segment, n: int, actual: int, what: str) -> None:
    raw = segment.get(n)
    if not raw.isdigit() or int(raw) != actual:
        raise X12Error.at(
            f"{what} is {raw!r}, counted {actual}",
            position=segment.position,
            segment_id=segment.id,
            element=n,
        )


def _need(segment: Segment, *elements: int) -> None:
    for n in elements:
        if not segment.get(n).strip():
            raise X12Error.at(
                "required element is missing", position=segment.position, segment_id=segment.id, element=n
            )


def parse_interchange(text: str) -> Interchange:
    """Parse and check an interchange: delimiters, fixed-width ISA, every control number and count."""
    delimiters, segments = tokenize(text)
    isa = segments[0]
    for n in (9, 10, 13):
        if not isa.get(n).isdigit():
            raise X12Error.at("must be numeric", position=1, segment_id="ISA", element=n)
    if isa.get(15) not in ("P", "T"):
        raise X12Error.at("usage indicator must be P or T", position=1, segment_id="ISA", element=15)
    groups: list[FunctionalGroup] = []
    ta1: list[Segment] = []
    i = 1
    end = len(segments)
    while i < end and segments[i].id in ("GS", "TA1"):
        if segments[i].id == "TA1":
            ta1.append(segments[i])
            i += 1
            continue
        gs = segments[i]
        _need(gs, 1, 2, 3, 4, 5, 6, 8)
        i += 1
        transactions: list[Transaction] = []
        while i < end and segments[i].id == "ST":
            st = segments[i]
            _need(st, 1, 2)
            j = i + 1
            while j < end and segments[j].id not in ("SE", "ST", "GE", "IEA"):
                j += 1
            se = _expect(segments[j] if j < end else None, "SE", segments[j - 1])
            _count(se, 1, j - i + 1, "SE01 segment count")
            if se.get(2) != st.get(2):
                raise X12Error.at(
                    f"SE02 {se.get(2)!r} does not match ST02 {st.get(2)!r}",
                    position=se.position,
                    segment_id="SE",
                    element=2,
                )
            transactions.append(
                Transaction(st.get(1), st.get(2), st.get(3), tuple(segments[i + 1 : j]), st.position)
            )
            i = j + 1
        ge = _expect(segments[i] if i < end else None, "GE", segments[i - 1])
        _count(ge, 1, len(transactions), "GE01 transaction set count")
        if ge.get(2) != gs.get(6):
            raise X12Error.at(
                f"GE02 {ge.get(2)!r} does not match GS06 {gs.get(6)!r}",
                position=ge.position,
                segment_id="GE",
                element=2,
            )
        groups.append(
            FunctionalGroup(
                gs.get(1),
                gs.get(2),
                gs.get(3),
                gs.get(4),
                gs.get(5),
                gs.get(6),
                gs.get(8),
                tuple(transactions),
                gs.position,
            )
        )
        i += 1
    iea = _expect(segments[i] if i < end else None, "IEA", segments[i - 1])
    _count(iea, 1, len(groups), "IEA01 functional group count")
    if iea.get(2) != isa.get(13):
        raise X12Error.at(
            f"IEA02 {iea.get(2)!r} does not match ISA13 {isa.get(13)!r}",
            position=iea.position,
            segment_id="IEA",
            element=2,
        )
    if i + 1 < end:
        extra = segments[i + 1]
        raise X12Error.at("segment after IEA", position=extra.position, segment_id=extra.id)
    return Interchange(
        sender=Party(isa.get(5), isa.get(6).rstrip()),
        receiver=Party(isa.get(7), isa.get(8).rstrip()),
        date=isa.get(9),
        time=isa.get(10),
        control_number=isa.get(13),
        usage=isa.get(15),
        ack_requested=isa.get(14),
        version=isa.get(12),
        groups=tuple(groups),
        delimiters=delimiters,
        ta1=tuple(ta1),
    )


def isa_segment(interchange: Interchange) -> Segment:
    """The fixed-width ISA (authorization and security information empty)."""
    d = interchange.delimiters
    return Segment(
        "ISA",
        (
            "00",
            " " * 10,
            "00",
            " " * 10,
            interchange.sender.qualifier.ljust(2)[:2],
            interchange.sender.id.ljust(15)[:15],
            interchange.receiver.qualifier.ljust(2)[:2],
            interchange.receiver.id.ljust(15)[:15],
            interchange.date,
            interchange.time,
            d.repetition,
            interchange.version,
            interchange.control_number.rjust(9, "0"),
            interchange.ack_requested,
            interchange.usage,
            d.component,
        ),
    )


def envelope_segments(interchange: Interchange) -> list[Segment]:
    """All segments of the interchange, with SE01, GE01 and IEA01 counted."""
    out = [isa_segment(interchange), *interchange.ta1]
    for group in interchange.groups:
        out.append(
            Segment(
                "GS",
                (
                    group.functional_id,
                    group.sender,
                    group.receiver,
                    group.date,
                    group.time,
                    group.control_number,
                    "X",
                    group.version,
                ),
            )
        )
        for tx in group.transactions:
            st: tuple[str, ...] = (
                (tx.set_id, tx.control_number, tx.implementation)
                if tx.implementation
                else (tx.set_id, tx.control_number)
            )
            out.append(Segment("ST", st))
            out.extend(tx.segments)
            out.append(Segment("SE", (str(len(tx.segments) + 2), tx.control_number)))
        out.append(Segment("GE", (str(len(group.transactions)), group.control_number)))
    out.append(Segment("IEA", (str(len(interchange.groups)), interchange.control_number.rjust(9, "0"))))
    return out


def serialize(interchange: Interchange, *, newline: bool = True) -> str:
    """Render an interchange, one segment per line unless ``newline=False``; inverse of parse_interchange."""
    return write_segments(envelope_segments(interchange), interchange.delimiters, newline=newline)


def build_interchange(
    bodies: Sequence[tuple[str, str, Sequence[Segment]]],
    *,
    sender: Party,
    receiver: Party,
    control: ControlNumbers,
    now: datetime,
    functional_id: str = "HI",
    usage: str = "P",
    ack_requested: str = "0",
    delimiters: Delimiters = DEFAULT_DELIMITERS,
) -> Interchange:
    """One interchange, one functional group, ``bodies`` as (ST01, ST03/GS08, segments) transactions."""
    version = bodies[0][1] if bodies else "005010X231A1"
    transactions = tuple(
        Transaction(set_id, str(control.transaction + n).rjust(4, "0"), implementation, tuple(segments))
        for n, (set_id, implementation, segments) in enumerate(bodies)
    )
    group = FunctionalGroup(
        functional_id,
        sender.application or sender.id,
        receiver.application or receiver.id,
        now.strftime("%Y%m%d"),
        now.strftime("%H%M"),
        str(control.group),
        version,
        transactions,
    )
    return Interchange(
        sender=sender,
        receiver=receiver,
        date=now.strftime("%y%m%d"),
        time=now.strftime("%H%M"),
        control_number=str(control.interchange).rjust(9, "0"),
        usage=usage,
        ack_requested=ack_requested,
        groups=(group,),
        delimiters=delimiters,
    )
