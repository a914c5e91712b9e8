"""A rest-hook listener for subscription checks: a loopback HTTP server that keeps every JSON body POSTed.

The server under test must be able to reach it, so checks that use it run only against servers on this
machine (see :func:`reachable`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "testserver"})


def reachable(client: httpx.Client) -> bool:
    """True when the server under test runs here (or in-process), so it can reach a loopback listener."""
    return client.base_url.host in LOOPBACK_HOSTS


class Listener:
    """``with Listener() as hook:`` -> ``hook.url`` receives notifications; ``hook.wait_for(match)``."""

    def __init__(self, answer: int = 200, on_receive: Callable[[Any], None] | None = None) -> None:
        self.received: list[Any] = []
        self._changed = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with listener._changed:
                    listener.received.append(body)
                    listener._changed.notify_all()
                if on_receive is not None:
                    on_receive(body)  # before answering: a test can hold the answer back
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, match: Callable[[Any], bool], timeout: float) -> Any | None:
        """The first body received that ``match`` accepts, waiting up to ``timeout`` seconds; else None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for body in self.received:
                    if match(body):
                        return body
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
