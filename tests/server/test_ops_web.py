"""Payer operations over HTTP on SQLite and PostgreSQL: sign-in, CSRF, roles, the work queue, decisions
through PAS, history and audit, the dashboard and the public CMS-0057-F metrics."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cds_hooks.coverage import CoverageDecision
from cds_hooks.service import CoverageAssertion
from cds_hooks.versions import CrdVersion
from server.app import create_app
from server.ops.auth import Role
from server.ops.demo import CPT, HCPCS, SITES, request_bundle
from server.ops.service import OpsService
from server.pas.urls import EXT_CRD_COVERAGE_INFORMATION
from server.security.config import SecuritySettings
from server.settings import Settings
from server.storage.schema import pas_submission

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
BASE = "http://testserver"

AUTH_OFF = SecuritySettings(auth_mode="off")  # staff pages sign in on their own; PAS calls need no token here


class Clock:
    """Stands still unless moved (plus 1 ms per reading, so versions stay ordered)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs")
    app = create_app(settings, now=clock, security=AUTH_OFF)
    ops = app.state.ops
    assert isinstance(ops, OpsService)
    ops.add_user("rev", "Riley Reviewer", Role.REVIEWER, "rev-password")
    ops.add_user("doc", "Dr. Casey", Role.CLINICIAN_REVIEWER, "doc-password", "1922222226")
    ops.add_user("boss", "Morgan Manager", Role.MANAGER, "boss-password")
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def _ops(client: TestClient) -> OpsService:
    ops = client.app.state.ops  # type: ignore[attr-defined]
    assert isinstance(ops, OpsService)
    return ops


def submit(
    client: TestClient,
    trace: str,
    codes: tuple[tuple[str, str, str], ...],
    *,
    expedited: bool = False,
    site: int = 0,
) -> dict[str, Any]:
    bundle = request_bundle(trace, site=SITES[site], codes=codes, expedited=expedited)
    answer = client.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def inquiry_for(trace: str, site: int = 0) -> dict[str, Any]:
    """A PAS 2.2.1 inquiry for a request submitted with :func:`submit`."""
    inquiry = request_bundle(trace, site=SITES[site], codes=(MRI,))
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = f"{trace}-Q"
    return inquiry


def review_actions(claim_response: dict[str, Any]) -> list[str]:
    """The X12 HCR01 review action code of each item."""
    text = json.dumps(claim_response.get("item", []))
    return re.findall(r'"code": "(A[0-9])"', text)


MRI = (CPT, "72148", "73")
CT = (CPT, "74160", "4")
CPAP = (HCPCS, "E0601", "12")
VISIT = (CPT, "99213", "1")


