"""Input limits on JSON bodies (issue 9, Must 5): nesting depth, string length, array length and
Bundle entry count, each configurable, each refused as a 413 ``too-costly`` OperationOutcome, never a 500.

The raw body size is enforced earlier, before the body is read, by ``server/api/limits.BodyLimit``
(``PRIORGATE_MAX_BODY_BYTES``); :func:`parse_json_within_limits` re-checks it for bodies read elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from igs.outcome import Failure, OperationOutcomeError


@dataclass(frozen=True)
class InputLimits:
    """Limits on one request body. Defaults: 10 MiB body (settings ``max_body_bytes``), depth 64,
    strings up to 8 MiB (inline attachments are base64 strings), 1000 Bundle entries."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64
    max_string_length: int = 8 * 1024 * 1024
    max_bundle_entries: int = 1000
    max_array_length: int = 100_000


def too_large(diagnostics: str, *expression: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.TOO_LARGE, diagnostics, code="too-costly", expression=expression)


def check_body_size(length: int, limits: InputLimits) -> None:
    if length > limits.max_body_bytes:
        raise too_large(f"request body exceeds {limits.max_body_bytes} bytes")


def check_json(value: Any, limits: InputLimits) -> None:
    """Walk a parsed JSON value (iteratively: no recursion to exhaust) and enforce the limits."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.max_string_length:
                raise too_large(f"a string value exceeds {limits.max_string_length} characters")
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > limits.max_depth:
            raise too_large(f"JSON nesting exceeds {limits.max_depth} levels")
        if isinstance(node, list):
            if len(node) > limits.max_array_length:
                raise too_large(f"an array exceeds {limits.max_array_length} items")
            stack.extend((item, depth + 1) for item in node)
            continue
        if node.get("resourceType") == "Bundle":
            entries = node.get("entry")
            if isinstance(entries, list) and len(entries) > limits.max_bundle_entries:
                raise too_large(f"Bundle has more than {limits.max_bundle_entries} entries", "Bundle.entry")
        for key, item in node.items():
            if len(key) > limits.max_string_length:
                raise too_large(f"a property name exceeds {limits.max_string_length} characters")
            stack.append((item, depth + 1))


def parse_json_within_limits(raw: bytes, limits: InputLimits) -> Any:
    """Size-check, parse (orjson) and limit-check a JSON body; malformed JSON is a 400."""
    check_body_size(len(raw), limits)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
            raise too_large(f"JSON nesting exceeds {limits.max_depth} levels") from None
        raise OperationOutcomeError.of(
            Failure.INVALID, "the body is not valid JSON", code="structure"
        ) from None
    check_json(value, limits)
    return value
