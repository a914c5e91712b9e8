"""Segment-aware fuzzing of the X12 278 reader: whole segments dropped, repeated, moved or given odd
element values, and very long interchanges. Whatever the input, every entry point either works or raises
X12Error (which the bridge maps to a 4xx or a rejection), never anything else.

tests/x12/test_properties.py mutates characters; here the mutations keep the delimiters intact, so the
input gets past tokenizing and exercises the loop parser, the TR3 reader and the response mapping.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from x12 import (
    X12Error,
    parse_interchange,
    read_authorization,
    read_response,
    response_278_to_bundle,
    validate_278,
)

NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parent.parent / "x12" / "golden"
SAMPLES = sorted(p.read_text("utf-8") for p in GOLDEN.glob("*/*.x12"))
ODD_ELEMENTS = [
    "",
    " ",
    "X" * 300,
    "é",
    "0",
    "-1",
    "99999999999999999999",
    "20261399",
    "2026-01-01",
    "*",
    "::",
]

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def only_x12_errors(text: str) -> None:
    """Every reader either works or raises X12Error."""
    try:
        interchange = parse_interchange(text)
        for tx in interchange.transactions:
            read_authorization(tx.segments, tx.implementation)
    except X12Error:
        pass
    for call in (
        lambda: read_response(text),
        lambda: response_278_to_bundle(text, {"resourceType": "Bundle", "entry": []}, now=NOW),
    ):
        try:
            call()
        except X12Error:
            pass
    assert isinstance(validate_278(text), list)


def split(text: str) -> tuple[str, str, list[str]]:
    """(element separator, segment terminator, segments) from the ISA header."""
    element, terminator = text[3], text[105]
    return element, terminator, [s for s in text.split(terminator) if s.strip()]


@FUZZ
@given(data=st.data(), sample=st.sampled_from(SAMPLES))
def test_segment_mutations(data: st.DataObject, sample: str) -> None:
    element, terminator, segments = split(sample)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        # the ISA (index 0) stays, so the delimiters are still declared
        index = data.draw(st.integers(1, len(segments) - 1), label="segment")
        operation = data.draw(st.sampled_from(["drop", "repeat", "move", "element", "truncate"]))
        if operation == "drop":
            del segments[index]
        elif operation == "repeat":
            segments.insert(index, segments[index])
        elif operation == "move":
            segments.insert(data.draw(st.integers(1, len(segments) - 1)), segments.pop(index))
        elif operation == "element":
            parts = segments[index].split(element)
            position = data.draw(st.integers(1, max(1, len(parts) - 1)))
            value = data.draw(st.sampled_from(ODD_ELEMENTS) | st.text(max_size=10))
            parts[min(position, len(parts) - 1)] = value.replace(terminator, "")
            segments[index] = element.join(parts)
        else:
            segments[index] = segments[index][: data.draw(st.integers(0, len(segments[index])))]
        if len(segments) < 2:
            break
    only_x12_errors(terminator.join(segments) + terminator)


def test_a_long_interchange_is_read_or_refused() -> None:
    """Thousands of repeated service lines: read or refused with X12Error, in bounded time and memory."""
    element, terminator, segments = split(next(s for s in SAMPLES if "*HI*" in s))
    body = [s for s in segments if s.startswith(("HI", "SV1", "DTP", "REF"))] or segments[4:6]
    text = terminator.join(segments[:-3] + body * 2000 + segments[-3:]) + terminator
    assert len(text) > 50_000
    only_x12_errors(text)
