"""End-to-end: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright against the app served by
uvicorn on a free loopback port, with the operations demo data. Screenshots go to ``test-artifacts/browser``
(git-ignored). ``.ci/run`` installs Chromium when it is missing; without it these tests skip (and CI fails).

The first test runs with JavaScript disabled: the pages work without it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.ops.demo import SERVICES, SITES, load_demo, request_bundle
from server.ops.service import OpsService
from server.security.config import SecuritySettings
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


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    settings = Settings(database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs")
    app = create_app(settings, now=Clock(), security=AUTH_OFF)
    ops = app.state.ops
    assert isinstance(ops, OpsService)
    load_demo(ops)
    port = _free_port()
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
        yield Served(f"http://127.0.0.1:{port}", ops)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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
