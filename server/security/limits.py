"""Input limits (issue 9, Must 5): body size, JSON nesting depth, string length, Bundle entry count.

Each limit is configurable and each refusal is a 4xx OperationOutcome (413 ``too-costly``), never a
500: :func:`check_json` raises :class:`~igs.outcome.OperationOutcomeError`, and
:class:`BodySizeLimit` is a plain ASGI middleware that answers 413 itself when ``Content-Length`` is
too large and otherwise stops reading a chunked body at the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from igs.outcome import Failure, OperationOutcomeError
from server.errors import status_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413 OperationOutcome.

    A declared ``Content-Length`` over the limit is answered before the app runs; a chunked body is
    cut off at the limit by raising :class:`OperationOutcomeError` from ``receive`` (the app's error
    handlers render it).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_outcome(send, too_large(f"request body exceeds {self.max_bytes} bytes"))
            return
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_outcome(send: Send, error: OperationOutcomeError) -> None:
    body = orjson.dumps(error.to_fhir())
    await send(
        {
            "type": "http.response.start",
            "status": status_of(error.failure),
            "headers": [
                (b"content-type", b"application/fhir+json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
