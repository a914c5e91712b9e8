"""The 278 loop tree: HL levels (2000A..2000F) and their name loops (2010A..2010F), named as in the TR3.

Spec: 005010X217 and 005010X215 section 2.3 (transaction set listing): HL03 20 = 2000A UMO, 21 = 2000B
requester, 22 = 2000C subscriber, 23 = 2000D dependent, EV = 2000E patient event, SS = 2000F service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from x12.codec import Segment
from x12.errors import X12Error

HL_LEVEL_LOOPS = MappingProxyType(
    {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D", "EV": "2000E", "SS": "2000F"}
)
LOOP_PARENT_LEVELS = MappingProxyType(
    {
        "2000A": (),
        "2000B": ("2000A",),
        "2000C": ("2000B",),
        "2000D": ("2000C",),
        "2000E": ("2000C", "2000D"),
        "2000F": ("2000E",),
    }
)
# 2000E name loops: 2010EA patient event provider, 2010EB transport, 2010EC other UMO (by NM101).
EVENT_TRANSPORT_ENTITIES = frozenset({"45", "FS", "ND", "PW", "R3"})
EVENT_OTHER_UMO_ENTITIES = frozenset({"L5"})


@dataclass(frozen=True)
class Loop:
    """A loop: its TR3 id, its own segments (starting with HL or NM1) and its nested loops."""

    id: str
    segments: tuple[Segment, ...]
    loops: tuple[Loop, ...] = ()

    def first(self, segment_id: str) -> Segment | None:
        for segment in self.segments:
            if segment.id == segment_id:
                return segment
        return None

    def all(self, segment_id: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.id == segment_id]

    def children(self, *loop_ids: str) -> list[Loop]:
        return [
            loop for loop in self.loops if loop.id in loop_ids or any(loop.id.startswith(x) for x in loop_ids)
        ]

    def walk(self) -> Iterator[Loop]:
        yield self
        for loop in self.loops:
            yield from loop.walk()


@dataclass(frozen=True)
class Transaction278:
    """A 278 body: the BHT and the HL tree rooted at 2000A loops."""

    bht: Segment
    loops: tuple[Loop, ...]

    def walk(self) -> Iterator[Loop]:
        for loop in self.loops:
            yield from loop.walk()

    def level(self, loop_id: str) -> list[Loop]:
        return [loop for loop in self.walk() if loop.id == loop_id]


def _name_loop_id(level: str, nm1: Segment) -> str:
    if level == "2000E":
        entity = nm1.get(1)
        if entity in EVENT_TRANSPORT_ENTITIES:
            return "2010EB"
        if entity in EVENT_OTHER_UMO_ENTITIES:
            return "2010EC"
        return "2010EA"
    return "2010" + level[-1]


def _split_level(level: str, segments: Sequence[Segment]) -> Loop:
    own: list[Segment] = []
    names: list[Loop] = []
    current: list[Segment] | None = None
    for segment in segments:
        if segment.id == "NM1":
            current = [segment]
            names.append(Loop(_name_loop_id(level, segment), ()))
            names[-1] = Loop(names[-1].id, tuple(current))
            continue
        if current is not None:
            current.append(segment)
            names[-1] = Loop(names[-1].id, tuple(current))
        else:
            own.append(segment)
    return Loop(level, tuple(own), tuple(names))


def parse_loops(segments: Sequence[Segment]) -> Transaction278:
    """Build the HL tree of a 278 body (segments between ST and SE); HL01/HL02 must nest as the TR3 says."""
    if not segments or segments[0].id != "BHT":
        first = segments[0] if segments else None
        raise X12Error.at(
            "a 278 transaction must start with BHT",
            position=first.position if first else None,
            segment_id=first.id if first else "BHT",
        )
    bht = segments[0]
    # Group segments into HL levels.
    levels: list[tuple[Segment, list[Segment]]] = []
    for segment in segments[1:]:
        if segment.id == "HL":
            levels.append((segment, [segment]))
        elif not levels:
            raise X12Error.at("segment before the first HL", position=segment.position, segment_id=segment.id)
        else:
            levels[-1][1].append(segment)
    if not levels:
        raise X12Error.at("a 278 needs HL loops 2000A to 2000E", position=bht.position, segment_id="BHT")
    roots: list[Loop] = []
    built: dict[str, Loop] = {}
    children: dict[str, list[str]] = {}
    order: list[str] = []
    loop_ids: dict[str, str] = {}
    for hl, body in levels:
        hl_id, parent, code = hl.get(1), hl.get(2), hl.get(3)
        if not hl_id:
            raise X12Error.at(
                "HL01 hierarchical id is missing", position=hl.position, segment_id="HL", element=1
            )
        if hl_id in loop_ids:
            raise X12Error.at(f"HL01 {hl_id!r} repeats", position=hl.position, segment_id="HL", element=1)
        level = HL_LEVEL_LOOPS.get(code)
        if level is None:
            raise X12Error.at(
                f"HL03 level code {code!r} is not a 278 level",
                position=hl.position,
                segment_id="HL",
                element=3,
            )
        allowed = LOOP_PARENT_LEVELS[level]
        if allowed:
            if parent not in loop_ids:
                raise X12Error.at(
                    f"HL02 parent {parent!r} is not an earlier HL",
                    position=hl.position,
                    segment_id="HL",
                    element=2,
                )
            if loop_ids[parent] not in allowed:
                raise X12Error.at(
                    f"{level} cannot be under {loop_ids[parent]}",
                    position=hl.position,
                    segment_id="HL",
                    element=2,
                )
            children[parent].append(hl_id)
        elif parent:
            raise X12Error.at(
                "2000A must not have a parent", position=hl.position, segment_id="HL", element=2
            )
        loop_ids[hl_id] = level
        children[hl_id] = []
        order.append(hl_id)
        built[hl_id] = _split_level(level, body)

    def assemble(hl_id: str) -> Loop:
        loop = built[hl_id]
        return Loop(loop.id, loop.segments, loop.loops + tuple(assemble(child) for child in children[hl_id]))

    for hl_id in order:
        if loop_ids[hl_id] == "2000A":
            roots.append(assemble(hl_id))
    return Transaction278(bht, tuple(roots))
