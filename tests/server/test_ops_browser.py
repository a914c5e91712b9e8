"""End-to-end: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright against the app served by
uvicorn on a free loopback port, with the operations demo data. Screenshots go to ``test-artifacts/browser``
(git-ignored). ``.ci/run`` installs Chromium when it is missing; without it these tests skip (and CI fails).

The first test runs with JavaScript disabled: the pages work without it. The last one runs with security
on (PRIORGATE_AUTH_MODE=local, the demo clients): a submitter subscribes to its organization's PAS results,
a reviewer approves its pended request in the browser, and the subscriber's endpoint hears of it.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from conformance.listener import Listener
from conformance.suites.pas_server import status_of, subscription
from server.app import create_app
from server.ops.demo import CPT, SERVICES, SITES, load_demo, load_staff, request_bundle
from server.ops.service import OpsService
from server.security.config import SecuritySettings
from server.security.demo import request_token
from server.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"
)

AUTH_OFF = SecuritySettings(auth_mode="off")  # staff pages sign in on their own; PAS calls need no token here


class Clock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    def __init__(self, base_url: str, ops: OpsService) -> None:
        self.base_url = base_url
        self.ops = ops


@contextmanager
def _serving(app: Any, port: int | None = None) -> Iterator[str]:
    """``app`` under uvicorn (lifespan on: the notification worker runs) on ``port`` or a free one."""
    port = port or _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    settings = Settings(database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs")
    app = create_app(settings, now=Clock(), security=AUTH_OFF)
    ops = app.state.ops
    assert isinstance(ops, OpsService)
    load_demo(ops)
    with _serving(app) as base_url:
        yield Served(base_url, ops)


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, name: str, request: pytest.FixtureRequest) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    engine = request.node.callspec.params.get("database_url", "db")
    page.screenshot(path=str(ARTIFACTS / f"{name}-{engine}.png"), full_page=True)


def _sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/ops/queue")
    assert page.url.startswith(f"{base_url}/ops/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/ops/queue")


def test_a_reviewer_works_the_most_urgent_request_to_an_approval(
    served: Served, browser: Any, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, served.base_url, "reviewer", "reviewer-demo")
    first_row = page.locator("#requests tbody tr").first
    assert first_row.locator(".flag.overdue").count() == 1
    assert first_row.locator("a").inner_text() == "DEMO-OPEN-001"  # the overdue one is on top
    _shot(page, "queue", request)
    first_row.locator("a").click()
    page.wait_for_url(re.compile(r".*/ops/requests/[0-9a-f-]{36}$"))
    submission_id = page.url.rsplit("/", 1)[1]
    assert "MRI lumbar spine without contrast" in page.content()
    page.get_by_label("Approve", exact=True).check()
    _shot(page, "request", request)
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(re.compile(r".*\?notice=decided$"))
    assert page.locator("#notice").inner_text().startswith("Decision recorded")
    assert "Certified in total" in page.locator("table").first.inner_text()
    _shot(page, "decided", request)
    # stored: the request left the queue with an approval ...
    (facts,) = served.ops.facts(submission_id=submission_id)
    assert facts.outcome.value == "approved" and not facts.is_open
    page.goto(f"{served.base_url}/ops/queue")
    assert "DEMO-OPEN-001" not in page.locator("#requests").inner_text()
    # ... and the submitter's PAS inquiry returns it
    inquiry = request_bundle("DEMO-OPEN-001", site=SITES[0], codes=(SERVICES[0],))
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = "DEMO-OPEN-001-Q"
    answer = httpx.post(
        f"{served.base_url}/pas/2.2.1/Claim/$inquire",
        json=inquiry,
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 200, answer.text
    (returned,) = [p["resource"] for p in answer.json()["parameter"] if p["name"] == "return"]
    claim_response = returned["entry"][0]["resource"]
    assert re.findall(r'"code":\s*"(A[0-9])"', str(claim_response["item"]).replace("'", '"')) == ["A1"]
    context.close()


def test_the_public_metrics_page_shows_what_the_database_holds(
    served: Served, browser: Any, request: pytest.FixtureRequest
) -> None:
    year = 2025
    report = served.ops.cms_report(year)
    assert report.standard_approved.denominator > 0  # the demo seeded this year
    page = browser.new_page()
    page.goto(f"{served.base_url}/metrics/cms-0057?year={year}")  # no sign-in
    assert page.locator("h1").inner_text() == f"Prior authorization metrics, {year}"
    _shot(page, "metrics", request)
    rows = {int(r.locator("td").first.inner_text()): r for r in page.locator("#figures tbody tr").all()}
    assert sorted(rows) == list(range(2, 10))
    for number, ratio in (
        (2, report.standard_approved),
        (3, report.standard_denied),
        (4, report.standard_approved_after_appeal),
        (5, report.extended_and_approved),
        (6, report.expedited_approved),
        (7, report.expedited_denied),
    ):
        assert rows[number].locator('[data-metric="counts"]').inner_text() == (
            f"{ratio.numerator} of {ratio.denominator}"
        )
        expected = f"{ratio.percent:.2f} %" if ratio.percent is not None else "no requests"
        assert rows[number].locator('[data-metric="percent"]').inner_text() == expected
    for number, elapsed in ((8, report.standard_time), (9, report.expedited_time)):
        text = rows[number].locator('[data-metric="time"]').inner_text()
        assert (
            f"average {elapsed.mean_hours:.2f} h" in text and f"median {elapsed.median_hours:.2f} h" in text
        )
    listed = page.locator("#services tbody tr").count()
    assert listed == len(report.services) > 0
    # the CSV download carries the same figures
    csv_text = httpx.get(f"{served.base_url}/metrics/cms-0057.csv?year={year}").text
    assert f"2,Standard requests approved (%),{report.standard_approved.numerator}," in csv_text


def test_the_dashboard_drills_down_from_a_figure(
    served: Served, browser: Any, request: pytest.FixtureRequest
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, served.base_url, "manager", "manager-demo")
    page.goto(f"{served.base_url}/ops/dashboard?year=2025")
    assert page.locator("svg").count() == 2
    _shot(page, "dashboard", request)
    overdue = page.locator("#exposure tbody tr").first.locator("a")
    assert overdue.inner_text() == "0"  # expedited overdue
    denial = page.locator("#denials tbody tr").first
    count = int(denial.locator("a").inner_text())
    denial.locator("a").click()
    page.wait_for_url(re.compile(r".*/ops/requests\?.*denial="))
    assert page.locator("#requests tbody tr").count() == count
    _shot(page, "drill-down", request)
    # every form control on the request pages has a label
    page.goto(f"{served.base_url}/ops/queue")
    page.locator("#requests tbody tr a").first.click()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
              .map(e => e.name)"""
    )
    assert unlabelled == []


