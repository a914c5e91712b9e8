"""A PriorGate process killed (SIGKILL) while delivering a notification: a restarted process delivers it.

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

import httpx
import pytest

from conformance.listener import Listener
from conformance.suites.pas_server import request_bundle, status_of, subscription

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


def test_a_notification_in_flight_when_priorgate_is_killed_is_delivered_after_a_restart(
    server: Server,
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
        with httpx.Client(base_url=base, headers={"Content-Type": "application/fhir+json"}) as client:
            created = client.post("/pas/2.2.1/Subscription", json=subscription(hook.url, "2.2.1"))
            assert created.status_code == 201, created.text
            assert client.post("/pas/2.2.1/Claim/$submit", json=request_bundle("KILL-1")).status_code == 200
            (item,) = client.get("/pas/review").json()
            decision = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
            assert client.post(f"/pas/review/{item['id']}/decision", json=decision).status_code == 200
            assert hanging.wait(WAIT), "the event notification was never sent"
            server.kill()  # mid-delivery: the subscriber has the request, PriorGate never hears the answer
            release.set()
            server.start()

            def event_numbers(_: object = None) -> list[str]:
                return [
                    {p["name"]: p for p in status_of(b)["notification-event"]["part"]}["event-number"][
                        "valueString"
                    ]
                    for b in list(hook.received)
                    if status_of(b).get("type", {}).get("valueCode") == "event-notification"
                ]

            hook.wait_for(lambda _: len(event_numbers()) >= 2, WAIT)
            events = event_numbers()
            assert events == ["1", "1"]  # at least once; the event number lets the subscriber drop the repeat
