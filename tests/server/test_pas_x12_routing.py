"""PAS requests for a payer routed over X12 278: the simulated legacy payer's approvals, denials, pends and
AAA rejections; the response budget (pended, then completed by the late answer); the HTTP gateway; the
exchange log; the routes file; and the whole path over HTTP with the demo routes. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from conformance.suites import pas_server
from igs import Validator
from igs import load_registry as load_igs
from server.app import create_app
from server.pas import PasVersion
from server.pas.ports import CoverageFinding, CoverageQuery
from server.pas.routing import RoutesError, load_routes, parse_routes
from server.pas.service import PasService
from server.pas.store import PasStore
from server.pas.subscription import accept_subscription
from server.pas.subscription_store import SubscriptionStore
from server.pas.x12_gateway import HttpX12Gateway, SimulatedX12Payer, X12Gateway
from server.pas.x12_log import ExchangeLog
from server.pas.x12_route import X12Routing
from server.search.definitions import load_registry
from server.security.config import SecuritySettings
from server.settings import Settings, SettingsError
from server.storage.engine import make_engine
from server.storage.repository import Repository
from server.storage.schema import pas_outbox, pas_review, pas_submission, pas_x12_exchange
from x12 import ControlNumbers, bundle_to_278_request, simulate_payer_response
from x12 import Decision as X12Decision

from .conftest import Clock

PAYER_ID_SYSTEM = "https://priorgate.org/fhir/sid/payer-id"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
Json = dict[str, Any]

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


def legacy_bundle(trace: str, codes: tuple[str, ...], *, member: str | None = None) -> Json:
    """A PAS request Bundle whose insurer is the X12-routed payer PGX12."""
    bundle = pas_server.request_bundle(trace, codes)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Organization" and resource["name"] == "Conformance Payer":
            resource["identifier"] = [{"system": PAYER_ID_SYSTEM, "value": "PGX12"}]
            resource["name"] = "Legacy Mutual Insurance"
        if member is not None and resource["resourceType"] in ("Patient", "Coverage"):
            resource["identifier"][0]["value"] = member
    return bundle


def never(query: CoverageQuery) -> CoverageFinding:
    raise AssertionError("a routed request must not be decided by the local coverage rules")


@dataclass
class Blocking:
    """A gateway that answers only once released (a slow legacy payer), fails, or answers garbage."""

    inner: X12Gateway
    release: threading.Event = field(default_factory=threading.Event)
    fail: bool = False
    garbage: bool = False

    def exchange(self, request_278: str, *, timeout: float) -> str:
        assert self.release.wait(30), "the test never released the payer"
        if self.fail:
            raise TimeoutError("the payer never answered")
        if self.garbage:
            return "ISA*this is not a 278~"
        return self.inner.exchange(request_278, timeout=timeout)


@dataclass
class World:
    service: PasService
    routing: X12Routing
    engine: Any

    def count(self, table: Any) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def build(database_url: str, clock: Clock) -> Iterator[Callable[..., World]]:
    engines: list[Any] = []
    executors: list[ThreadPoolExecutor] = []

    def make(gateway: X12Gateway | None = None, budget: float = 5.0, subscriptions: bool = False) -> World:
        engine = make_engine(database_url)
        engines.append(engine)
        executor = ThreadPoolExecutor(max_workers=2)
        executors.append(executor)
        routes = parse_routes(
            [
                {"payer": "PGDEMO", "mode": "fhir-local"},
                {"payer": "PGX12", "mode": "x12", "endpoint": "simulated", "budget": budget},
            ]
        )
        routing = X12Routing(
            routes=routes,
            gateways={"PGX12": gateway or SimulatedX12Payer(clock)},
            log=ExchangeLog(engine),
            executor=executor,
        )
        service = PasService(
            store=PasStore(engine),
            resources=Repository(engine, load_registry(), now=clock),
            evaluate=never,
            now=clock,
            x12=routing,
            subscriptions=SubscriptionStore(engine) if subscriptions else None,
        )
        return World(service, routing, engine)

    yield make
    for executor in executors:
        executor.shutdown(wait=True)
    for engine in engines:
        engine.dispose()


def claim_response(bundle: Json) -> Json:
    first: Json = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


def actions(response: Json) -> list[str]:
    out = []
    for item in response.get("item", []):
        (review,) = item["adjudication"][0]["extension"]
        code = next(e for e in review["extension"] if e["url"].endswith("extension-reviewActionCode"))
        out.append(code["valueCodeableConcept"]["coding"][0]["code"])
    return out


def claim_response_id(world: World, sid: str) -> str:
    record = world.service.store.get(sid)
    assert record is not None
    return record.stored.claim_response_id


def submission_id(world: World, trace: str) -> str:
    record = world.service.store.find(PasVersion.V2_2_1, [f"urn:trnorg:1999999999|{trace}"])
    assert record is not None
    return record.submission_id


@pytest.mark.parametrize("version", ["2.0.1", "2.2.1"])
def test_an_approval_from_the_legacy_payer_goes_through_the_278_and_back(
    build: Callable[..., World], version: str
) -> None:
    world = build()
    answer = world.service.submit(PasVersion(version), legacy_bundle("X-A1", ("72148",)))
    response = claim_response(answer)
    # The local rules would pend 72148 for documentation: the payer's 278 decided it instead.
    assert response["outcome"] == "complete" and actions(response) == ["A1"]
    assert response["preAuthRef"].startswith("PG")
    number = response["item"][0]["adjudication"][0]["extension"][0]["extension"][0]
    assert number["url"] == "number" and number["valueString"].startswith("PG")
    record = world.service.store.find(PasVersion(version), ["urn:trnorg:1999999999|X-A1"])
    assert record is not None
    (exchange,) = world.service.x12_exchanges(record.submission_id)
    assert exchange.outcome == "approved" and exchange.payer == "PGX12"
    assert exchange.request_278.startswith("ISA") and "HCR*" not in exchange.request_278
    assert exchange.response_278 is not None and "HCR*A1*" in exchange.response_278
    assert exchange.received_at is not None and exchange.sent_at <= exchange.received_at
    assert world.count(pas_review) == 0


def test_a_denial_by_the_legacy_payer_is_returned_as_its_decision(build: Callable[..., World]) -> None:
    world = build()
    response = claim_response(world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-A3", ("B4185",))))
    assert actions(response) == ["A3"]
    notes = [n["text"] for n in response["processNote"]]
    assert any("enteral nutrition" in n for n in notes)
    assert world.count(pas_review) == 0  # the payer decided: nothing for PriorGate's reviewers
    (exchange,) = world.service.x12_exchanges(submission_id(world, "X-A3"))
    assert exchange.outcome == "denied"


def test_a_pend_by_the_legacy_payer_and_its_later_answer(build: Callable[..., World], clock: Clock) -> None:
    world = build()
    bundle = legacy_bundle("X-A4", ("33510", "72148"))
    response = claim_response(world.service.submit(PasVersion.V2_2_1, bundle))
    assert actions(response) == ["A4", "A1"] and response["outcome"] == "partial"
    assert world.count(pas_review) == 0
    sid = submission_id(world, "X-A4")
    (sent,) = world.service.x12_exchanges(sid)
    assert sent.outcome == "pended"
    # Later the payer approves everything: its unsolicited 278 response completes the request.
    later = simulate_payer_response(sent.request_278, now=clock(), decide=lambda a, s: X12Decision("A1"))
    final = claim_response(world.service.complete_from_x12(sid, later))
    assert final["id"] == response["id"] and actions(final) == ["A1", "A1"]
    stored = world.service.resources.read("ClaimResponse", final["id"])
    assert stored.version_id == 2 and stored.resource()["outcome"] == "complete"
    assert [e.outcome for e in world.service.x12_exchanges(sid)] == ["pended", "approved"]


def test_a_late_payer_answer_reaches_subscribers_like_a_reviewer_decision(
    build: Callable[..., World], clock: Clock
) -> None:
    world = build(subscriptions=True)
    store = world.service.subscriptions
    assert store is not None
    store.put(
        PasVersion.V2_2_1,
        "sub-1",
        accept_subscription(
            pas_server.subscription("https://ehr.example.org/hook", "2.2.1"), PasVersion.V2_2_1
        ),
        url="https://pa.example.org/pas/2.2.1/Subscription/sub-1",
        fhir_base="https://pa.example.org/fhir",
        now=clock(),
    )
    world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-LATE", ("33510",)))
    sid = submission_id(world, "X-LATE")
    (sent,) = world.service.x12_exchanges(sid)
    later = simulate_payer_response(sent.request_278, now=clock(), decide=lambda a, s: X12Decision("A1"))
    final = world.service.complete_from_x12(sid, later)
    with world.engine.connect() as connection:
        rows = connection.execute(
            select(pas_outbox.c.kind, pas_outbox.c.event_number, pas_outbox.c.body).where(
                pas_outbox.c.kind == "event-notification"
            )
        ).all()
    assert [(row.kind, row.event_number) for row in rows] == [("event-notification", 1)]
    note = json.loads(rows[0].body)
    assert note["entry"][-1]["resource"] == final


def test_a_modified_approval_carries_what_the_payer_authorized(build: Callable[..., World]) -> None:
    world = build()
    response = claim_response(world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-A6", ("97110",))))
    assert actions(response) == ["A6"]
    (added,) = response["addItem"]
    assert added["productOrService"]["coding"][0]["code"] == "97110" and added["quantity"]["value"] == 6


@pytest.mark.parametrize(
    ("codes", "member", "code", "element", "path_tail"),
    [
        (("99499",), None, "AG", "2000F", ".item[0]"),
        (("72148",), "INVALID-1", "72", "2010C", ".subscriberId"),
    ],
)
def test_an_aaa_rejection_is_a_claim_response_error(
    build: Callable[..., World],
    codes: tuple[str, ...],
    member: str | None,
    code: str,
    element: str,
    path_tail: str,
) -> None:
    world = build()
    bundle = legacy_bundle("X-AAA", codes, member=member)
    response = claim_response(world.service.submit(PasVersion.V2_2_1, bundle))
    assert response["outcome"] == "error"
    (error,) = response["error"]
    assert error["code"]["coding"][0] == {"system": "https://codesystem.x12.org/005010/901", "code": code}
    by_url = {e["url"].rsplit("/", 1)[-1]: e for e in error["extension"]}
    assert by_url["extension-errorElement"]["extension"][0]["valueString"] == element
    assert by_url["extension-errorPath"]["valueString"].endswith(path_tail)
    assert by_url["extension-errorFollowupAction"]["valueCodeableConcept"]["coding"][0]["code"] == "C"
    assert world.count(pas_submission) == 0  # a rejected request is not kept: correct and resubmit
    exchanges = ExchangeLog(world.engine)
    with world.engine.connect() as connection:
        (row,) = connection.execute(select(pas_x12_exchange.c.exchange_id)).all()
    rejected = exchanges.get(row[0])
    assert (
        rejected is not None and rejected.outcome == "rejected" and f"AAA {code}" in (rejected.detail or "")
    )


def test_no_answer_within_the_budget_pends_and_the_late_answer_completes_the_request(
    build: Callable[..., World], clock: Clock
) -> None:
    slow = Blocking(SimulatedX12Payer(clock))
    world = build(slow, budget=0.05)
    bundle = legacy_bundle("X-LATE", ("72148", "B4185"))
    first = claim_response(world.service.submit(PasVersion.V2_2_1, bundle))
    assert actions(first) == ["A4", "A4"] and first["outcome"] == "complete"  # 2.2.1: all pended
    assert "no answer within" in first["processNote"][0]["text"]
    sid = submission_id(world, "X-LATE")
    assert [e.outcome for e in world.service.x12_exchanges(sid)] == ["awaiting"]
    assert world.count(pas_review) == 0  # the payer's answer, not a reviewer, completes it
    slow.release.set()
    world.routing.executor.shutdown(wait=True)  # the late answer is applied on the exchange's thread
    (exchange,) = world.service.x12_exchanges(sid)
    assert exchange.outcome == "decided" and exchange.response_278 is not None
    current = world.service.resources.read("ClaimResponse", first["id"])
    assert current.version_id == 2 and actions(current.resource()) == ["A1", "A3"]
    replay = claim_response(world.service.submit(PasVersion.V2_2_1, bundle))  # $submit again: the answer
    assert actions(replay) == ["A1", "A3"]
    assert world.count(pas_submission) == 1


def test_a_payer_that_never_answers_hands_the_request_to_a_reviewer(
    build: Callable[..., World], clock: Clock
) -> None:
    slow = Blocking(SimulatedX12Payer(clock), fail=True)
    world = build(slow, budget=0.05)
    world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-GONE", ("72148",)))
    slow.release.set()
    world.routing.executor.shutdown(wait=True)
    (exchange,) = world.service.x12_exchanges(submission_id(world, "X-GONE"))
    assert exchange.outcome == "failed" and "never answered" in (exchange.detail or "")
    assert [e.item.pended_sequences for e in world.service.queue()] == [(1,)]


def test_an_unreadable_late_answer_hands_the_request_to_a_reviewer(
    build: Callable[..., World], clock: Clock
) -> None:
    slow = Blocking(SimulatedX12Payer(clock), garbage=True)
    world = build(slow, budget=0.05)
    world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-BAD", ("72148",)))
    slow.release.set()
    world.routing.executor.shutdown(wait=True)
    (exchange,) = world.service.x12_exchanges(submission_id(world, "X-BAD"))
    assert exchange.outcome == "failed" and exchange.response_278 == "ISA*this is not a 278~"
    assert [e.item.pended_sequences for e in world.service.queue()] == [(1,)]


def test_the_http_gateway_posts_the_278_and_reads_the_answer(
    build: Callable[..., World], clock: Clock
) -> None:
    seen: list[httpx.Request] = []

    def payer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = simulate_payer_response(request.content.decode(), now=clock())
        return httpx.Response(200, text=body, headers={"Content-Type": "application/EDI-X12"})

    with httpx.Client(transport=httpx.MockTransport(payer)) as client:
        world = build(HttpX12Gateway(client, "https://legacy.example/x12/278"))
        response = claim_response(
            world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-HTTP", ("72148",)))
        )
    assert actions(response) == ["A1"]
    (request,) = seen
    assert request.headers["content-type"] == "application/EDI-X12"
    assert request.content.startswith(b"ISA*")


def test_an_unreachable_http_payer_pends_for_review(build: Callable[..., World]) -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as client:
        world = build(HttpX12Gateway(client, "https://legacy.example/x12/278"))
        response = claim_response(world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-503", ("72148",))))
    assert actions(response) == ["A4"]
    assert "could not be reached" in response["processNote"][0]["text"]
    (exchange,) = world.service.x12_exchanges(submission_id(world, "X-503"))
    assert exchange.outcome == "failed" and "503" in (exchange.detail or "")
    assert world.count(pas_review) == 1


def test_routes_files_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "routes.toml"
    toml.write_text(
        '[[routes]]\npayer = "P1"\nmode = "x12"\nendpoint = "https://p1.example/278"\nbudget = 3\n'
    )
    (route,) = load_routes(toml).routes
    assert (route.payer, route.mode, route.endpoint, route.budget) == (
        "P1",
        "x12",
        "https://p1.example/278",
        3,
    )
    listed = tmp_path / "routes.json"
    listed.write_text(json.dumps([{"payer": "P2", "mode": "x12", "endpoint": "simulated"}]))
    assert load_routes(listed).routes[0].simulated
    for bad, message in (
        ([{"payer": "P3", "mode": "x12"}], "needs an endpoint"),
        ([{"payer": "P3", "mode": "x12", "endpoint": "ftp://x"}], "neither"),
        ([{"payer": "P3", "mode": "x12", "endpoint": "simulated", "budget": 15}], "less than 15"),
        ([{"payer": "P3"}, {"payer": "P3"}], "listed twice"),
    ):
        with pytest.raises(RoutesError, match=message):
            parse_routes(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SettingsError, match="PRIORGATE_PAYER_ROUTES_FILE"):
        create_app(
            Settings(database_url="sqlite://", payer_routes_file=broken, demo_content=False),
            security=AUTH_OFF,
        )


@pytest.fixture
def demo_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    ig_path = os.environ.get("PRIORGATE_IG_PATH") or str(tmp_path / "no-igs")
    settings = Settings(database_url=database_url, ig_path=Path(ig_path), cds_development_mode=True)
    with TestClient(
        create_app(settings, now=Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)), security=AUTH_OFF)
    ) as c:
        yield c


def test_the_demo_routes_send_pgx12_through_the_simulated_payer_over_http(demo_client: TestClient) -> None:
    bundle = legacy_bundle("X-DEMO", ("72148", "33510"))
    answer = demo_client.post(
        "/pas/2.2.1/Claim/$submit", json=bundle, headers={"Content-Type": "application/fhir+json"}
    )
    assert answer.status_code == 200, answer.text
    response = claim_response(answer.json())
    assert actions(response) == ["A1", "A4"]
    claims = demo_client.get("/fhir/Claim", params={"identifier": "urn:trnorg:1999999999|X-DEMO"}).json()
    sid = claims["entry"][0]["resource"]["id"]
    log = demo_client.get(f"/pas/submissions/{sid}/x12").json()
    assert [e["outcome"] for e in log] == ["pended"]
    assert log[0]["request278"].startswith("ISA") and "HCR*A4" in log[0]["response278"]
    later = simulate_payer_response(
        log[0]["request278"], now=datetime(2026, 3, 3, tzinfo=UTC), decide=lambda a, s: X12Decision("A1")
    )
    completed = demo_client.post(f"/pas/submissions/{sid}/x12", content=later.encode())
    assert completed.status_code == 200, completed.text
    assert actions(claim_response(completed.json())) == ["A1", "A1"]
    assert demo_client.get("/pas/submissions/nope/x12").status_code == 404
    garbage = demo_client.post(f"/pas/submissions/{sid}/x12", content=b"not x12")
    assert garbage.status_code == 400 and garbage.json()["resourceType"] == "OperationOutcome"
    other = legacy_bundle("X-OTHER", ("72148",))
    foreign_request = bundle_to_278_request(
        other, control=ControlNumbers(7, 7), now=datetime(2026, 3, 3, tzinfo=UTC)
    )
    foreign = simulate_payer_response(foreign_request, now=datetime(2026, 3, 3, tzinfo=UTC))
    refused = demo_client.post(f"/pas/submissions/{sid}/x12", content=foreign.encode())
    assert refused.status_code == 400 and "not this request" in refused.text
    current = demo_client.get(f"/fhir/ClaimResponse/{response['id']}").json()
    assert current["meta"]["versionId"] == "2"  # the foreign answer changed nothing
    local = pas_server.request_bundle("X-LOCAL", ("72148",))  # a payer PriorGate decides itself
    assert demo_client.post("/pas/2.2.1/Claim/$submit", json=local, headers=FHIR_JSON).status_code == 200
    claims = demo_client.get("/fhir/Claim", params={"identifier": "urn:trnorg:1999999999|X-LOCAL"}).json()
    local_id = claims["entry"][0]["resource"]["id"]
    assert demo_client.get(f"/pas/submissions/{local_id}/x12").json() == []
    not_routed = demo_client.post(f"/pas/submissions/{local_id}/x12", content=later.encode())
    assert not_routed.status_code == 422 and "decided here" in not_routed.text


@cache
def pas_validator(ig_path: str, version: PasVersion) -> Validator:
    registry = load_igs(Path(ig_path))
    package = next(
        p for p in registry.packages if p.name == "hl7.fhir.us.davinci-pas" and p.version == version.value
    )
    return Validator(registry, package=package)


PAS_PACKAGES = {PasVersion.V2_0_1: "davinci_pas_2.0.1.tgz", PasVersion.V2_2_1: "davinci_pas_2.2.1.tgz"}
EXAMPLE_INSURER_NPI = {PasVersion.V2_0_1: "789312", PasVersion.V2_2_1: "1234567893"}


@pytest.mark.parametrize("version", list(PAS_PACKAGES))
@pytest.mark.parametrize(
    "answer",
    [
        X12Decision("A1"),
        X12Decision("A3", reason="AA", message="Denied - not medically necessary"),
        X12Decision("A4", message="Pended for review"),
        X12Decision("A6", quantity="1", message="Modified"),
        X12Decision("AAA", reason="33"),
    ],
    ids=["A1", "A3", "A4", "A6", "AAA"],
)
def test_payer_answers_to_an_ig_example_meet_the_pas_profiles(
    database_url: str, clock: Clock, version: PasVersion, answer: X12Decision
) -> None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw or not (Path(raw) / PAS_PACKAGES[version]).is_file():
        pytest.skip("PRIORGATE_IG_PATH has no PAS package")
    with tarfile.open(Path(raw) / PAS_PACKAGES[version]) as tgz:
        handle = tgz.extractfile("package/example/Bundle-HomecareAuthorizationBundleExample.json")
        assert handle is not None
        bundle = json.loads(handle.read())
    npi = EXAMPLE_INSURER_NPI[version]
    engine = make_engine(database_url)
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        routes = parse_routes(
            [
                {
                    "payer": npi,
                    "system": "http://hl7.org/fhir/sid/us-npi",
                    "mode": "x12",
                    "endpoint": "simulated",
                }
            ]
        )
        routing = X12Routing(
            routes,
            {npi: SimulatedX12Payer(clock, decide=lambda a, s: answer)},
            ExchangeLog(engine),
            executor,
        )
        service = PasService(
            PasStore(engine), Repository(engine, load_registry(), now=clock), never, clock, x12=routing
        )
        out = service.submit(version, bundle)
    finally:
        executor.shutdown(wait=True)
        engine.dispose()
    response = claim_response(out)
    if answer.action == "AAA":
        assert response["outcome"] == "error" and response["error"][0]["code"]["coding"][0]["code"] == "33"
    else:
        assert set(actions(response)) == {answer.action}
    issues = pas_validator(raw, version).validate(out)
    assert [f"{i.expression}: {i.diagnostics}" for i in issues if i.severity in ("error", "fatal")] == []


def test_an_exchange_whose_process_stopped_expires_to_a_reviewer(
    build: Callable[..., World], clock: Clock
) -> None:
    slow = Blocking(SimulatedX12Payer(clock))
    world = build(slow, budget=0.05)
    world.service.submit(PasVersion.V2_2_1, legacy_bundle("X-LOST", ("72148",)))
    sid = submission_id(world, "X-LOST")
    assert world.service.expire_x12() == 0  # still within the route's answer timeout
    assert world.service.queue() == []
    clock.current += timedelta(seconds=0.05 + 120 + 61)  # budget + answer timeout + margin
    lost = World(replace(world.service, x12=replace(world.routing, gateways={})), world.routing, world.engine)
    assert lost.service.expire_x12() == 1
    (exchange,) = lost.service.x12_exchanges(sid)
    assert exchange.outcome == "failed" and "stopped" in (exchange.detail or "")
    assert [e.item.pended_sequences for e in lost.service.queue()] == [(1,)]
    slow.release.set()  # the answer that comes after all changes nothing: the reviewer has it
    world.routing.executor.shutdown(wait=True)
    assert [e.outcome for e in lost.service.x12_exchanges(sid)] == ["failed"]
    assert len(lost.service.queue()) == 1
    assert actions(lost.service.resources.read("ClaimResponse", claim_response_id(lost, sid)).resource()) == [
        "A4"
    ]