# -- security on: a subscribed PAS client hears of the reviewer's approval ---------------------------------

CLINIC = "org-demo-clinic"  # the organization of the demo client demo-ehr
NOTIFICATION_WAIT = 20.0  # seconds the test waits for a delivery (the worker is woken by the decision)


@dataclass
class SecuredServer:
    base_url: str
    ops: OpsService
    keys: Path  # the demo clients' private keys
    clock: Clock

    def bearer(self, client_id: str) -> dict[str, str]:
        """What ``priorgate token --client <client_id>`` gives, as request headers."""
        body = request_token(client_id, base_url=self.base_url, folder=self.keys, now=self.clock())
        assert "access_token" in body, body
        return {"Authorization": f"Bearer {body['access_token']}"}


@pytest.fixture
def secured_served(database_url: str, tmp_path: Path) -> Iterator[SecuredServer]:
    port = _free_port()
    settings = Settings(
        database_url=database_url,
        demo_content=False,
        ig_path=tmp_path / "no-igs",
        base_url=f"http://127.0.0.1:{port}",  # the token endpoint client assertions are addressed to
        notification_poll_interval=0.05,
        notification_backoff=0.1,
    )
    security = SecuritySettings(auth_mode="local", security_dir=tmp_path / "security", demo_clients=True)
    clock = Clock()
    app = create_app(settings, now=clock, security=security)
    ops = app.state.ops
    assert isinstance(ops, OpsService)
    load_staff(ops)  # the demo staff users; no demo requests
    with _serving(app, port) as base_url:
        yield SecuredServer(base_url, ops, tmp_path / "security" / "demo-keys", clock)


def _kind(body: Any) -> str:
    return str(status_of(body).get("type", {}).get("valueCode", ""))


