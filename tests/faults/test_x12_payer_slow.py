"""A legacy payer reached over X12 that answers slower than the response budget: every PAS ``$submit``
is answered pended within the budget, and the payer's later 278 completes each request (a new version of
the same ClaimResponse) and notifies the subscriber.

Over HTTP end to end: PriorGate under uvicorn in a thread with ``PRIORGATE_PAYER_ROUTES_FILE`` routing
the payer to :class:`HttpX12Gateway` at a loopback payer that holds its answers until released; on SQLite
and PostgreSQL. Bounded waits; no wall-clock assertions.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from conformance.listener import Listener
from conformance.suites.pas_server import event_numbers, request_bundle
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings
from x12 import simulate_payer_response

AUTH_OFF = SecuritySettings(auth_mode="off")  # routing is the point here, not access control
PAYER_ID_SYSTEM = "https://priorgate.org/fhir/sid/payer-id"
SUBMIT = "/pas/2.2.1/Claim/$submit"
WAIT = 30.0
Json = dict[str, Any]


class SlowPayer:
    """A legacy payer's 278 endpoint on loopback that answers only once released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: list[str] = []
        payer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                request_278 = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                payer.requests.append(request_278)
                payer.release.wait(WAIT)
                answer = simulate_payer_response(request_278, now=datetime.now(UTC)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/EDI-X12")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/x12/278"

    def __enter__(self) -> SlowPayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def legacy_bundle(trace: str) -> Json:
    """A PAS request (MRI lumbar spine, CPT 72148: the simulated payer approves it) to the X12 payer."""
    bundle = request_bundle(trace, ("72148",))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Organization" and resource["name"] == "Conformance Payer":
            resource["identifier"] = [{"system": PAYER_ID_SYSTEM, "value": "PGX12"}]
    return bundle


def review_actions(response_bundle: Json) -> list[str]:
    claim_response = response_bundle["entry"][0]["resource"]
    return [
        code["valueCodeableConcept"]["coding"][0]["code"]
        for item in claim_response.get("item", [])
        for review in item["adjudication"][0]["extension"]
        for code in review["extension"]
        if code["url"].endswith("extension-reviewActionCode")
    ]


def test_a_slow_x12_payer_gets_pended_answers_within_the_budget_and_completes_them_later(
    database_url: str, tmp_path: Path, faults: ModuleType
) -> None:
    with SlowPayer() as payer, Listener() as hook:
        routes = tmp_path / "routes.json"
        routes.write_text(
            json.dumps(
                [
                    {"payer": "PGDEMO", "mode": "fhir-local"},
                    {"payer": "PGX12", "mode": "x12", "endpoint": payer.url, "budget": 0.5},
                ]
            )
        )
        settings = Settings(
            database_url=database_url,
            demo_content=False,
            ig_path=tmp_path / "no-igs",
            log_level="error",
            payer_routes_file=routes,
            notification_poll_interval=0.1,
        )
        traces = [f"SLOW-{n}" for n in range(6)]
        with (
            faults.serve_in_thread(create_app(settings, security=AUTH_OFF)) as base,
            httpx.Client(base_url=base, timeout=WAIT) as client,
            ThreadPoolExecutor(3) as pool,
        ):
            faults.subscribe(client, hook.url)

            def submit(trace: str) -> Json:
                answer = client.post(SUBMIT, json=legacy_bundle(trace), headers=faults.FHIR)
                assert answer.status_code == 200, answer.text
                body: Json = answer.json()
                return body

            answers = list(pool.map(submit, traces))
            # Within the budget: pended (A4), saying why, while the payer still has every request.
            for answer in answers:
                assert review_actions(answer) == ["A4"]
                assert "no answer within" in answer["entry"][0]["resource"]["processNote"][0]["text"]
            assert len(payer.requests) == len(traces)
            assert all(r.startswith("ISA") for r in payer.requests)
            assert client.get("/pas/review").json() == []  # the payer's answer, not a reviewer, decides
            assert not event_numbers(hook.received)

            payer.release.set()  # the payer answers late
            ids = [answer["entry"][0]["resource"]["id"] for answer in answers]

            def decided(claim_response_id: str) -> bool:
                current = client.get(f"/fhir/ClaimResponse/{claim_response_id}").json()
                actions = review_actions({"entry": [{"resource": current}]})
                return bool(current["meta"]["versionId"] == "2" and actions == ["A1"])

            assert faults.wait_for(lambda: all(decided(i) for i in ids), WAIT), "not completed"
            owed = set(range(1, len(traces) + 1))
            assert hook.wait_for(lambda _: set(event_numbers(hook.received)) >= owed, WAIT)
            inquiry = client.post(
                SUBMIT, json=legacy_bundle(traces[0]), headers=faults.FHIR
            ).json()  # $submit again: the payer's answer, without asking the payer again
            assert review_actions(inquiry) == ["A1"]
            assert len(payer.requests) == len(traces)
    assert set(event_numbers(hook.received)) == owed
