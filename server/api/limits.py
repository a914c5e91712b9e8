"""Request body size limit, enforced before a large body is read (HTTP 413)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from igs.outcome import Failure, OperationOutcomeError
from server.errors import outcome_response


def _too_large(limit: int) -> OperationOutcomeError:
    return OperationOutcomeError.of(
        Failure.TOO_LARGE, f"The request body exceeds the {limit}-byte limit (PRIORGATE_MAX_BODY_BYTES)"
    )


class BodyLimit:
    """Pure ASGI middleware: refuse by Content-Length up front, and stop chunked bodies once over."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    response = outcome_response(_too_large(self.max_bytes))
                    response.headers["Connection"] = "close"
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _too_large(self.max_bytes)
            return message

        await self.app(scope, limited, send)
