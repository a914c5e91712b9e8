"""Fault-injection helpers: a TCP proxy on loopback that can be cut and restored, a uvicorn server in a
thread, private databases on both engines, and the PAS steps the fault tests share (subscribe, decide the
open reviews). A database outage is simulated by cutting the proxy between PriorGate and PostgreSQL, a
subscriber outage by cutting the proxy in front of the subscriber; the shared PostgreSQL itself is never
stopped."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import pytest
import uvicorn

from conformance.suites.pas_server import subscription
from server.storage.engine import make_engine
from server.storage.migrate import upgrade
from server.storage.private_schema import private_schema

FHIR = {"content-type": "application/fhir+json"}


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``. ``cut()`` closes every live connection and answers new
    ones by closing them at once (as a stopped or restarting server would); ``restore()`` forwards again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self.refused = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._live.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._live.discard(sock)
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            live = list(self._live)
        self._drop(*live)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._listener.close()
        self._thread.join(timeout=2)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true (bounded); for waiting on state, never for asserting on time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def pg_schema() -> Iterator[str]:
    """A migrated private schema of the test database (dropped afterwards); skips without PostgreSQL."""
    base = os.environ.get("PRIORGATE_TEST_DATABASE_URL")
    if not base:
        pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    with private_schema(base, "faults") as rendered:
        engine = make_engine(rendered)
        upgrade(engine)
        engine.dispose()
        yield rendered


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A migrated private PostgreSQL schema (for faults that only PostgreSQL has: a network outage)."""
    with pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A migrated, empty private database on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'faults.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    with pg_schema() as url:
        yield url


# -- PAS steps -----------------------------------------------------------------------------------------


def subscribe(client: httpx.Client, endpoint: str, headers: dict[str, str] | None = None) -> str:
    """Create a PAS 2.2.1 Subscription to ``endpoint``; returns its id once the handshake made it active."""
    created = client.post(
        "/pas/2.2.1/Subscription", json=subscription(endpoint, "2.2.1"), headers={**FHIR, **(headers or {})}
    )
    assert created.status_code == 201, created.text
    subscription_id = str(created.json()["id"])

    def active() -> bool:
        read = client.get(f"/pas/2.2.1/Subscription/{subscription_id}", headers=headers)
        return bool(read.json().get("status") == "active")

    assert wait_for(active, 30), "the subscription never became active"
    return subscription_id


def decide_open_reviews(client: httpx.Client, headers: dict[str, str] | None = None) -> list[str]:
    """Approve every pended item of every open review; the claim identifiers decided (one owed
    notification each per matching subscription)."""
    decided = []
    for item in client.get("/pas/review", headers=headers).json():
        decision = {
            "reviewer": {"id": "fault-reviewer"},
            "decisions": [{"itemSequence": n, "action": "approve"} for n in item["pendedSequences"]],
        }
        answer = client.post(f"/pas/review/{item['id']}/decision", json=decision, headers=headers)
        assert answer.status_code == 200, answer.text
        decided.extend(item["claimIdentifiers"])
    return decided


@pytest.fixture
def faults() -> types.ModuleType:
    """This module, so tests reach the helpers above (tests run in importlib mode)."""
    return sys.modules[__name__]