def login(client: TestClient, username: str, password: str) -> None:
    page = client.get("/ops/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/ops/login",
        data={"csrf": token.group(1), "username": username, "password": password, "next": "/ops/queue"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ops/queue"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def submission_ids(html: str) -> list[str]:
    return re.findall(r'href="/ops/requests/([0-9a-f-]{36})"', html)


def test_staff_pages_need_a_sign_in_and_the_public_metrics_do_not(client: TestClient) -> None:
    answer = client.get("/ops/queue?urgency=standard", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ops/login?next=%2Fops%2Fqueue%3Furgency%3Dstandard"
    assert client.get("/ops/dashboard", follow_redirects=False).status_code == 303
    for path in ("/metrics/cms-0057", "/metrics/cms-0057.json", "/metrics/cms-0057.csv"):
        assert client.get(path).status_code == 200, path


def test_sign_in_refuses_a_wrong_password_and_a_missing_csrf_token(client: TestClient) -> None:
    page = client.get("/ops/login")
    token = csrf_of(page.text)
    wrong = client.post("/ops/login", data={"csrf": token, "username": "rev", "password": "nope"})
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    assert "priorgate_ops=" not in wrong.headers.get("set-cookie", "")
    page = client.get("/ops/login")
    forged = client.post("/ops/login", data={"csrf": "forged", "username": "rev", "password": "rev-password"})
    assert forged.status_code == 403
    cross = client.post(
        "/ops/login",
        data={"csrf": csrf_of(page.text), "username": "rev", "password": "rev-password"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    # the cookie is HttpOnly, SameSite=Lax and scoped to /ops
    login(client, "rev", "rev-password")
    assert client.get("/ops/queue").status_code == 200


def test_the_queue_puts_the_least_time_left_first_and_flags_aging(client: TestClient, clock: Clock) -> None:
    clock.current -= timedelta(days=8)
    submit(client, "OLD-STANDARD", (MRI,))  # 8 days ago: overdue
    clock.current += timedelta(days=6, hours=12)
    submit(client, "NEW-STANDARD", (CT,), site=3)  # due in 5.5 days
    clock.current += timedelta(hours=12)
    submit(client, "EXPEDITED", (CPAP,), expedited=True, site=1)  # received 1 day ago: due in 48 h
    clock.current += timedelta(days=1)
    login(client, "rev", "rev-password")
    page = client.get("/ops/queue")
    order = re.findall(r">(OLD-STANDARD|NEW-STANDARD|EXPEDITED)</a>", page.text)
    assert order == ["OLD-STANDARD", "EXPEDITED", "NEW-STANDARD"]
    assert page.text.count('class="flag overdue"') == 1
    filtered = client.get("/ops/queue?urgency=expedited")
    assert re.findall(r">(OLD-STANDARD|NEW-STANDARD|EXPEDITED)</a>", filtered.text) == ["EXPEDITED"]
    by_site = client.get("/ops/queue", params={"site": SITES[3].name})
    assert re.findall(r">(OLD-STANDARD|NEW-STANDARD|EXPEDITED)</a>", by_site.text) == ["NEW-STANDARD"]
    overdue = client.get("/ops/queue?aging=overdue")
    assert re.findall(r">(OLD-STANDARD|NEW-STANDARD|EXPEDITED)</a>", overdue.text) == ["OLD-STANDARD"]


def test_a_reviewer_approves_and_the_pas_inquiry_and_audit_show_it(client: TestClient) -> None:
    submitted = submit(client, "APPROVE-1", (MRI,))
    assert review_actions(submitted["entry"][0]["resource"]) == ["A4"]
    login(client, "rev", "rev-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    detail = client.get(f"/ops/requests/{submission_id}")
    assert "MRI lumbar spine without contrast" in detail.text and "72148" in detail.text
    decided = client.post(
        f"/ops/requests/{submission_id}/decision",
        data={"csrf": csrf_of(detail.text), "action-1": "approve"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    after = client.get(decided.headers["location"])
    assert "Decision recorded" in after.text and "Certified in total" in after.text
    assert submission_ids(client.get("/ops/queue").text) == []
    stored = client.get(f"/fhir/ClaimResponse/{submitted['entry'][0]['resource']['id']}").json()
    assert stored["meta"]["versionId"] == "2" and review_actions(stored) == ["A1"]
    found = client.post("/pas/2.2.1/Claim/$inquire", json=inquiry_for("APPROVE-1"), headers=FHIR_JSON).json()
    (returned,) = [p["resource"] for p in found["parameter"] if p["name"] == "return"]
    assert review_actions(returned["entry"][0]["resource"]) == ["A1"]
    # the reviewer shows in the history, and the decision is an AuditEvent
    assert re.search(r"<td>rev</td><td>decision</td>", after.text)
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    stored_events, _ = audit.repository.changes("AuditEvent", since=None, count=100, offset=0)
    decisions = [  # the staff decision, beside the PAS calls' own audit records
        r
        for r in (e.resource() for e in stored_events)
        if r.get("action") == "E"
        and r["agent"][0]["who"].get("identifier", {}).get("value", "").startswith("staff/")
    ]
    assert len(decisions) == 1
    assert decisions[0]["entity"][0]["detail"][0]["valueString"] == "A1"
    assert decisions[0]["agent"][0]["who"]["identifier"]["value"] == "staff/rev"


def test_only_a_clinician_reviewer_can_deny_and_a_denial_needs_a_reason(client: TestClient) -> None:
    submit(client, "DENY-1", (MRI,))
    login(client, "rev", "rev-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    page = client.get(f"/ops/requests/{submission_id}")
    form = {
        "csrf": csrf_of(page.text),
        "action-1": "deny",
        "reason-code-1": "AA",
        "reason-text-1": "Six weeks of conservative therapy are not documented",
    }
    refused = client.post(f"/ops/requests/{submission_id}/decision", data=form)
    assert refused.status_code == 403 and "Only a clinician reviewer can deny" in refused.text
    assert submission_ids(client.get("/ops/queue").text) == [submission_id]
    client.cookies.clear()
    login(client, "doc", "doc-password")
    page = client.get(f"/ops/requests/{submission_id}")
    bare = client.post(
        f"/ops/requests/{submission_id}/decision",
        data={"csrf": csrf_of(page.text), "action-1": "deny", "reason-code-1": "AA"},
    )
    assert bare.status_code == 400 and "a denial needs a reason code and a specific reason" in bare.text
    denied = client.post(
        f"/ops/requests/{submission_id}/decision",
        data={**form, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert denied.status_code == 303
    facts = _ops(client).facts(submission_id=submission_id)[0]
    assert facts.outcome.value == "denied"
    assert facts.denial_reasons == (("AA", "Six weeks of conservative therapy are not documented"),)


def test_forms_without_the_session_csrf_token_change_nothing(client: TestClient) -> None:
    submit(client, "CSRF-1", (MRI,))
    login(client, "rev", "rev-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    forged = client.post(f"/ops/requests/{submission_id}/decision", data={"csrf": "x", "action-1": "approve"})
    assert forged.status_code == 403
    assert submission_ids(client.get("/ops/queue").text) == [submission_id]


def test_extension_information_peer_to_peer_and_assignment(client: TestClient) -> None:
    submit(client, "WORK-1", (MRI,))
    login(client, "boss", "boss-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    page = client.get(f"/ops/requests/{submission_id}")
    assigned = client.post(
        f"/ops/requests/{submission_id}/assignment",
        data={"csrf": csrf_of(page.text), "assignee": "rev"},
        follow_redirects=False,
    )
    assert assigned.status_code == 303
    # a manager does not decide
    approve = client.post(
        f"/ops/requests/{submission_id}/decision", data={"csrf": csrf_of(page.text), "action-1": "approve"}
    )
    assert approve.status_code == 403
    client.cookies.clear()
    login(client, "rev", "rev-password")
    mine = client.get("/ops/queue?mine=1")
    assert submission_ids(mine.text) == [submission_id]
    page = client.get(f"/ops/requests/{submission_id}")
    token = csrf_of(page.text)
    due_before = _ops(client).facts(submission_id=submission_id)[0].due_at
    assert due_before is not None
    extended = client.post(
        f"/ops/requests/{submission_id}/extension",
        data={"csrf": token, "hours": "48", "reason": "Waiting for the imaging report"},
        follow_redirects=False,
    )
    assert extended.status_code == 303
    after = _ops(client).facts(submission_id=submission_id)[0]
    assert after.due_at == due_before + timedelta(hours=48) and after.extended
    no_reason = client.post(
        f"/ops/requests/{submission_id}/extension", data={"csrf": token, "hours": "48", "reason": " "}
    )
    assert no_reason.status_code == 400
    p2p = client.post(
        f"/ops/requests/{submission_id}/peer-to-peer",
        data={"csrf": token, "status": "scheduled", "scheduled_for": "2026-03-04T10:00", "notes": "Dr. Lee"},
        follow_redirects=False,
    )
    assert p2p.status_code == 303
    info = client.post(
        f"/ops/requests/{submission_id}/information",
        data={"csrf": token, "text": "Physical therapy notes", "loinc": "11506-3", "due": "2026-03-06"},
        follow_redirects=False,
    )
    assert info.status_code == 303
    detail = client.get(f"/ops/requests/{submission_id}").text
    assert "info-requested" in detail
    assert "scheduled</strong> for 2026-03-04T10:00" in detail
    kinds = [e.kind for e in _ops(client).store.events("", submission_id)]
    assert kinds == ["assignment", "extension", "peer-to-peer", "information-requested"]
    # still open: the queue keeps it, with the extended due time
    in_queue = client.get("/ops/queue?status=info-requested").text
    assert submission_ids(in_queue) == [submission_id]
    assert "peer-to-peer scheduled" in in_queue


def _decide(client: TestClient, submission_id: str, form: dict[str, str]) -> None:
    page = client.get(f"/ops/requests/{submission_id}")
    answer = client.post(
        f"/ops/requests/{submission_id}/decision",
        data={"csrf": csrf_of(page.text), **form},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].endswith("?notice=decided")


def test_public_metrics_equal_the_stored_decisions_of_the_year(client: TestClient, clock: Clock) -> None:
    clock.current = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    submit(client, "Y-VISIT", (VISIT,))  # approved at submission: 0 h
    submit(client, "Y-MRI", (MRI,))
    submit(client, "Y-CT", (CT,))
    submit(client, "Y-CPAP", (CPAP,), expedited=True)
    login(client, "doc", "doc-password")
    ids = {
        m[1]: m[0]
        for m in re.findall(
            r'href="/ops/requests/([0-9a-f-]{36})">(Y-[A-Z]+)<', client.get("/ops/queue").text
        )
    }
    clock.current += timedelta(hours=3)
    _decide(client, ids["Y-MRI"], {"action-1": "approve"})  # standard, approved after 3 h
    clock.current += timedelta(hours=2)
    _decide(client, ids["Y-CPAP"], {"action-1": "approve"})  # expedited, approved after 5 h
    clock.current += timedelta(hours=2)
    _decide(
        client, ids["Y-CT"], {"action-1": "deny", "reason-code-1": "BB", "reason-text-1": "Not indicated"}
    )
    clock.current = datetime(2026, 2, 1, tzinfo=UTC)
    body = client.get("/metrics/cms-0057.json").json()
    assert body["calendarYear"] == 2025
    items = {i["item"]: i for i in body["items"]}
    assert [s["rule"] for s in items[1]["services"]] == [
        "lumbar-spine-mri",
        "ct-abdomen",
        "cpap",
        "home-oxygen",
        "total-knee-arthroplasty",
    ]  # infliximab (a J code) is a drug
    assert (items[2]["numerator"], items[2]["denominator"], items[2]["percent"]) == (2, 3, 66.67)
    assert (items[3]["numerator"], items[3]["denominator"]) == (1, 3)
    assert (items[4]["numerator"], items[4]["denominator"]) == (0, 0)
    assert (items[5]["numerator"], items[5]["denominator"]) == (0, 4)
    assert (items[6]["numerator"], items[6]["denominator"], items[6]["percent"]) == (1, 1, 100.0)
    assert (items[7]["numerator"], items[7]["denominator"]) == (0, 1)
    assert items[8]["count"] == 3 and items[8]["medianHours"] == 3.0
    assert items[8]["meanHours"] == pytest.approx((0 + 3 + 7) / 3, abs=0.01)
    assert (items[9]["count"], items[9]["meanHours"], items[9]["medianHours"]) == (1, 5.0, 5.0)
    assert client.get("/metrics/cms-0057.json?year=2024").json()["items"][1]["denominator"] == 0
    page = client.get("/metrics/cms-0057?year=2025")
    assert 'data-metric="percent">66.67 %' in page.text and "2 of 3" in page.text
    rows = list(csv.DictReader(io.StringIO(client.get("/metrics/cms-0057.csv?year=2025").text)))
    standard_approved = next(r for r in rows if r["item"] == "2")
    assert (standard_approved["numerator"], standard_approved["denominator"], standard_approved["value"]) == (
        "2",
        "3",
        "66.67",
    )


def test_the_dashboard_drills_down_to_the_requests_behind_a_figure(client: TestClient, clock: Clock) -> None:
    clock.current = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    submit(client, "D-VISIT", (VISIT,), site=1)
    submit(client, "D-MRI", (MRI,))
    login(client, "rev", "rev-password")
    (mri,) = submission_ids(client.get("/ops/queue").text)
    clock.current += timedelta(hours=5)
    _decide(client, mri, {"action-1": "approve"})
    page = client.get("/ops/dashboard?year=2025")
    assert page.status_code == 200 and "<svg" in page.text
    link = re.search(
        r'href="(/ops/requests\?specialty=Sleep\+Medicine&amp;first_pass=yes&amp;year=2025)"', page.text
    )
    assert link is not None
    listed = client.get(link.group(1).replace("&amp;", "&"))
    assert re.findall(r">(D-[A-Z]+)</a>", listed.text) == ["D-VISIT"]
    bucket = client.get(
        "/ops/requests", params={"year": "2025", "urgency": "standard", "turnaround": "4-24 h"}
    )
    assert re.findall(r">(D-[A-Z]+)</a>", bucket.text) == ["D-MRI"]


def test_the_request_page_shows_dtr_answers_attachments_and_the_claim_response_versions(
    client: TestClient,
) -> None:
    bundle = request_bundle(
        "DOCS-1", site=SITES[1], codes=(CPAP,), birth_date="2014-09-01", documentation=True
    )
    response = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    response["extension"] = [
        {
            "url": EXT_CRD_COVERAGE_INFORMATION,
            "extension": [{"url": "coverage-assertion-id", "valueString": a}],
        }
        for a in ("asrt-cpap-1", "asrt-elsewhere")
    ]
    _ops(client).assertions.save([_assertion("asrt-cpap-1")], "2026-03-01T10:00:00+00:00")
    assert client.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON).status_code == 200
    login(client, "rev", "rev-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    page = client.get(f"/ops/requests/{submission_id}").text
    assert "Apnea-hypopnea index (events per hour)</td><td>18</td>" in page
    assert "Face-to-face evaluation date</td><td>2026-02-10</td>" in page
    assert "Polysomnography report" in page and "psg-report.pdf" in page
    assert "Pediatric CPAP is reviewed under the pediatric sleep policy" in page  # the pend reason
    assert "Birth date</dt><dd>2014-09-01" in page
    assert "version 1," in page and "Not routed to an X12 payer" in page
    assert "<td>asrt-cpap-1</td><td>covered</td><td>auth-needed</td><td>clinical</td><td>cpap</td>" in page
    assert "<td>asrt-elsewhere</td>" in page and "not issued by this server" in page


def _assertion(assertion_id: str) -> CoverageAssertion:
    decision = CoverageDecision(
        covered="covered",
        pa_needed="auth-needed",
        doc_needed=("clinical",),
        doc_purpose=("withpa",),
        info_needed=(),
        billing_codes=(),
        reasons=(),
        questionnaires=("https://priorgate.org/fhir/Questionnaire/cpap|1.0.0",),
        policy_links=(),
        instructions=None,
        expiry_date=None,
        payer_id="PGDEMO",
        payer_name="PriorGate Demo Health Plan",
        rule_id="cpap",
        topic="cpap",
        title="CPAP",
        matched_case=None,
        undetermined=(),
        stale=False,
        alternate=None,
        companions=(),
    )
    return CoverageAssertion(
        assertion_id,
        "order-sign",
        "hook-1",
        "DeviceRequest/cpap-1",
        "Coverage/cov-1",
        "PGDEMO",
        CrdVersion.V2_0,
        decision,
        {},
    )


def test_review_clocks_are_configurable_per_line_of_business(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url,
        demo_content=False,
        ig_path=tmp_path / "no-igs",
        review_clocks={"QHP": {"standard_days": 15}},
    )
    clock = Clock()
    with TestClient(create_app(settings, now=clock, security=AUTH_OFF), base_url=BASE) as client:
        for trace, line in (("QHP-1", "QHP"), ("HMO-1", "HMO")):
            bundle = request_bundle(trace, site=SITES[0], codes=(MRI,), line_of_business=line)
            assert client.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON).status_code == 200
        due = {f.claim_identifier: f.due_at - f.received_at for f in _ops(client).facts() if f.due_at}
        assert due == {"QHP-1": timedelta(days=15), "HMO-1": timedelta(days=7)}


def test_repeated_wrong_passwords_lock_the_user_for_a_while(client: TestClient, clock: Clock) -> None:
    def attempt(password: str) -> int:
        page = client.get("/ops/login")
        data = {"csrf": csrf_of(page.text), "username": "rev", "password": password}
        return client.post("/ops/login", data=data, follow_redirects=False).status_code

    assert [attempt("wrong") for _ in range(5)] == [401] * 5
    assert attempt("rev-password") == 401  # locked: even the right password waits
    clock.current += timedelta(minutes=16)
    assert attempt("rev-password") == 303


def test_sign_out_and_expiry_end_the_session(client: TestClient, clock: Clock) -> None:
    login(client, "rev", "rev-password")
    cookie = client.cookies.get("priorgate_ops")
    queue = client.get("/ops/queue")
    out = client.post("/ops/logout", data={"csrf": csrf_of(queue.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ops/login?notice=signed-out"
    client.cookies.set("priorgate_ops", cookie or "", path="/ops")  # a kept copy of the cookie is dead too
    assert client.get("/ops/queue", follow_redirects=False).status_code == 303
    client.cookies.clear()
    login(client, "rev", "rev-password")
    clock.current += timedelta(hours=8, minutes=1)
    assert client.get("/ops/queue", follow_redirects=False).status_code == 303


def test_an_unknown_request_is_a_404_page(client: TestClient) -> None:
    login(client, "rev", "rev-password")
    answer = client.get("/ops/requests/no-such-request")
    assert answer.status_code == 404 and "No request" in answer.text


def test_an_appeal_that_overturns_a_denial_counts_in_item_4(client: TestClient, clock: Clock) -> None:
    clock.current = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    submit(client, "APPEAL-1", (MRI,))
    login(client, "doc", "doc-password")
    (submission_id,) = submission_ids(client.get("/ops/queue").text)
    bad_code = {"action-1": "deny", "reason-code-1": "A A", "reason-text-1": "Not indicated"}
    page = client.get(f"/ops/requests/{submission_id}")
    refused = client.post(
        f"/ops/requests/{submission_id}/decision", data={"csrf": csrf_of(page.text), **bad_code}
    )
    assert refused.status_code == 400
    _decide(
        client, submission_id, {"action-1": "deny", "reason-code-1": "aa", "reason-text-1": "Not indicated"}
    )
    assert _ops(client).facts(submission_id=submission_id)[0].denial_reasons == (("AA", "Not indicated"),)
    page = client.get(f"/ops/requests/{submission_id}")
    for status in ("pending", "approved"):
        answer = client.post(
            f"/ops/requests/{submission_id}/appeal",
            data={"csrf": csrf_of(page.text), "status": status, "notes": "records supplied"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
    clock.current = datetime(2026, 1, 10, tzinfo=UTC)
    item4 = client.get("/metrics/cms-0057.json").json()["items"][3]
    assert (item4["numerator"], item4["denominator"], item4["percent"]) == (1, 1, 100.0)
    # a reviewer cannot record appeals
    client.cookies.clear()
    login(client, "rev", "rev-password")
    page = client.get(f"/ops/requests/{submission_id}")
    refused = client.post(
        f"/ops/requests/{submission_id}/appeal", data={"csrf": csrf_of(page.text), "status": "upheld"}
    )
    assert refused.status_code == 403


def test_the_metrics_api_refuses_a_bad_year_and_may_be_cached_publicly(client: TestClient) -> None:
    bad = client.get("/metrics/cms-0057.json?year=20x5")
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert client.get("/metrics/cms-0057.csv?year=1900").status_code == 400
    good = client.get("/metrics/cms-0057.json?year=2025")
    assert good.headers["cache-control"] == "public, max-age=300"
    assert client.get("/metrics/cms-0057?year=abc").status_code == 200  # the page shows the default year


def test_an_unreadable_stored_request_does_not_take_the_queue_down(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    submit(client, "GOOD-1", (MRI,))
    submit(client, "BROKEN-1", (CT,))
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            pas_submission.update()
            .where(pas_submission.c.request.contains("BROKEN-1"))
            .values(request='{"resourceType": "Bundle"}', updated="2026-03-02T15:00:00+00:00")
        )
    login(client, "rev", "rev-password")
    page = client.get("/ops/queue")
    assert page.status_code == 200
    assert re.findall(r">(GOOD-1|BROKEN-1)</a>", page.text) == ["GOOD-1"]
    assert "cannot be read" in caplog.text
    assert client.get("/metrics/cms-0057.json").status_code == 200
