"""The subscriber's endpoint down for a while during load: notifications owed meanwhile are retried with
exponential backoff and delivered once it is back; none is lost and the subscription stays active.

The subscriber (a loopback listener) sits behind a TCP proxy that is cut and restored; PriorGate runs
under uvicorn in a thread with its delivery worker, on SQLite and PostgreSQL. Bounded waits; the only
times compared are the ones PriorGate stored (the schedule of the next attempt), never the wall clock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import select

from conformance.listener import Listener
from conformance.suites.pas_server import event_numbers, request_bundle
from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.schema import pas_outbox, pas_subscription

AUTH_OFF = SecuritySettings(auth_mode="off")  # delivery is the point here, not access control
SUBMIT = "/pas/2.2.1/Claim/$submit"
BACKOFF = 0.3  # seconds before the first retry, doubled each time
WAIT = 30.0


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_notifications_owed_while_the_subscriber_is_down_arrive_when_it_returns(
    database_url: str, tmp_path: Path, faults: ModuleType
) -> None:
    settings = Settings(
        database_url=database_url,
        demo_content=False,
        ig_path=tmp_path / "no-igs",
        log_level="error",
        notification_poll_interval=0.1,
        notification_backoff=BACKOFF,
        notification_backoff_cap=2.0,
        notification_max_attempts=100,
    )
    engine = make_engine(database_url)

    def events() -> list[dict[str, Any]]:
        with engine.connect() as connection:
            rows = connection.execute(
                select(pas_outbox).where(pas_outbox.c.kind == "event-notification").order_by(pas_outbox.c.id)
            )
            return [dict(row) for row in rows.mappings()]

    with Listener() as hook:
        proxy = faults.TcpProxy(("127.0.0.1", int(hook.url.split(":")[2].split("/")[0])))
        endpoint = f"http://127.0.0.1:{proxy.port}/notify"
        try:
            with (
                faults.serve_in_thread(create_app(settings, security=AUTH_OFF)) as base,
                httpx.Client(base_url=base, timeout=WAIT) as client,
                ThreadPoolExecutor(4) as pool,
            ):
                subscription_id = faults.subscribe(client, endpoint)

                def submit(trace: str) -> None:
                    answer = client.post(SUBMIT, json=request_bundle(trace), headers=faults.FHIR)
                    assert answer.status_code == 200, answer.text

                # Before the outage: decided and delivered.
                list(pool.map(submit, [f"UP-{n}" for n in range(4)]))
                assert len(faults.decide_open_reviews(client)) == 4
                assert hook.wait_for(lambda _: set(event_numbers(hook.received)) >= {1, 2, 3, 4}, WAIT)

                # The subscriber goes away; submissions and decisions go on.
                proxy.cut()
                list(pool.map(submit, [f"DOWN-{n}" for n in range(12)]))
                decided = []
                while len(decided) < 12:
                    decided += faults.decide_open_reviews(client)
                assert len(decided) == 12
                owed = set(range(5, 17))

                def retried() -> bool:
                    rows = [r for r in events() if r["event_number"] in owed]
                    return len(rows) == 12 and all(int(r["attempts"]) >= 2 for r in rows)

                assert faults.wait_for(retried, WAIT), "the notifications were not retried"
                # Each waiting row is scheduled after an exponential delay: the n-th retry no earlier
                # than first * 2**(n-1) after the notification was queued.
                for row in events():
                    if row["status"] == "pending" and row["claim_token"] is None and row["attempts"]:
                        delay = timedelta(seconds=BACKOFF * 2 ** (int(row["attempts"]) - 1))
                        assert _instant(str(row["available_at"])) >= _instant(str(row["created"])) + delay
                        assert endpoint in str(row["last_error"])
                assert set(event_numbers(hook.received)) == {1, 2, 3, 4}  # nothing got through
                assert proxy.refused > 0

                # Back: everything owed arrives.
                proxy.restore()
                every = set(range(1, 17))
                assert hook.wait_for(lambda _: set(event_numbers(hook.received)) >= every, WAIT)
                assert faults.wait_for(lambda: all(r["status"] == "delivered" for r in events()), WAIT)
        finally:
            proxy.close()
    try:
        numbers = event_numbers(hook.received)
        assert set(numbers) == every  # none missing, none invented (a repeat would be allowed)
        with engine.connect() as connection:
            status = connection.execute(
                select(pas_subscription.c.status).where(pas_subscription.c.subscription_id == subscription_id)
            ).scalar_one()
        assert status == "active"  # the outage did not give up on the subscription
        assert all(int(r["attempts"]) >= 2 for r in events() if r["event_number"] in owed)
    finally:
        engine.dispose()
