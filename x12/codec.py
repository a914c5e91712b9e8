"""The X12 tokenizer and writer: delimiters from the ISA, segments, elements, components.

Spec: ASC X12 5010 Control Segments (ISA is fixed width, 106 characters; ISA16 is the component separator,
ISA11 the repetition separator, the character after ISA16 the segment terminator).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from x12.errors import X12Error

ISA_LENGTH = 106  # "ISA" + 16 elements and 16 separators, up to and including the segment terminator
# The fixed widths of ISA01..ISA16 (X12.5 control segments).
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)


@dataclass(frozen=True)
class Delimiters:
    """The four separators an interchange declares in its ISA."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"


DEFAULT_DELIMITERS = Delimiters()


@dataclass(frozen=True)
class Segment:
    """One segment: its id and its elements (element 1 is ``elements[0]``), raw text between separators.

    ``position`` is the 1-based segment number in the interchange (0 for segments built in memory).
    """

    id: str
    elements: tuple[str, ...] = ()
    position: int = 0

    def get(self, n: int) -> str:
        """Element ``n`` (1-based, as the TR3 counts: NM109 is ``get(9)``), ``""`` when absent."""
        if n < 1:
            return ""
        try:
            return self.elements[n - 1]
        except IndexError:
            return ""

    def composite(self, n: int, component: str = ":") -> tuple[str, ...]:
        """The components of composite element ``n``."""
        raw = self.get(n)
        return tuple(raw.split(component)) if raw else ()


def seg(segment_id: str, *elements: str | Sequence[str] | None) -> Segment:
    """Build a segment; ``None`` is an empty element, a sequence is a composite; trailing empties dropped.

    Delimiter characters inside data (``* : ^ ~`` and line breaks) become spaces: X12 data cannot carry them.
    """
    parts = [
        element if element.__class__ is str else ("" if element is None else _composite(element))
        for element in elements
    ]
    while parts and not parts[-1]:
        parts.pop()
    texts = [e for e in elements if e.__class__ is str]
    if texts and _UNSAFE.search("".join(texts)):
        parts = [
            p.translate(_CLEAN) if e.__class__ is str else p for p, e in zip(parts, elements, strict=False)
        ]
    return Segment(segment_id, tuple(parts))


_UNSAFE = re.compile(r"[*:^~\r\n]")
_CLEAN = str.maketrans("*:^~\r\n", "      ")


def _composite(components: Sequence[str]) -> str:
    comps = [c.translate(_CLEAN) for c in components]
    while comps and not comps[-1]:
        comps.pop()
    return ":".join(comps)


_SEGMENT_ID = re.compile(r"[A-Z0-9]{2,3}")


def _valid_id(segment_id: str) -> bool:
    return _SEGMENT_ID.fullmatch(segment_id) is not None


def read_delimiters(text: str) -> Delimiters:
    """Read the delimiters from the fixed-width ISA at the start of ``text``."""
    if not text.startswith("ISA"):
        raise X12Error.at(
            f"an interchange must start with ISA, found {text[:3]!r}", position=1, segment_id="ISA"
        )
    if len(text) < ISA_LENGTH:
        raise X12Error.at(
            f"truncated ISA: {len(text)} characters, the ISA is {ISA_LENGTH}", position=1, segment_id="ISA"
        )
    element = text[3]
    component = text[104]
    terminator = text[105]
    fields = text[4:103].split(element)
    if len(fields) != 15:
        raise X12Error.at(
            f"ISA must have 16 fixed-width elements separated by {element!r}, found {len(fields) + 1}",
            position=1,
            segment_id="ISA",
        )
    for index, (value, width) in enumerate(zip(fields, ISA_WIDTHS, strict=False), start=1):
        if len(value) != width:
            raise X12Error.at(
                f"fixed-width element must be {width} characters, found {len(value)}",
                position=1,
                segment_id="ISA",
                element=index,
            )
    repetition = fields[10]
    separators = (element, component, terminator)
    if element.isalnum() or component.isalnum() or terminator.isalnum() or len(set(separators)) != 3:
        raise X12Error.at(
            "element separator, component separator (ISA16) and segment terminator must be distinct "
            "non-alphanumeric characters",
            position=1,
            segment_id="ISA",
            element=16,
        )
    if repetition in separators or repetition.isalnum() or repetition == " ":
        # ISA11 is the repetition separator from 00501 on; a letter means an older 'U' standards id.
        raise X12Error.at(
            f"repetition separator {repetition!r} must be a distinct special character",
            position=1,
            segment_id="ISA",
            element=11,
        )
    return Delimiters(element, component, repetition, terminator)


