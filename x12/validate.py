"""TR3 checks for 278 interchanges, driven by ``x12/rules/x217.toml`` (each rule carries its source).

Spec: 005010X217 / 005010X215 section 2.3 segment and element attributes (see the source note per rule).
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

from igs.outcome import Issue
from x12.codec import Segment
from x12.codes import code_lists
from x12.envelope import parse_interchange
from x12.errors import X12Error
from x12.loops import Loop, parse_loops


@dataclass(frozen=True)
class SegmentRule:
    loop: str
    segment: str
    required: bool
    max: int | None
    applies: str
    unless: str
    source: str


@dataclass(frozen=True)
class ElementRule:
    segment: str
    element: int
    required: bool
    type: str
    min: int
    max: int
    codes: frozenset[str] | None
    loops: frozenset[str]
    applies: str
    source: str

    @property
    def name(self) -> str:
        return f"{self.segment}{self.element:02d}"


@dataclass(frozen=True)
class Finding:
    """One TR3 violation, kept structured so a 999 can report it (IK3/IK4) and an Issue can describe it."""

    message: str
    segment: Segment
    source: str
    element: int | None = None
    loop: str = ""
    segment_error: str = "8"  # IK304 (620): 3 required segment missing, 5 exceeds max use, 8 element errors
    element_error: str = ""  # IK403 (621): 1 missing, 4 too short, 5 too long, 7 invalid code, 8 date, 6 char

    def issue(self) -> Issue:
        return _issue(self.message, self.segment, self.source, self.element, self.loop)


@dataclass(frozen=True)
class CompositeRule:
    """A code list on one component of a composite; ``element`` 0 means every element of the segment."""

    segment: str
    element: int
    component: int
    codes: frozenset[str]
    source: str


@dataclass(frozen=True)
class Rules:
    segments: tuple[SegmentRule, ...]
    elements: dict[str, tuple[ElementRule, ...]]
    composites: dict[str, tuple[CompositeRule, ...]]


def _codes(raw: Any) -> frozenset[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return frozenset(code_lists()[raw])
    return frozenset(str(x) for x in raw)


@cache
def rules() -> Rules:
    """The TR3 rules from x12/rules/x217.toml."""
    raw = tomllib.loads(files("x12").joinpath("rules/x217.toml").read_text("utf-8"))
    segments = tuple(
        SegmentRule(
            r["loop"],
            r["segment"],
            bool(r.get("required", False)),
            r.get("max"),
            r.get("applies", "both"),
            r.get("unless", ""),
            r["source"],
        )
        for r in raw["segment"]
    )
    elements: dict[str, list[ElementRule]] = {}
    for r in raw["element"]:
        rule = ElementRule(
            r["segment"],
            int(r["element"]),
            bool(r.get("required", False)),
            r["type"],
            int(r.get("min", 0)),
            int(r.get("max", 0)),
            _codes(r.get("codes")),
            frozenset(r.get("loops", ())),
            r.get("applies", "both"),
            r["source"],
        )
        elements.setdefault(rule.segment, []).append(rule)
    composites: dict[str, list[CompositeRule]] = {}
    for r in raw.get("composite", ()):
        codes = _codes(r["codes"])
        assert codes is not None
        crule = CompositeRule(r["segment"], int(r.get("element", 0)), int(r["component"]), codes, r["source"])
        composites.setdefault(crule.segment, []).append(crule)
    return Rules(
        segments,
        {k: tuple(v) for k, v in elements.items()},
        {k: tuple(v) for k, v in composites.items()},
    )


def _issue(
    message: str, segment: Segment, rule_source: str, element: int | None = None, loop: str = ""
) -> Issue:
    where = f"segment {segment.position} ({segment.id})"
    expr = f"segment[{segment.position}].{segment.id}"
    if element is not None:
        where += f", element {segment.id}{element:02d}"
        expr += f"{element:02d}"
    if loop:
        where = f"loop {loop}, {where}"
    return Issue(diagnostics=f"{where}: {message} [{rule_source}]", code="value", expression=(expr,))


def _valid_date(value: str) -> bool:
    if len(value) != 8 or not value.isdigit():
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return False
    return True


def _type_ok(kind: str, value: str) -> bool:
    if kind == "DT":
        return _valid_date(value)
    if kind == "TM":
        return value.isdigit() and len(value) in (4, 6, 7, 8) and int(value[:2]) < 24 and int(value[2:4]) < 60
    if kind == "N0":
        return value.isdigit()
    if kind == "R":
        body = value.lstrip("-")
        return bool(body) and body.replace(".", "", 1).isdigit()
    return value.isprintable()


def _check_element(rule: ElementRule, segment: Segment, loop: str, out: list[Finding]) -> None:
    value = segment.get(rule.element)
    n = rule.element
    if not value:
        if rule.required:
            out.append(
                Finding("required element is missing", segment, rule.source, n, loop, element_error="1")
            )
        return
    if rule.type == "C":
        return
    if not _type_ok(rule.type, value):
        kind = {"DT": "8", "TM": "9"}.get(rule.type, "6")
        message = f"{value!r} is not a valid {rule.type} value"
        out.append(Finding(message, segment, rule.source, n, loop, element_error=kind))
        return
    length = len(value.lstrip("-").replace(".", "")) if rule.type == "R" else len(value)
    if rule.max and not rule.min <= length <= rule.max:
        kind = "4" if length < rule.min else "5"
        message = f"length {length} outside {rule.min}..{rule.max}"
        out.append(Finding(message, segment, rule.source, n, loop, element_error=kind))
    if rule.codes is not None and value not in rule.codes:
        out.append(
            Finding(f"code {value!r} is not allowed here", segment, rule.source, n, loop, element_error="7")
        )
    if segment.id == "DTP" and n == 3:
        parts = value.split("-") if segment.get(2) == "RD8" else [value]
        if not all(_valid_date(p) for p in parts) or (segment.get(2) == "RD8" and len(parts) != 2):
            message = f"{value!r} is not a valid {segment.get(2)} date"
            out.append(Finding(message, segment, rule.source, 3, loop, element_error="8"))


def _check_loop(loop: Loop, mode: str, out: list[Finding]) -> None:
    all_rules = rules()
    for segment in loop.segments:
        for rule in all_rules.elements.get(segment.id, ()):
            if rule.applies not in ("both", mode) or (rule.loops and loop.id not in rule.loops):
                continue
            _check_element(rule, segment, loop.id, out)
        for crule in all_rules.composites.get(segment.id, ()):
            positions = [crule.element] if crule.element else range(1, len(segment.elements) + 1)
            for n in positions:
                parts = segment.composite(n)
                if len(parts) >= crule.component and parts[crule.component - 1] not in crule.codes:
                    value = parts[crule.component - 1]
                    message = f"component {crule.component}: code {value!r} is not allowed here"
                    out.append(Finding(message, segment, crule.source, n, loop.id, element_error="7"))
    counts = Counter(s.id for s in loop.segments)
    anchor = loop.segments[0] if loop.segments else Segment(loop.id)
    for srule in all_rules.segments:
        if srule.loop != loop.id or srule.applies not in ("both", mode):
            continue
        n = counts.get(srule.segment, 0)
        if srule.required and n == 0 and not (srule.unless and counts.get(srule.unless, 0)):
            missing = Segment(srule.segment, (), anchor.position)
            message = f"required segment {srule.segment} is missing"
            out.append(Finding(message, missing, srule.source, loop=loop.id, segment_error="3"))
        if srule.max is not None and n > srule.max:
            extra = [s for s in loop.segments if s.id == srule.segment][srule.max]
            message = f"{srule.segment} repeats {n} times, at most {srule.max}"
            out.append(Finding(message, extra, srule.source, loop=loop.id, segment_error="5"))
    for child in loop.loops:
        _check_loop(child, mode, out)


def check_transaction(segments: tuple[Segment, ...]) -> list[Finding]:
    """TR3 findings for one 278 body (segments between ST and SE)."""
    out: list[Finding] = []
    try:
        tree = parse_loops(segments)
    except X12Error as error:
        anchor = segments[0] if segments else Segment("BHT")
        for issue in error.issues:
            out.append(Finding(issue.diagnostics, anchor, "TR3 278 hierarchy", segment_error="2"))
        return out
    mode = "response" if tree.bht.get(2) == "11" else "request"
    for rule in rules().elements.get("BHT", ()):
        _check_element(rule, tree.bht, "", out)
    present = {loop.id for loop in tree.walk()}
    needed = ("2000A", "2000B", "2000C") + (("2000E",) if mode == "request" else ())
    for level in needed:
        if level not in present:
            out.append(
                Finding(
                    f"loop {level} is missing",
                    Segment("HL", (), tree.bht.position),
                    "TR3 278 hierarchy",
                    segment_error="3",
                )
            )
    for loop in tree.loops:
        _check_loop(loop, mode, out)
    return out


def validate_278(text: str) -> list[Issue]:
    """Check a 278 interchange against the envelope rules and the TR3 rules; an empty list means it passes.

    Malformed input (delimiters, counts, control numbers, HL nesting) becomes one issue, never an exception.
    """
    try:
        interchange = parse_interchange(text)
    except X12Error as error:
        return list(error.issues)
    out: list[Issue] = []
    if not interchange.transactions:
        out.append(Issue(diagnostics="the interchange holds no transaction set", code="required"))
    for group in interchange.groups:
        for tx in group.transactions:
            if tx.set_id != "278":
                continue
            if tx.implementation not in ("005010X217", "005010X215"):
                out.append(
                    Issue(
                        diagnostics=f"segment {tx.position} (ST), element ST03: {tx.implementation!r} "
                        "is not 005010X217 or 005010X215",
                        expression=(f"segment[{tx.position}].ST03",),
                    )
                )
            if group.version != tx.implementation:
                out.append(
                    Issue(
                        diagnostics=f"segment {group.position} (GS), element GS08: {group.version!r} "
                        f"differs from ST03 {tx.implementation!r}",
                        expression=(f"segment[{group.position}].GS08",),
                    )
                )
            out.extend(f.issue() for f in check_transaction(tx.segments))
    return out
