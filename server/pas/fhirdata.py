"""Small readers and builders for FHIR JSON values (extensions, codings, identifiers)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Code:
    """A coding reduced to what decisions need: system and code (display kept for echoing)."""

    system: str | None
    code: str
    display: str | None = None

    def to_fhir(self) -> Json:
        out: Json = {}
        if self.system:
            out["system"] = self.system
        out["code"] = self.code
        if self.display:
            out["display"] = self.display
        return out

    def concept(self) -> Json:
        return {"coding": [self.to_fhir()]}


@dataclass(frozen=True)
class Ident:
    """An Identifier reduced to system and value."""

    system: str | None
    value: str

    def to_fhir(self) -> Json:
        out: Json = {}
        if self.system:
            out["system"] = self.system
        out["value"] = self.value
        return out

    def token(self) -> str:
        return f"{self.system or ''}|{self.value}"


@dataclass(frozen=True)
class Period:
    """A date or dateTime range as ISO strings (FHIR precision kept; comparison is by prefix date)."""

    start: str | None = None
    end: str | None = None

    def to_fhir(self) -> Json:
        out: Json = {}
        if self.start:
            out["start"] = self.start
        if self.end:
            out["end"] = self.end
        return out

    def overlaps(self, other: Period) -> bool:
        """Closed-interval overlap on the date part; an open end is unbounded."""
        a0, a1 = _day(self.start), _day(self.end)
        b0, b1 = _day(other.start), _day(other.end)
        return (a1 is None or b0 is None or b0 <= a1) and (b1 is None or a0 is None or a0 <= b1)


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")


def instant(moment: datetime) -> str:
    """A FHIR instant: a naive datetime is taken as UTC, since FHIR times need a zone."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).isoformat()


def is_fhir_date(value: str) -> bool:
    """True for a FHIR date or dateTime prefix that names a real calendar day (YYYY-MM-DD...)."""
    if _DATE.match(value) is None or len(value) < 10:
        return len(value) in (4, 7) and _DATE.fullmatch(value) is not None
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def first_day(value: str | None) -> date | None:
    """The first calendar day a FHIR date or dateTime covers (``2026`` -> 2026-01-01), or None."""
    if not value or not is_fhir_date(value):
        return None
    parts = value[:10].split("-")
    return date(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else 1)


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_list(value: Any) -> list[Any]:
    """A JSON array, or an empty list when the element is absent or not an array."""
    return value if isinstance(value, list) else []


def as_map(value: Any) -> Mapping[str, Any]:
    """A JSON object, or an empty mapping when the element is absent or not an object."""
    return value if isinstance(value, Mapping) else {}


def items_of(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array (non-objects dropped)."""
    return [v for v in as_list(value) if isinstance(v, Mapping)]


def extensions(node: Mapping[str, Any] | None, url: str, *, modifier: bool = False) -> Iterator[Json]:
    if not node:
        return
    if not isinstance(node, Mapping):
        return
    for ext in as_list(node.get("modifierExtension" if modifier else "extension")):
        if isinstance(ext, dict) and ext.get("url") == url:
            yield ext


def extension(node: Mapping[str, Any] | None, url: str, *, modifier: bool = False) -> Json | None:
    return next(extensions(node, url, modifier=modifier), None)


def ext_value(node: Mapping[str, Any] | None, url: str, *, modifier: bool = False) -> Any:
    """The ``value[x]`` of the first extension with this url, or None."""
    ext = extension(node, url, modifier=modifier)
    if ext is None:
        return None
    for key, value in ext.items():
        if key.startswith("value"):
            return value
    return None


def first_code(concept: Any, system: str | None = None) -> Code | None:
    """The first coding of a CodeableConcept (optionally from one system)."""
    if not isinstance(concept, Mapping):
        return None
    for coding in as_list(concept.get("coding")):
        if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
            continue
        if system is None or coding.get("system") == system:
            return Code(opt_str(coding.get("system")), coding["code"], opt_str(coding.get("display")))
    return None


def codes(concept: Any) -> tuple[Code, ...]:
    if not isinstance(concept, Mapping):
        return ()
    return tuple(
        Code(opt_str(c.get("system")), c["code"], opt_str(c.get("display")))
        for c in as_list(concept.get("coding"))
        if isinstance(c, Mapping) and isinstance(c.get("code"), str)
    )


def ident(raw: Any) -> Ident | None:
    if isinstance(raw, Mapping) and isinstance(raw.get("value"), str):
        system = raw.get("system")
        return Ident(system if isinstance(system, str) else None, raw["value"])
    return None


def idents(raw: Any) -> tuple[Ident, ...]:
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        return ()
    return tuple(i for i in (ident(r) for r in raw) if i is not None)


def period(raw: Any) -> Period | None:
    if isinstance(raw, Mapping):
        start, end = raw.get("start"), raw.get("end")
        return Period(start if isinstance(start, str) else None, end if isinstance(end, str) else None)
    if isinstance(raw, str):
        return Period(raw, raw)
    return None


def json_number(value: Decimal | int | float) -> int | float:
    """A Decimal as a JSON number orjson can write: exact for integers, shortest repr otherwise."""
    number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    return int(number) if number == number.to_integral_value() else float(number)


def ext(url: str, **value: Any) -> Json:
    """Build an extension: ``ext(URL, valueString="x")``."""
    return {"url": url, **value}


def complex_ext(url: str, parts: Sequence[Json]) -> Json:
    return {"extension": list(parts), "url": url}


def reference(target: str, display: str | None = None) -> Json:
    out: Json = {"reference": target}
    if display:
        out["display"] = display
    return out
