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
class Rules:
    segments: tuple[SegmentRule, ...]
    elements: dict[str, tuple[ElementRule, ...]]


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
    return Rules(segments, {k: tuple(v) for k, v in elements.items()})


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


def _check_element(rule: ElementRule, segment: Segment, loop: str, out: list[Issue]) -> None:
    value = segment.get(rule.element)
    if not value:
        if rule.required:
            out.append(_issue("required element is missing", segment, rule.source, rule.element, loop))
        return
    if rule.type == "C":
        return
    if not _type_ok(rule.type, value):
        out.append(
            _issue(f"{value!r} is not a valid {rule.type} value", segment, rule.source, rule.element, loop)
        )
        return
    length = len(value.lstrip("-").replace(".", "")) if rule.type == "R" else len(value)
    if rule.max and not rule.min <= length <= rule.max:
        out.append(
            _issue(
                f"length {length} outside {rule.min}..{rule.max}", segment, rule.source, rule.element, loop
            )
        )
    if rule.codes is not None and value not in rule.codes:
        out.append(_issue(f"code {value!r} is not allowed here", segment, rule.source, rule.element, loop))
    if segment.id == "DTP" and rule.element == 3:
        parts = value.split("-") if segment.get(2) == "RD8" else [value]
        if not all(_valid_date(p) for p in parts) or (segment.get(2) == "RD8" and len(parts) != 2):
            out.append(
                _issue(f"{value!r} is not a valid {segment.get(2)} date", segment, rule.source, 3, loop)
            )


def _check_loop(loop: Loop, mode: str, out: list[Issue]) -> None:
    all_rules = rules()
    for segment in loop.segments:
        for rule in all_rules.elements.get(segment.id, ()):
            if rule.applies not in ("both", mode) or (rule.loops and loop.id not in rule.loops):
                continue
            _check_element(rule, segment, loop.id, out)
    counts = Counter(s.id for s in loop.segments)
    anchor = loop.segments[0] if loop.segments else Segment(loop.id)
    for srule in all_rules.segments:
        if srule.loop != loop.id or srule.applies not in ("both", mode):
            continue
        n = counts.get(srule.segment, 0)
        if srule.required and n == 0 and not (srule.unless and counts.get(srule.unless, 0)):
            out.append(
                _issue(f"required segment {srule.segment} is missing", anchor, srule.source, loop=loop.id)
            )
        if srule.max is not None and n > srule.max:
            out.append(
                _issue(
                    f"{srule.segment} repeats {n} times, at most {srule.max}",
                    anchor,
                    srule.source,
                    loop=loop.id,
                )
            )
    for child in loop.loops:
        _check_loop(child, mode, out)


def validate_278(text: str) -> list[Issue]:
    """Check a 278 interchange against the envelope rules and the TR3 rules; an empty list means it passes.

    Malformed input (bad delimiters, counts, control numbers, HL nesting) becomes one issue, never an exception.
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
            try:
                tree = parse_loops(tx.segments)
            except X12Error as error:
                out.extend(error.issues)
                continue
            mode = "response" if tree.bht.get(2) == "11" else "request"
            for rule in rules().elements.get("BHT", ()):
                _check_element(rule, tree.bht, "", out)
            present = {loop.id for loop in tree.walk()}
            needed = ("2000A", "2000B", "2000C") + (("2000E",) if mode == "request" else ())
            for level in needed:
                if level not in present:
                    out.append(_issue(f"loop {level} is missing", tree.bht, "TR3 278 hierarchy"))
            for loop in tree.loops:
                _check_loop(loop, mode, out)
    return out
