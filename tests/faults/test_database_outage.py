"""PostgreSQL cut off during load: 503 with an OperationOutcome while it is away, service again without a
restart once it is back, every accepted PAS submission stored with its response, and the subscription
outbox delivers afterwards: notifications in flight when the database went away (their delivery could not
be recorded) come again, and none owed is lost.

The outage is simulated with a TCP proxy on loopback between PriorGate and PostgreSQL (the shared
database is never stopped). Bounded: a fixed number of requests from a few threads; no wall-clock
assertions.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from conformance.listener import Listener
from conformance.suites import pas_server
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.schema import pas_outbox, pas_submission, pas_submission_key

pytestmark = pytest.mark.postgres

SUBMIT = "/pas/2.2.1/Claim/$submit"
TRN = "urn:trnorg:1999999999"
FHIR = {"content-type": "application/fhir+json"}

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


TEMPLATE = pas_server.request_bundle("FAULT", ("72148",))


def submission(trace: str) -> bytes:
    body = copy.deepcopy(TEMPLATE)
    body["entry"][0]["resource"]["identifier"][0]["value"] = trace
    return orjson.dumps(body)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"


def claim_response_id(response_bundle: dict[str, Any]) -> str:
    first = response_bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return str(first["id"])


def stored(database_url: str, accepted: dict[str, dict[str, Any]]) -> list[str]:
    """The traces among ``accepted`` whose submission or response is not in the database as answered (a
    reviewer's decision since makes a new version of the same ClaimResponse)."""
    engine = make_engine(database_url)
    missing = []
    try:
        with engine.connect() as conn:
            for trace, answer in accepted.items():
                row = conn.execute(
                    select(pas_submission.c.response)
                    .join(
                        pas_submission_key,
                        (pas_submission_key.c.submission_id == pas_submission.c.submission_id)
                        & (pas_submission_key.c.tenant == pas_submission.c.tenant),
                    )
                    .where(pas_submission_key.c.token == f"{TRN}|{trace}")
                ).first()
                if row is None or claim_response_id(orjson.loads(row.response)) != claim_response_id(answer):
                    missing.append(trace)
    finally:
        engine.dispose()
    return missing


def undelivered(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(pas_outbox.c.id).where(pas_outbox.c.status != "delivered")).all())
    finally:
        engine.dispose()


def test_outage_during_load(pg_url: str, faults: ModuleType) -> None:
    url = make_url(pg_url)
    proxy = faults.TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(
        database_url=through_proxy,
        demo_content=False,
        ig_path=Path("/nonexistent"),
        log_level="error",
        notification_poll_interval=0.1,
        notification_lease=1.0,  # a delivery whose answer could not be recorded is retried soon
        notification_backoff=0.2,
        notification_backoff_cap=1.0,
        notification_max_attempts=100,
    )
    app = create_app(settings, security=AUTH_OFF)
    # The subscriber holds its answers to the first notifications until the database is gone, so
    # PriorGate hears "delivered" only when it cannot record it.
    held: set[int] = set()
    holding = threading.Event()
    release = threading.Event()

    def hold_until_the_outage(body: object) -> None:
        numbers = pas_server.event_numbers([body])
        if numbers and not release.is_set():
            held.update(numbers)
            holding.set()
            release.wait(30)

    accepted: dict[str, dict[str, Any]] = {}
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(client: httpx.Client, trace: str) -> None:
        response = client.post(SUBMIT, content=submission(trace), headers=FHIR)
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 200:
                accepted[trace] = response.json()
        if response.status_code != 200:
            assert_unavailable(response)

    decided: list[str] = []
    hook = Listener(on_receive=hold_until_the_outage)
    try:
        with (
            hook,
            faults.serve_in_thread(app) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            faults.subscribe(client, hook.url)
            before = [f"before-{n}" for n in range(8)]
            for trace in before:
                submit(client, trace)
            assert all(trace in accepted for trace in before)
            decided += faults.decide_open_reviews(client)  # pended: each decision owes a notification
            assert holding.wait(30), "no notification was sent"

            # Load from four threads while the database goes away half way through and comes back.
            traces = [f"load-{n}" for n in range(60)]
            cut_after, restore_after = 20, 40
            done = threading.Semaphore(0)

            def step(index: int, trace: str) -> None:
                try:
                    submit(client, trace)
                finally:
                    done.release()

            with ThreadPoolExecutor(4) as pool:
                futures = []
                for index, trace in enumerate(traces):
                    if index == cut_after:
                        for _ in futures:
                            done.acquire()
                        proxy.cut()
                        release.set()  # the subscriber answers; PriorGate cannot record it
                    if index == restore_after:
                        for _ in futures[cut_after:]:
                            done.acquire()
                        proxy.restore()
                    futures.append(pool.submit(step, index, trace))
                for future in futures:
                    future.result()

            # During the outage every request got an honest 503 (none accepted, none a 500).
            outage = set(traces[cut_after:restore_after])
            assert not outage & set(accepted)
            assert 500 not in statuses
            assert statuses.count(503) >= len(outage)
            # Other routes that need the database answer the same way while it is away.
            proxy.cut()
            assert_unavailable(client.get("/fhir/Patient"))
            assert_unavailable(
                client.post("/pas/2.2.1/Claim/$inquire", content=submission("x"), headers=FHIR)
            )
            assert client.get("/fhir/metadata").status_code == 200  # no database needed
            proxy.restore()
            # Back without a restart: the same process serves again.
            after = [f"after-{n}" for n in range(5)]
            for trace in after:
                submit(client, trace)
            assert all(trace in accepted for trace in after)
            assert all(trace in accepted for trace in traces[:cut_after])
            # Decisions on what was accepted during the load, then the outbox drains: every event owed
            # arrives, the ones in flight during the outage again (at least once).
            decided += faults.decide_open_reviews(client)
            owed = set(range(1, len(decided) + 1))
            assert hook.wait_for(
                lambda _: (
                    set(pas_server.event_numbers(hook.received)) >= owed
                    and all(pas_server.event_numbers(hook.received)[n] >= 2 for n in held)
                ),
                30,
            ), f"missing: {owed - set(pas_server.event_numbers(hook.received))}"
        assert proxy.refused > 0  # the cut was real: connections were refused while it lasted
    finally:
        release.set()
        proxy.close()
    assert stored(pg_url, accepted) == []
    assert len(decided) == len(accepted)  # every accepted submission pended and was decided
    numbers = pas_server.event_numbers(hook.received)
    assert set(numbers) == owed  # none missing, none invented
    assert held and all(numbers[n] >= 2 for n in held)  # repeats of those whose delivery was not recorded
    assert undelivered(pg_url) == 0
