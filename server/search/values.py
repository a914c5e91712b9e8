"""Turning FHIR element values into index rows: tokens, strings, references, date ranges.

Spec: https://hl7.org/fhir/R4/search.html (token, string, reference and date parameter semantics).
Dates become half-open-free closed ranges ``[low, high]`` of fixed-width UTC text so both engines compare
them as strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

LOW_SENTINEL = "0001-01-01T00:00:00.000000"
HIGH_SENTINEL = "9999-12-31T23:59:59.999999"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class TokenValue:
    system: str | None
    code: str


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    url: str | None


@dataclass(frozen=True)
class DateRange:
    low: str
    high: str


def timestamp(moment: datetime) -> str:
    """The fixed-width UTC text form every stored instant and date bound uses."""
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def parse_date_range(text: str) -> DateRange | None:
    """The instants a FHIR date, dateTime or instant covers (its precision makes it a range)."""
    match = _DATE.match(text.strip())
    if match is None:
        return None
    try:
        year = int(match["year"])
        if match["month"] is None:
            low = datetime(year, 1, 1, tzinfo=UTC)
            high = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
        elif match["day"] is None:
            month = int(match["month"])
            low = datetime(year, month, 1, tzinfo=UTC)
            high = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) if year < 9999 else None
        else:
            day = datetime(year, int(match["month"]), int(match["day"]), tzinfo=UTC)
            if match["hour"] is None:
                low, high = day, day + timedelta(days=1)
            else:
                offset = timedelta(0)
                tz = match["tz"]
                if tz and tz != "Z":
                    sign = 1 if tz[0] == "+" else -1
                    offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
                low = day.replace(hour=int(match["hour"]), minute=int(match["minute"])) - offset
                if match["second"] is None:
                    high = low + timedelta(minutes=1)
                else:
                    low = low.replace(second=int(match["second"]))
                    fraction = match["fraction"]
                    if fraction:
                        digits = fraction[1:7]
                        low = low.replace(microsecond=int(digits.ljust(6, "0")))
                        high = low + timedelta(microseconds=10 ** (6 - len(digits)))
                    else:
                        high = low + timedelta(seconds=1)
    except (ValueError, OverflowError):
        return None
    high_text = HIGH_SENTINEL if high is None else timestamp(high - timedelta(microseconds=1))
    return DateRange(timestamp(low), high_text)


def normalize(text: str) -> str:
    """String search normalisation: accents and case are ignored (https://hl7.org/fhir/R4/search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


_STRING_PARTS = ("text", "family", "given", "prefix", "suffix", "line", "city", "district", "state")
_STRING_PARTS_MORE = ("postalCode", "country", "display", "valueString", "value", "name")


def strings(value: Any) -> Iterator[str]:
    """The strings a string parameter matches: plain strings, HumanName and Address parts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in _STRING_PARTS + _STRING_PARTS_MORE:
            part = value.get(key)
            if isinstance(part, str):
                yield part
            elif isinstance(part, list):
                yield from (item for item in part if isinstance(item, str))


def tokens(value: Any) -> Iterator[TokenValue]:
    """Tokens of a code, Coding, CodeableConcept, Identifier, ContactPoint, boolean or uri."""
    if isinstance(value, bool):
        yield TokenValue(None, "true" if value else "false")
    elif isinstance(value, str | int):
        yield TokenValue(None, str(value))
    elif isinstance(value, dict):
        codings = value.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                yield from tokens(coding)
            return
        system = value.get("system")
        system = system if isinstance(system, str) else None
        code = value.get("code")
        if isinstance(code, str):
            yield TokenValue(system, code)
            return
        identifier_value = value.get("value")
        if isinstance(identifier_value, str):
            yield TokenValue(system, identifier_value)


def parse_reference(text: str) -> ReferenceValue:
    """Split a literal reference into target type and id (relative, absolute or versioned)."""
    if text.startswith(("urn:", "#")):
        return ReferenceValue(None, None, text)
    path = text.split("/_history/", 1)[0].rstrip("/")
    parts = path.split("/")
    absolute = "://" in text
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha():
        return ReferenceValue(parts[-2], parts[-1], text if absolute else None)
    return ReferenceValue(None, None, text)


def references(value: Any) -> Iterator[ReferenceValue]:
    """References of a Reference (literal only) or a canonical."""
    if isinstance(value, str):
        yield (
            parse_reference(value)
            if "/" in value and "://" not in value
            else ReferenceValue(None, None, value)
        )
    elif isinstance(value, dict):
        literal = value.get("reference")
        if isinstance(literal, str) and not literal.startswith("#"):
            yield parse_reference(literal)


def date_ranges(value: Any) -> Iterator[DateRange]:
    """Ranges of a date, dateTime, instant, Period or Timing."""
    if isinstance(value, str):
        parsed = parse_date_range(value)
        if parsed is not None:
            yield parsed
    elif isinstance(value, dict):
        if "start" in value or "end" in value:
            start = parse_date_range(value["start"]) if isinstance(value.get("start"), str) else None
            end = parse_date_range(value["end"]) if isinstance(value.get("end"), str) else None
            yield DateRange(start.low if start else LOW_SENTINEL, end.high if end else HIGH_SENTINEL)
        events = value.get("event")
        if isinstance(events, list):
            for event in events:
                yield from date_ranges(event)