def tokenize(text: str) -> tuple[Delimiters, list[Segment]]:
    """Split an interchange into segments, delimiters read from its ISA; line breaks between them ignored."""
    if not isinstance(text, str):
        raise X12Error.at("an interchange must be text")
    text = text.lstrip("\ufeff \t\r\n")
    delimiters = read_delimiters(text)
    fast = _tokenize_fast(text, delimiters)
    return delimiters, fast if fast is not None else _tokenize_checked(text, delimiters)


def _swap(delimiters: Delimiters) -> dict[int, int] | None:
    # Composites are held with ':' inside; a different component separator is swapped with ':' both ways.
    if delimiters.component == ":":
        return None
    return str.maketrans(delimiters.component + ":", ":" + delimiters.component)


def _tokenize_fast(text: str, delimiters: Delimiters) -> list[Segment] | None:
    """The common case in a few C-level passes; None when anything looks off (the checked path explains)."""
    term = delimiters.segment
    body = text
    if term not in "\r\n":
        body = text.replace(term + "\r\n", term).replace(term + "\n", term)
        if ("\n" in body or "\r" in body) and any(c in body.rstrip("\r\n \t") for c in "\r\n"):
            return None
    raw_segments = body.split(term)
    if raw_segments[-1].strip("\r\n \t"):
        return None
    raw_segments.pop()
    if "" in raw_segments:
        return None
    element = delimiters.element
    split = [raw.split(element) for raw in raw_segments]
    valid_id = _SEGMENT_ID.fullmatch
    if any(valid_id(segment_id) is None for segment_id in {parts[0] for parts in split}):
        return None
    swap = _swap(delimiters)
    if swap is not None:
        split = [parts if parts[0] == "ISA" else [p.translate(swap) for p in parts] for parts in split]
    return [Segment(parts[0], tuple(parts[1:]), index) for index, parts in enumerate(split, start=1)]


def _tokenize_checked(text: str, delimiters: Delimiters) -> list[Segment]:
    """Segment by segment, raising the precise error for the first problem."""
    raw_segments = text.split(delimiters.segment)
    segments: list[Segment] = []
    element = delimiters.element
    swap = _swap(delimiters)
    for index, raw in enumerate(raw_segments, start=1):
        raw = raw.strip("\r\n")
        if not raw:
            if index == len(raw_segments):
                break
            raise X12Error.at("empty segment", position=index, segment_id="")
        if "\n" in raw or "\r" in raw:
            head = raw.split(element, 1)[0]
            raise X12Error.at(
                f"line break inside a segment: is a {delimiters.segment!r} segment terminator missing?",
                position=index,
                segment_id=head if _valid_id(head) else None,
            )
        parts = raw.split(element)
        segment_id = parts[0]
        if not _valid_id(segment_id):
            raise X12Error.at(
                f"invalid segment id {segment_id[:10]!r} (2 or 3 upper-case letters or digits)",
                position=index,
                segment_id=segment_id[:3] if _valid_id(segment_id[:3]) else None,
            )
        if swap is not None and segment_id != "ISA":
            parts = [part.translate(swap) for part in parts]
        segments.append(Segment(segment_id, tuple(parts[1:]), index))
    if raw_segments[-1].strip("\r\n \t"):
        last = segments[-1]
        raise X12Error.at(
            "the last segment is not terminated (truncated input?)",
            position=last.position,
            segment_id=last.id,
        )
    return segments


def write_segments(
    segments: Iterable[Segment], delimiters: Delimiters = DEFAULT_DELIMITERS, *, newline: bool = True
) -> str:
    """Render segments; ``:`` inside composites becomes the interchange's component separator."""
    end = delimiters.segment + ("\n" if newline else "")
    element = delimiters.element
    swap = (
        str.maketrans({delimiters.component: ":", ":": delimiters.component})
        if delimiters.component != ":"
        else None
    )
    # Custom delimiters may clash with data that the default ones allow; such characters become spaces.
    clean = (
        str.maketrans({c: " " for c in (delimiters.element, delimiters.repetition, delimiters.segment)})
        if delimiters != DEFAULT_DELIMITERS
        else None
    )
    out: list[str] = []
    for segment in segments:
        if segment.elements:
            elements = segment.elements
            if clean is not None and segment.id != "ISA":
                elements = tuple(e.translate(clean) for e in elements)
            body = element.join(elements)
            if swap is not None and segment.id != "ISA":
                body = body.translate(swap)
            out.append(segment.id + element + body + end)
        else:
            out.append(segment.id + end)
    return "".join(out)