def _claim_responses(value: Any) -> Iterator[dict[str, Any]]:
    """Every ClaimResponse anywhere in a notification Bundle."""
    if isinstance(value, dict):
        if value.get("resourceType") == "ClaimResponse":
            yield value
        for inner in value.values():
            yield from _claim_responses(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _claim_responses(inner)


def test_a_reviewer_approves_the_top_request_and_the_subscribed_client_hears_of_it(
    secured_served: SecuredServer, browser: Any, request: pytest.FixtureRequest
) -> None:
    base = secured_served.base_url
    with Listener() as hook:
        # the submitter (demo-ehr, organization org-demo-clinic) subscribes to its organization's results
        submitter = secured_served.bearer("demo-ehr")
        fhir = {"Content-Type": "application/fhir+json"} | submitter
        created = httpx.post(
            f"{base}/pas/2.2.1/Subscription", json=subscription(hook.url, "2.2.1"), headers=fhir
        )
        assert created.status_code == 201, created.text
        subscription_url = f"{base}/pas/2.2.1/Subscription/{created.json()['id']}"
        assert hook.wait_for(lambda b: _kind(b) == "handshake", NOTIFICATION_WAIT) is not None
        deadline = time.monotonic() + NOTIFICATION_WAIT
        while httpx.get(subscription_url, headers=submitter).json().get("status") != "active":
            assert time.monotonic() < deadline, "the subscription never became active"
            time.sleep(0.05)
        # ... then submits two requests that pend: a standard one, then an expedited one (less time left)
        for trace, codes, expedited in (
            ("EHR-STD-1", ((CPT, "72148", "73"),), False),
            ("EHR-EXP-1", ((CPT, "74160", "4"),), True),
        ):
            bundle = request_bundle(trace, site=SITES[0], codes=codes, expedited=expedited)
            submitted = httpx.post(f"{base}/pas/2.2.1/Claim/$submit", json=bundle, headers=fhir)
            assert submitted.status_code == 200, submitted.text
            assert "A4" in json.dumps(submitted.json())  # pended for a reviewer
        assert {f.tenant for f in secured_served.ops.facts(open_only=True)} == {CLINIC}

        # the reviewer signs in, finds the expedited request at the top of the queue and approves it
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        _sign_in(page, base, "reviewer", "reviewer-demo")
        rows = page.locator("#requests tbody tr")
        assert rows.count() == 2
        assert rows.first.locator("a").inner_text() == "EHR-EXP-1"
        assert rows.first.locator(".flag.expedited").count() == 1
        _shot(page, "subscribed-queue", request)
        rows.first.locator("a").click()
        page.wait_for_url(re.compile(r".*/ops/requests/[0-9a-f-]{36}\?tenant=" + CLINIC + "$"))
        submission_id = page.url.rsplit("/", 1)[1].split("?")[0]
        assert page.locator("#tenant").inner_text() == CLINIC
        page.get_by_label("Approve", exact=True).check()
        page.get_by_role("button", name="Record decision").click()
        page.wait_for_url(re.compile(r".*\?notice=decided&tenant=" + CLINIC + "$"))
        assert page.locator("#notice").inner_text().startswith("Decision recorded")
        _shot(page, "subscribed-approval", request)

        # the subscriber's endpoint receives the event notification: the ClaimResponse certifies (A1)
        note = hook.wait_for(lambda b: _kind(b) == "event-notification", NOTIFICATION_WAIT)
        assert note is not None, f"no event notification; got {[_kind(b) for b in hook.received]}"
        record = secured_served.ops.pas_for(CLINIC).store.get(submission_id)
        assert record is not None
        (claim_response,) = [
            c for c in _claim_responses(note) if c.get("id") == record.stored.claim_response_id
        ]
        assert claim_response["outcome"] == "complete"
        assert re.findall(r'"code": "(A[0-9])"', json.dumps(claim_response["item"])) == ["A1"]
        assert status_of(note)["subscription"]["valueReference"]["reference"].endswith(
            f"/Subscription/{created.json()['id']}"
        )
        # the standard request is still pended, still in the queue, and nobody was told about it
        page.goto(f"{base}/ops/queue")
        assert page.locator("#requests tbody tr").count() == 1
        assert page.locator("#requests tbody tr a").first.inner_text() == "EHR-STD-1"
        assert [_kind(b) for b in hook.received].count("event-notification") == 1
        context.close()
