"""PAS Subscriptions and notification delivery on SQLite and PostgreSQL: the HTTP API, the handshake, the
pended-decision notification per version, retries with backoff, leases after a killed process, and
several workers sharing one outbox."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from conformance.suites import pas_server
from conformance.suites.pas_server import status_of, subscription
from server import fhir_json
from server.app import create_app
from server.pas import Ident, PasVersion
from server.pas.delivery import DeliverySettings, DeliveryWorker
from server.pas.outbox import Outbox
from server.pas.subscription import RetryPolicy, accept_subscription
from server.pas.subscription_store import SubscriptionStore, stamp
from server.security.audit import AuditSource
from server.security.config import SecuritySettings
from server.services import Services
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.schema import pas_outbox, pas_subscription

from .conftest import empty_database

FHIR_JSON = {"Content-Type": "application/fhir+json"}
HOOK = "https://ehr.example.org/pas-notifications"
SUBMITTER = (Ident("http://hl7.org/fhir/sid/us-npi", pas_server.REQUESTOR_NPI),)
WAIT = 15.0

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


class Receiver:
    """A subscriber endpoint behind an httpx MockTransport: answers from a script, records what it got."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.answers: list[int] = []  # popped per request; 200 once empty
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            status = self.answers.pop(0) if self.answers else 200
            if status == 200:
                self.received.append(fhir_json.loads(request.content))
                self.headers.append(request.headers)
        return httpx.Response(status)

    def kinds(self) -> list[str]:
        return [status_of(b)["type"]["valueCode"] for b in self.received]

    def wait_for(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = [b for b in self.received if status_of(b)["type"]["valueCode"] == kind]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {kind} delivered; got {self.kinds()}")


class ManualClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class AppClock:
    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


# -- the HTTP API with the worker running in the app -----------------------------------------------------


def _settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    return Settings(
        database_url=database_url,
        demo_content=False,
        ig_path=Path(ig_path),
        cds_development_mode=True,
        notification_poll_interval=0.05,
        **overrides,
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def app_client(database_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[TestClient]:
    outbound = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    app = create_app(
        _settings(database_url, tmp_path),
        now=AppClock(datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
        http=outbound,
        security=AUTH_OFF,
    )
    with TestClient(app) as client:
        yield client


def _svc(client: TestClient) -> Services:
    svc = client.app.state.services  # type: ignore[attr-defined]
    assert isinstance(svc, Services)
    return svc


def _subscribe(client: TestClient, version: str, **kwargs: Any) -> dict[str, Any]:
    created = client.post(
        f"/pas/{version}/Subscription", json=subscription(HOOK, version, **kwargs), headers=FHIR_JSON
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    assert created.headers["location"].endswith(f"/pas/{version}/Subscription/{body['id']}/_history/1")
    return body


def _wait_status(client: TestClient, url: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url).json()
        if body.get("status") == status:
            return body
        time.sleep(0.02)
    raise AssertionError(f"{url} never became {status}")


def _pend_and_decide(client: TestClient, version: str, trace: str, action: str = "approve") -> dict[str, Any]:
    submitted = client.post(
        f"/pas/{version}/Claim/$submit", json=pas_server.request_bundle(trace, ("72148",)), headers=FHIR_JSON
    )
    assert submitted.status_code == 200, submitted.text
    (item,) = [
        q
        for q in client.get("/pas/review").json()
        if f"urn:trnorg:1999999999|{trace}" in q["claimIdentifiers"]
    ]
    decision: dict[str, Any] = {"itemSequence": 1, "action": action}
    if action == "deny":
        decision |= {
            "reasonCode": {"system": "https://codesystem.x12.org/005010/886", "code": "AA"},
            "reasonText": "Not documented",
        }
    answered = client.post(
        f"/pas/review/{item['id']}/decision", json={"reviewer": {"id": "rev-1"}, "decisions": [decision]}
    )
    assert answered.status_code == 200, answered.text
    result: dict[str, Any] = answered.json()
    return result


def _event(note: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in status_of(note)["notification-event"]["part"]}


def test_a_subscription_is_handshaken_then_hears_a_reviewer_decision_in_full_221(
    app_client: TestClient, receiver: Receiver
) -> None:
    created = _subscribe(app_client, "2.2.1")
    assert created["status"] == "requested" and created["meta"]["versionId"] == "1"
    (shake,) = receiver.wait_for("handshake")
    assert shake["type"] == "history"
    assert status_of(shake)["status"]["valueCode"] == "requested"
    url = f"/pas/2.2.1/Subscription/{created['id']}"
    assert status_of(shake)["subscription"]["valueReference"]["reference"].endswith(url)
    _wait_status(app_client, url, "active")
    decided = _pend_and_decide(app_client, "2.2.1", "SUB-221")
    (note,) = receiver.wait_for("event-notification")
    assert receiver.headers[-1]["content-type"] == "application/fhir+json"
    params = status_of(note)
    assert params["status"]["valueCode"] == "active"
    assert params["events-since-subscription-start"]["valueString"] == "1"
    event = _event(note)
    assert event["event-number"]["valueString"] == "1"
    focus = event["focus"]["valueReference"]["reference"]
    (carried,) = [e for e in note["entry"] if e["fullUrl"] == focus]
    assert carried["resource"] == decided  # the full PAS Response Bundle as answered to the reviewer
    assert carried["resource"]["entry"][0]["resource"]["outcome"] == "complete"
    # $status counts the event; $events gives it again; the /fhir alias serves the same subscription
    status = app_client.get(f"{url}/$status").json()
    (entry,) = status["entry"]
    counted = {p["name"]: p for p in entry["resource"]["parameter"]}
    assert counted["type"]["valueCode"] == "query-status"
    assert counted["events-since-subscription-start"]["valueString"] == "1"
    events = app_client.get(f"{url}/$events", params={"eventsSinceNumber": "1"}).json()
    assert status_of(events)["type"]["valueCode"] == "query-event"
    assert [e["fullUrl"] for e in events["entry"][1:]] == [focus]
    assert app_client.get(f"/fhir/Subscription/{created['id']}").json()["status"] == "active"
    # both deliveries are in the audit log, naming the ClaimResponse and its patient
    audit = _svc(app_client).audit
    assert audit is not None
    claim_response = carried["resource"]["entry"][0]["resource"]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        query = audit.repository.parse_search("AuditEvent", [("_count", "200")])
        noted = [
            m.resource()
            for m in audit.repository.search(query).matches
            if m.resource()["type"]["code"] == "pa-notification"
        ]
        if len(noted) >= 2:
            break
        time.sleep(0.02)
    kinds = sorted((e["subtype"][0]["code"], e["outcome"]) for e in noted)
    assert kinds == [("event-notification", "0"), ("handshake", "0")]
    (event_audit,) = [e for e in noted if e["subtype"][0]["code"] == "event-notification"]
    named = [e["what"]["reference"] for e in event_audit["entity"] if "what" in e]
    assert f"ClaimResponse/{claim_response['id']}" in named and focus in named
    assert claim_response["patient"]["reference"] in named


def test_a_201_subscription_gets_an_id_only_notification_naming_the_claim_response(
    app_client: TestClient, receiver: Receiver
) -> None:
    created = _subscribe(app_client, "2.0.1")
    receiver.wait_for("handshake")
    _wait_status(app_client, f"/pas/2.0.1/Subscription/{created['id']}", "active")
    decided = _pend_and_decide(app_client, "2.0.1", "SUB-201", action="deny")
    (note,) = receiver.wait_for("event-notification")
    assert len(note["entry"]) == 1  # id-only: no resources
    claim_response = decided["entry"][0]["resource"]
    focus = _event(note)["focus"]["valueReference"]["reference"]
    assert focus.endswith(f"/fhir/ClaimResponse/{claim_response['id']}")
    read = app_client.get(focus.split("testserver", 1)[1]).json()
    assert read["id"] == claim_response["id"] and read["meta"]["versionId"] == "2"


def test_only_matching_organizations_and_versions_are_notified(
    app_client: TestClient, receiver: Receiver
) -> None:
    other_org = _subscribe(app_client, "2.2.1", org="9999999999")
    other_version = _subscribe(app_client, "2.0.1")
    # the topic's own filter name is accepted too
    body = subscription(HOOK, "2.2.1")
    body["_criteria"]["extension"][0]["valueString"] = (
        f"orgIdentifier=http://hl7.org/fhir/sid/us-npi|{pas_server.REQUESTOR_NPI}"
    )
    mine = app_client.post("/fhir/Subscription", json=body, headers=FHIR_JSON).json()
    receiver.wait_for("handshake", 3)
    _wait_status(app_client, f"/fhir/Subscription/{mine['id']}", "active")
    _pend_and_decide(app_client, "2.2.1", "SUB-FILTER")
    (note,) = receiver.wait_for("event-notification")
    assert status_of(note)["subscription"]["valueReference"]["reference"].endswith(
        f"/fhir/Subscription/{mine['id']}"
    )
    with _svc(app_client).engine.connect() as connection:
        events = dict(
            connection.execute(select(pas_subscription.c.subscription_id, pas_subscription.c.events)).all()
        )
    assert events == {other_org["id"]: 0, other_version["id"]: 0, mine["id"]: 1}


def _heartbeat(seconds: int) -> dict[str, Any]:
    return {"url": pas_server.BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": seconds}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda s: s.__setitem__("criteria", "http://example.org/SubscriptionTopic/other"), 422),
        (lambda s: s["channel"].__setitem__("type", "websocket"), 422),
        (lambda s: s["channel"].__setitem__("endpoint", "ftp://ehr.example.org/hook"), 422),
        (lambda s: s.pop("_criteria"), 422),
        (lambda s: s["_criteria"]["extension"][0].__setitem__("valueString", "patient=123"), 422),
        (lambda s: s["channel"]["_payload"]["extension"][0].__setitem__("valueCode", "id-only"), 422),
        (lambda s: s.__setitem__("resourceType", "Patient"), 400),
        (lambda s: s["channel"].__setitem__("extension", [_heartbeat(-5)]), 422),
        (lambda s: s["channel"].__setitem__("extension", [_heartbeat(2**40)]), 422),
    ],
)
def test_a_bad_subscription_is_refused_with_an_operation_outcome(
    app_client: TestClient, change: Callable[[dict[str, Any]], object], status: int
) -> None:
    body = subscription(HOOK, "2.2.1")
    change(body)
    refused = app_client.post("/pas/2.2.1/Subscription", json=body, headers=FHIR_JSON)
    assert refused.status_code == status, refused.text
    assert refused.json()["resourceType"] == "OperationOutcome"
    with _svc(app_client).engine.connect() as connection:
        assert connection.execute(select(pas_subscription.c.subscription_id)).all() == []


def test_update_delete_and_unknown_subscriptions(app_client: TestClient, receiver: Receiver) -> None:
    created = _subscribe(app_client, "2.2.1")
    url = f"/pas/2.2.1/Subscription/{created['id']}"
    receiver.wait_for("handshake")
    changed = {**subscription(HOOK, "2.2.1"), "id": created["id"], "reason": "changed"}
    updated = app_client.put(url, json=changed, headers=FHIR_JSON)
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2" and updated.json()["reason"] == "changed"
    receiver.wait_for("handshake", 2)  # a changed subscription is handshaken again
    mismatched = app_client.put(url, json={**changed, "id": "other"}, headers=FHIR_JSON)
    assert mismatched.status_code == 400
    assert app_client.get(f"/pas/2.0.1/Subscription/{created['id']}").status_code == 404
    listed = app_client.get("/pas/2.2.1/Subscription").json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [created["id"]]
    assert app_client.delete(url).status_code == 204
    assert app_client.get(url).status_code == 404
    assert app_client.get(f"{url}/$status").status_code == 404
    assert app_client.delete(url).status_code == 404
    assert app_client.get("/pas/9.9.9/Subscription/x").status_code == 404
    too_long = app_client.put(f"/pas/2.2.1/Subscription/{'x' * 65}", json=changed, headers=FHIR_JSON)
    assert too_long.status_code == 400 and too_long.json()["resourceType"] == "OperationOutcome"
    chosen = app_client.put("/fhir/Subscription/mine-1", json={**changed, "id": "mine-1"}, headers=FHIR_JSON)
    assert chosen.status_code == 201 and chosen.json()["id"] == "mine-1"  # create on update


def test_the_capability_statement_lists_subscriptions(app_client: TestClient) -> None:
    statement = app_client.get("/fhir/metadata").json()
    (subscriptions,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    interactions = {i["code"] for i in subscriptions["interaction"]}
    assert {"create", "read", "update", "delete"} <= interactions
    assert {o["name"] for o in subscriptions["operation"]} >= {"status", "events"}


def test_a_decision_made_while_no_worker_runs_is_delivered_after_a_restart(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """The decision commits its notification with it; a process that dies before delivering loses nothing."""
    outbound = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    first = create_app(
        _settings(database_url, tmp_path, notification_worker=False),
        now=AppClock(datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
        http=outbound,
        security=AUTH_OFF,
    )
    with TestClient(first) as client:
        created = _subscribe(client, "2.2.1")
        engine = _svc(client).engine
        # the handshake went out and the process then died while delivering the decision
        row_ids = Outbox(engine).claim(datetime(2026, 3, 2, 14, 30, 1, tzinfo=UTC), timedelta(seconds=60), 10)
        Outbox(engine).delivered(row_ids[0], datetime(2026, 3, 2, 14, 30, 1, tzinfo=UTC))
        _pend_and_decide(client, "2.2.1", "SUB-RESTART")
        (claimed,) = Outbox(engine).claim(datetime(2026, 3, 2, 14, 31, tzinfo=UTC), timedelta(seconds=60), 10)
        assert claimed.kind == "event-notification"
    assert receiver.received == []
    # the next process starts after the dead one's lease ended
    second = create_app(
        _settings(database_url, tmp_path),
        now=AppClock(datetime(2026, 3, 2, 14, 33, tzinfo=UTC)),
        http=outbound,
        security=AUTH_OFF,
    )
    with TestClient(second) as client:
        (note,) = receiver.wait_for("event-notification")
        assert status_of(note)["subscription"]["valueReference"]["reference"].endswith(created["id"])
        store = SubscriptionStore(_svc(client).engine)
        deadline = time.monotonic() + WAIT
        while store.counts() != {"delivered": 1} and time.monotonic() < deadline:
            time.sleep(0.02)  # the delivery is recorded just after the subscriber answered
        assert store.counts() == {"delivered": 1}  # the event, kept for $events; the handshake is gone


# -- the worker over the outbox, with a manual clock -----------------------------------------------------


def _accepted(version: PasVersion = PasVersion.V2_2_1, heartbeat: int | None = None) -> Any:
    body = subscription(HOOK, version.value)
    if heartbeat is not None:
        body["channel"]["extension"] = [
            {"url": pas_server.BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": heartbeat}
        ]
        body["channel"]["header"] = ["Authorization: Bearer secret-for-the-hook"]
    return accept_subscription(body, version)


def _subscribe_direct(store: SubscriptionStore, clock: ManualClock, sid: str = "s1", **kwargs: Any) -> None:
    store.put(
        PasVersion.V2_2_1,
        sid,
        _accepted(**kwargs),
        url=f"https://pa.example.org/pas/2.2.1/Subscription/{sid}",
        fhir_base="https://pa.example.org/fhir",
        now=clock(),
    )


def _decide(store: SubscriptionStore, clock: ManualClock, n: int = 1) -> None:
    for i in range(n):
        response = {"resourceType": "Bundle", "id": f"r{i}", "type": "collection", "entry": []}
        with store.engine.begin() as connection:
            assert (
                store.enqueue_result(connection, PasVersion.V2_2_1, SUBMITTER, response, f"cr{i}", clock())
                >= 1
            )


class AuditSink:
    """An in-memory audit sink: what the worker records, in order."""

    source = AuditSource("https://pa.example.org/fhir")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def write(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def outcomes(self) -> list[tuple[str, str, str]]:
        """(notification kind, AuditEvent.outcome, attempt) per recorded attempt."""
        out = []
        for event in self.events:
            assert event["type"]["code"] == "pa-notification"
            details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
            out.append((event["subtype"][0]["code"], event["outcome"], details["attempt"]))
        return out


def _worker(
    engine: Engine, receiver: Receiver, clock: ManualClock, audit: AuditSink | None = None, **kwargs: Any
) -> DeliveryWorker:
    settings = DeliverySettings(
        lease=timedelta(seconds=60),
        events=RetryPolicy(first=timedelta(seconds=5), max_attempts=4),
        handshakes=RetryPolicy(first=timedelta(seconds=5), max_attempts=2),
        **kwargs,
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    return DeliveryWorker(Outbox(engine), client, clock, settings, jitter=lambda: 0.0, audit=audit)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(pas_outbox).order_by(pas_outbox.c.id)).mappings()]


def _status(engine: Engine, sid: str = "s1") -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                select(pas_subscription.c.status).where(pas_subscription.c.subscription_id == sid)
            ).scalar_one()
        )


def test_events_wait_for_the_handshake_then_flow_in_order(engine: Engine, receiver: Receiver) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    _decide(store, clock, 2)
    worker = _worker(engine, receiver, clock)
    assert asyncio.run(worker.run_once()) == 1  # only the handshake: events wait for an active subscription
    assert receiver.kinds() == ["handshake"] and _status(engine) == "active"
    assert asyncio.run(worker.run_once()) == 2
    numbers = [_event(b)["event-number"]["valueString"] for b in receiver.received[1:]]
    assert numbers == ["1", "2"]
    assert asyncio.run(worker.run_once()) == 0


def test_a_subscriber_that_is_down_is_retried_with_exponential_backoff(
    engine: Engine, receiver: Receiver
) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    worker = _worker(engine, receiver, clock)
    asyncio.run(worker.run_once())  # handshake
    _decide(store, clock)
    receiver.answers = [503, 503]
    asyncio.run(worker.run_once())
    (event,) = [r for r in _rows(engine) if r["kind"] == "event-notification"]
    assert event["attempts"] == 1 and event["status"] == "pending" and "503" in event["last_error"]
    assert event["available_at"] == stamp(clock() + timedelta(seconds=5))
    clock.advance(4.9)
    assert asyncio.run(worker.run_once()) == 0  # not yet due
    clock.advance(0.1)
    asyncio.run(worker.run_once())
    (event,) = [r for r in _rows(engine) if r["kind"] == "event-notification"]
    assert event["attempts"] == 2 and event["available_at"] == stamp(clock() + timedelta(seconds=10))
    clock.advance(10)
    asyncio.run(worker.run_once())
    (event,) = [r for r in _rows(engine) if r["kind"] == "event-notification"]
    assert event["status"] == "delivered" and event["attempts"] == 3
    assert receiver.kinds() == ["handshake", "event-notification"]


def test_every_delivery_attempt_is_audited_delivered_retried_or_given_up(
    engine: Engine, receiver: Receiver
) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    audit = AuditSink()
    worker = _worker(engine, receiver, clock, audit)
    asyncio.run(worker.run_once())  # handshake
    _decide(store, clock)
    receiver.answers = [503]
    asyncio.run(worker.run_once())
    clock.advance(5)
    asyncio.run(worker.run_once())
    assert audit.outcomes() == [
        ("handshake", "0", "1"),
        ("event-notification", "4", "1"),  # minor failure: tried again later
        ("event-notification", "0", "2"),
    ]
    failed, delivered = audit.events[1], audit.events[2]
    assert "503" in failed["outcomeDesc"] and "outcomeDesc" not in delivered
    sender, subscriber = delivered["agent"]
    assert sender["requestor"] is True and sender["network"]["address"] == "https://pa.example.org/fhir"
    assert subscriber["requestor"] is False and subscriber["network"]["address"] == HOOK
    assert delivered["entity"][0]["what"] == {"reference": "Subscription/s1"}
    details = {d["type"]: d["valueString"] for d in delivered["entity"][0]["detail"]}
    assert details["event-number"] == "1" and details["outcome"] == "delivered"
    assert delivered["recorded"] == "2026-03-02T09:00:05.000Z"
    # a subscriber down for good: the last attempt is a serious failure (given up)
    _decide(store, clock)
    receiver.answers = [500] * 4
    for _ in range(4):
        asyncio.run(worker.run_once())
        clock.advance(60)
    assert [o[1:] for o in audit.outcomes()[3:]] == [("4", "1"), ("4", "2"), ("4", "3"), ("8", "4")]


def test_a_failing_audit_store_does_not_stop_delivery(engine: Engine, receiver: Receiver) -> None:
    class Broken(AuditSink):
        def write(self, event: dict[str, Any]) -> None:
            raise RuntimeError("audit store down")

    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    _decide(store, clock)
    worker = _worker(engine, receiver, clock, Broken())
    asyncio.run(worker.run_once())
    asyncio.run(worker.run_once())
    assert receiver.kinds() == ["handshake", "event-notification"]
    assert [r["status"] for r in _rows(engine) if r["kind"] == "event-notification"] == ["delivered"]


def test_a_subscriber_down_for_good_turns_error_and_an_update_sends_everything_again(
    engine: Engine, receiver: Receiver
) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    worker = _worker(engine, receiver, clock)
    asyncio.run(worker.run_once())
    _decide(store, clock)
    receiver.answers = [500] * 4
    for _ in range(4):
        asyncio.run(worker.run_once())
        clock.advance(3600)
    (event,) = [r for r in _rows(engine) if r["kind"] == "event-notification"]
    assert event["status"] == "failed" and event["attempts"] == 4
    assert _status(engine) == "error"
    assert store.get("s1") is not None and "500" in (store.get("s1").error or "")  # type: ignore[union-attr]
    _decide(store, clock)  # an event while in error waits
    assert asyncio.run(worker.run_once()) == 0
    _subscribe_direct(
        store, clock
    )  # the client fixes its endpoint: a new handshake, failed events queued again
    asyncio.run(worker.run_once())
    assert _status(engine) == "active"
    asyncio.run(worker.run_once())
    numbers = sorted(
        _event(b)["event-number"]["valueString"]
        for b in receiver.received
        if status_of(b)["type"]["valueCode"] == "event-notification"
    )
    assert numbers == ["1", "2"]


def test_a_handshake_that_never_succeeds_turns_the_subscription_error(
    engine: Engine, receiver: Receiver
) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    worker = _worker(engine, receiver, clock)
    receiver.answers = [404, 404]
    asyncio.run(worker.run_once())
    assert _status(engine) == "requested"
    clock.advance(5)
    asyncio.run(worker.run_once())
    assert _status(engine) == "error"
    assert receiver.received == []


def test_a_killed_worker_s_claim_is_delivered_by_the_next_after_the_lease(
    engine: Engine, receiver: Receiver
) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock)
    worker = _worker(engine, receiver, clock)
    asyncio.run(worker.run_once())
    _decide(store, clock)
    (dead,) = Outbox(engine).claim(clock(), timedelta(seconds=60), 10)  # then the process is killed
    assert asyncio.run(worker.run_once()) == 0  # the lease holds
    clock.advance(60)
    assert asyncio.run(worker.run_once()) == 1
    assert receiver.kinds() == ["handshake", "event-notification"]
    assert (
        Outbox(engine).delivered(dead, clock()) is False
    )  # a late answer from the dead claim changes nothing
    assert Outbox(engine).failed(dead, clock(), "late", None) is False
    (event,) = [r for r in _rows(engine) if r["kind"] == "event-notification"]
    assert event["status"] == "delivered" and event["attempts"] == 2


def test_heartbeats_follow_the_heartbeat_period(engine: Engine, receiver: Receiver) -> None:
    clock = ManualClock()
    store = SubscriptionStore(engine)
    _subscribe_direct(store, clock, heartbeat=60)
    worker = _worker(engine, receiver, clock)
    asyncio.run(worker.run_once())
    assert receiver.headers[0]["authorization"] == "Bearer secret-for-the-hook"  # channel.header is sent
    clock.advance(59)
    asyncio.run(worker.run_once())
    assert receiver.kinds() == ["handshake"]
    clock.advance(1)
    asyncio.run(worker.run_once())
    assert receiver.kinds() == ["handshake", "heartbeat"]
    beat = receiver.received[-1]
    assert status_of(beat)["events-since-subscription-start"]["valueString"] == "0"
    clock.advance(30)
    _decide(store, clock)  # a delivery restarts the heartbeat period
    asyncio.run(worker.run_once())
    clock.advance(59)
    asyncio.run(worker.run_once())
    assert receiver.kinds() == ["handshake", "heartbeat", "event-notification"]
    clock.advance(1)
    receiver.answers = [503]
    asyncio.run(worker.run_once())  # a heartbeat that fails is dropped, not retried
    assert [r["kind"] for r in _rows(engine)] == ["event-notification"]  # kept for $events
    assert _status(engine) == "active"


def test_two_workers_sharing_one_outbox_deliver_each_notification_once(
    database_url: str, receiver: Receiver
) -> None:
    clock = ManualClock()
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        store = SubscriptionStore(engines[0])
        _subscribe_direct(store, clock)
        asyncio.run(_worker(engines[0], receiver, clock).run_once())
        _decide(store, clock, 30)
        workers = [_worker(e, receiver, clock, batch=3) for e in engines]

        async def drain(worker: DeliveryWorker) -> None:
            while await worker.run_once():
                await asyncio.sleep(0)

        async def both() -> None:
            await asyncio.gather(*(drain(w) for w in workers))

        asyncio.run(both())
        numbers = [
            int(_event(b)["event-number"]["valueString"])
            for b in receiver.received
            if status_of(b)["type"]["valueCode"] == "event-notification"
        ]
        assert sorted(numbers) == list(range(1, 31))  # every event once: none twice, none lost
    finally:
        for e in engines:
            e.dispose()


@pytest.fixture
def pg_url(pg_schema_url: str | None) -> str:
    """PostgreSQL only: row locking is PostgreSQL's (SQLite serializes claims with BEGIN IMMEDIATE)."""
    if pg_schema_url is None:
        pytest.skip("PRIORGATE_TEST_DATABASE_URL is not set")
    empty_database(pg_schema_url)
    return pg_schema_url


def test_postgresql_claims_skip_rows_another_process_has_locked(pg_url: str, receiver: Receiver) -> None:
    clock = ManualClock()
    engine = make_engine(pg_url)
    other = make_engine(pg_url)
    pool = ThreadPoolExecutor(1)
    try:
        store = SubscriptionStore(engine)
        _subscribe_direct(store, clock)
        asyncio.run(_worker(engine, receiver, clock).run_once())
        _decide(store, clock, 3)
        first_event = min(r["id"] for r in _rows(engine) if r["kind"] == "event-notification")
        with other.connect() as holder, holder.begin():
            # another process is in the middle of claiming the first event
            holder.execute(select(pas_outbox.c.id).where(pas_outbox.c.id == first_event).with_for_update())
            # a claim that waited for the lock would time out here
            claiming = pool.submit(Outbox(engine).claim, clock(), timedelta(seconds=60), 10)
            claimed = claiming.result(timeout=WAIT)
            assert sorted(c.event_number or 0 for c in claimed) == [2, 3]
    finally:
        pool.shutdown(wait=False)
        engine.dispose()
        other.dispose()
