"""FHIR JSON on the wire: orjson, ``application/fhir+json``, ``_pretty``, exact decimals.

FHIR decimals keep their precision (https://hl7.org/fhir/R4/json.html#primitive: ``1.50`` is not ``1.5``),
so request bodies are parsed with every JSON number that has a fraction or exponent kept as a
:class:`JsonDecimal` remembering its source text, and written back with that exact text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response

from igs.outcome import Failure, OperationOutcomeError, invalid

FHIR_JSON = "application/fhir+json"
JSON_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir", "json"})
XML_MEDIA_TYPES = frozenset(
    {
        "application/fhir+xml",
        "application/xml",
        "text/xml",
        "application/xml+fhir",
        "xml",
        "html",
        "text/html",
    }
)


class JsonDecimal(Decimal):
    """A JSON number with a fraction or exponent, remembering its exact source text."""

    text: str

    def __new__(cls, text: str) -> JsonDecimal:
        number = super().__new__(cls, text)
        number.text = text
        return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _default(value: Any) -> Any:
    if isinstance(value, JsonDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _integer(text: str) -> int | JsonDecimal:
    """An integer as int, unless orjson could not write it back (beyond 64 bits): then kept as exact text
    like a decimal (FHIR integers are 32-bit, so such a value only ever fails validation, never a write)."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else JsonDecimal(text)


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping decimals exact; raise a 400 OperationOutcomeError on anything malformed."""
    try:
        return json.loads(raw, parse_float=JsonDecimal, parse_int=_integer, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid(f"The body is not valid JSON: {exc}", code="structure") from None


def dumps(resource: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(resource, default=_default, option=option)


def embed(raw: bytes, *, pretty: bool = False) -> Any:
    """A stored resource's bytes as a value for :func:`dumps`: spliced as-is, or re-parsed to indent."""
    return loads(raw) if pretty else orjson.Fragment(raw)


# Nested objects and arrays a request body may have. Real resources stay far below (a Bundle holding a
# Questionnaire with 20 levels of nested items is about 50); deeper input would exhaust the stack of
# the recursive code that reads it (copying, validation) or orjson's limit of 254 when it is stored.
MAX_NESTING = 128


def check_nesting(value: Any, limit: int = MAX_NESTING) -> None:
    """Raise a 400 when parsed JSON nests more than ``limit`` arrays and objects (level by level, so no
    recursion; about a third of the parse time of the same body)."""
    level: list[Any] = [value]
    depth = 1
    while level:
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below += [c for c in children if type(c) is dict or type(c) is list]
        if below and depth >= limit:
            raise invalid(f"The body nests more than {limit} levels deep", code="too-costly")
        level = below
        depth += 1


def parse_resource(raw: bytes, expected_type: str | None = None) -> dict[str, Any]:
    """Parse a request body that must be one FHIR resource (https://hl7.org/fhir/R4/json.html)."""
    if not raw.strip():
        raise invalid("The request body is empty; a FHIR resource is required", code="required")
    value = loads(raw)
    if not isinstance(value, dict):
        raise invalid("The body is not a FHIR resource: a JSON object is required", code="structure")
    check_nesting(value)
    resource_type = value.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise invalid("The body is not a FHIR resource: it has no resourceType", "resourceType")
    if expected_type is not None and resource_type != expected_type:
        raise invalid(
            f"The body is a {resource_type} but the URL is for {expected_type}",
            "resourceType",
            code="invalid",
        )
    return value


def media_type(header: str) -> str:
    """The bare media type of a Content-Type or one Accept item, lower case, without parameters."""
    return header.split(";", 1)[0].strip().lower()


def require_json_body(content_type: str | None) -> None:
    """Refuse bodies that are not FHIR JSON: XML gets a clear 415 (https://hl7.org/fhir/R4/http.html#mime-type)."""
    if not content_type:
        return
    kind = media_type(content_type)
    if kind in JSON_MEDIA_TYPES:
        return
    if kind in XML_MEDIA_TYPES:
        raise OperationOutcomeError.of(
            Failure.UNSUPPORTED_MEDIA_TYPE, "FHIR XML is not supported yet; send application/fhir+json"
        )
    raise OperationOutcomeError.of(
        Failure.UNSUPPORTED_MEDIA_TYPE, f"Content-Type {kind!r} is not supported; send application/fhir+json"
    )


def require_json_answer(accept: str | None, format_param: str | None) -> None:
    """Refuse to answer in XML: ``_format`` wins over ``Accept`` (https://hl7.org/fhir/R4/http.html#mime-type)."""
    if format_param:
        kind = media_type(format_param)
        if kind in XML_MEDIA_TYPES:
            raise OperationOutcomeError.of(
                Failure.NOT_ACCEPTABLE, "FHIR XML is not supported yet; use _format=json"
            )
        if kind not in JSON_MEDIA_TYPES:
            raise OperationOutcomeError.of(Failure.NOT_ACCEPTABLE, f"_format {kind!r} is not supported")
        return
    if not accept:
        return
    kinds = [media_type(item) for item in accept.split(",") if item.strip()]
    if not kinds or any(k in JSON_MEDIA_TYPES or k in ("*/*", "application/*") for k in kinds):
        return
    if any(k in XML_MEDIA_TYPES for k in kinds):
        raise OperationOutcomeError.of(
            Failure.NOT_ACCEPTABLE, "FHIR XML is not supported yet; accept application/fhir+json"
        )
    raise OperationOutcomeError.of(Failure.NOT_ACCEPTABLE, f"Cannot answer in {accept!r}; only FHIR JSON")


class FhirResponse(Response):
    """A response whose body is FHIR JSON, rendered with orjson."""

    media_type = FHIR_JSON

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        *,
        pretty: bool = False,
        raw: bytes | None = None,
    ) -> None:
        self._pretty = pretty
        if raw is not None and pretty:
            content, raw = loads(raw), None
        super().__init__(
            raw if raw is not None else content,
            status_code=status_code,
            headers=headers,
            media_type=f"{FHIR_JSON}; charset=utf-8",
        )

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if content is None:
            return b""
        return dumps(content, pretty=self._pretty)
