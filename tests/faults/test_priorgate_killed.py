"""A PriorGate process killed (SIGKILL) while delivering notifications: a restarted process delivers the
one in flight (again: at least once) and those still queued.

Real processes (``priorgate serve``) and a real loopback subscriber, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from conformance.listener import Listener
from conformance.suites.pas_server import event_numbers, request_bundle, status_of

PRIORGATE = Path(sys.executable).with_name("priorgate")
WAIT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "PRIORGATE_DATABASE_URL": database_url,
            "PRIORGATE_AUTH_MODE": "off",  # delivery is the point here, not access control
            "PRIORGATE_DEMO_CONTENT": "false",
            "PRIORGATE_IG_PATH": str(tmp_path / "no-igs"),  # profile validation is not the point here
            "PRIORGATE_NOTIFICATION_LEASE": "2",
            "PRIORGATE_NOTIFICATION_POLL_INTERVAL": "0.2",
            "PRIORGATE_OUTBOUND_TIMEOUT": "15",
            "PRIORGATE_SECURITY_DIR": str(tmp_path / "security"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(PRIORGATE), "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/fhir/metadata", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("priorgate serve did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=WAIT)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(database_url, tmp_path)
    yield running
    running.kill(signal.SIGTERM)


def test_notifications_in_flight_when_priorgate_is_killed_are_delivered_after_a_restart(
    server: Server, faults: ModuleType
) -> None:
    hanging = threading.Event()
    release = threading.Event()

    def hold_first_event(body: object) -> None:
        if status_of(body).get("type", {}).get("valueCode") == "event-notification" and not hanging.is_set():
            hanging.set()
            release.wait(WAIT)  # never answered while the first process lives

    with Listener(on_receive=hold_first_event) as hook:
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, timeout=WAIT) as client:
            faults.subscribe(client, hook.url)
            for n in range(3):
                submitted = client.post(
                    "/pas/2.2.1/Claim/$submit", json=request_bundle(f"KILL-{n}"), headers=faults.FHIR
                )
                assert submitted.status_code == 200, submitted.text
            decided = faults.decide_open_reviews(client)
            assert len(decided) == 3
            assert hanging.wait(WAIT), "the first event notification was never sent"
            # Killed mid-delivery: the subscriber has the first notification, PriorGate never hears the
            # answer, and the later ones wait in the outbox.
            server.kill()
            release.set()
            server.start()

            def all_arrived(_: object) -> bool:
                numbers = event_numbers(hook.received)
                return set(numbers) >= {1, 2, 3} and numbers[1] >= 2

            assert hook.wait_for(all_arrived, WAIT)
    numbers = event_numbers(hook.received)
    assert sorted(numbers) == [1, 2, 3]  # none lost, none invented
    assert numbers[1] == 2  # at least once: the one in flight came again; its event number marks the repeat
