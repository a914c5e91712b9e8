"""Payer operations across organizations, with security on (PRIORGATE_AUTH_MODE=local and the demo clients,
as ``make run`` serves them), on SQLite and PostgreSQL: requests the demo clients submit are stored in their
organizations' tenants, and payer staff see and work every one of them from ``/ops``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from server.app import create_app
from server.ops.auth import Role
from server.ops.demo import CPT, SITES, request_bundle
from server.ops.service import OpsService
from server.security.config import SecuritySettings
from server.security.demo import request_token
from server.settings import Settings
from server.storage.schema import ops_event, pas_review, pas_submission

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRI = (CPT, "72148", "73")  # pends for a reviewer
CT = (CPT, "74160", "4")  # pends for a reviewer
CLINIC, HOSPITAL = "org-demo-clinic", "org-demo-hospital"


@dataclass
class Served:
    http: TestClient
    keys: Path
    clock: Any

    @property
    def ops(self) -> OpsService:
        found = self.http.app.state.ops  # type: ignore[attr-defined]
        assert isinstance(found, OpsService)
        return found

    @property
    def engine(self) -> Engine:
        found = self.http.app.state.services.engine  # type: ignore[attr-defined]
        assert isinstance(found, Engine)
        return found

    def bearer(self, client_id: str, organization: str | None = None) -> dict[str, str]:
        """What ``priorgate token --client <client_id>`` gives, as request headers."""
        body = request_token(client_id, base_url=BASE, folder=self.keys, http=self.http, now=self.clock())
        assert "access_token" in body, body
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        return headers | ({"X-PriorGate-Organization": organization} if organization else {})

    def submit(self, trace: str, codes: tuple[tuple[str, str, str], ...], headers: dict[str, str]) -> Any:
        bundle = request_bundle(trace, site=SITES[0], codes=codes)
        answer = self.http.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON | headers)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def served(database_url: str, tmp_path: Path, clock: Any) -> Iterator[Served]:
    settings = Settings(
        database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs", base_url=BASE
    )
    security = SecuritySettings(auth_mode="local", security_dir=tmp_path / "security", demo_clients=True)
    app = create_app(settings, now=clock, security=security)
    ops = app.state.ops
    assert isinstance(ops, OpsService)
    ops.add_user("rev", "Riley Reviewer", Role.REVIEWER, "rev-password")
    with TestClient(app, base_url=BASE) as http:
        yield Served(http, tmp_path / "security" / "demo-keys", clock)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(http: TestClient) -> None:
    answer = http.post(
        "/ops/login",
        data={
            "csrf": _csrf(http.get("/ops/login").text),
            "username": "rev",
            "password": "rev-password",
            "next": "/ops/queue",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ops/queue"


def _link(html: str, trace: str) -> str:
    found = re.search(r'<a href="([^"]+)">' + re.escape(trace) + "</a>", html)
    assert found is not None, f"{trace} is not in the page"
    return found.group(1).replace("&amp;", "&")


def test_staff_see_and_decide_requests_the_demo_clients_submitted_for_their_organizations(
    served: Served,
) -> None:
    clinic = served.bearer("demo-ehr")
    served.submit("EHR-MRI-1", (MRI,), clinic)
    served.submit("HOSP-CT-1", (CT,), served.bearer("demo-intermediary", HOSPITAL))
    with served.engine.connect() as connection:  # where PAS stored them
        stored = dict(connection.execute(select(pas_submission.c.tenant, pas_submission.c.status)).all())
    assert stored == {CLINIC: "pended", HOSPITAL: "pended"}

    _sign_in(served.http)
    queue = served.http.get("/ops/queue")
    assert queue.status_code == 200
    assert "2 requests" in queue.text
    clinic_url, hospital_url = _link(queue.text, "EHR-MRI-1"), _link(queue.text, "HOSP-CT-1")
    assert clinic_url.endswith(f"?tenant={CLINIC}") and hospital_url.endswith(f"?tenant={HOSPITAL}")
    only_hospital = served.http.get("/ops/queue", params={"tenant": HOSPITAL}).text
    assert "HOSP-CT-1" in only_hospital and "EHR-MRI-1" not in only_hospital

    # the request page reads the clinic's tenant: its items, its ClaimResponse history
    page = served.http.get(clinic_url)
    assert page.status_code == 200
    assert re.search(r'<dd id="tenant">' + CLINIC + "</dd>", page.text)
    assert "MRI lumbar spine" in page.text or "72148" in page.text
    submission_id = clinic_url.split("/")[3].split("?")[0]
    # the id alone finds it too (submission ids are unique); an unknown id is a 404 page
    assert served.http.get(f"/ops/requests/{submission_id}").status_code == 200
    assert served.http.get(f"/ops/requests/{submission_id}?tenant={HOSPITAL}").status_code == 404

    decided = served.http.post(
        f"/ops/requests/{submission_id}/decision",
        data={"csrf": _csrf(page.text), "tenant": CLINIC, "action-1": "approve"},
        follow_redirects=False,
    )
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"] == f"/ops/requests/{submission_id}?notice=decided&tenant={CLINIC}"

    # the submitter reads the decision in its own organization: a new ClaimResponse version, certified
    (facts,) = served.ops.facts(submission_id=submission_id)
    assert facts.tenant == CLINIC and facts.outcome.value == "approved" and not facts.is_open
    record = served.ops.pas_for(CLINIC).store.get(submission_id)
    assert record is not None
    read = served.http.get(f"/fhir/ClaimResponse/{record.stored.claim_response_id}", headers=clinic)
    assert read.status_code == 200 and read.json()["meta"]["versionId"] == "2"
    assert re.findall(r"'code': '(A[0-9])'", str(read.json()["item"])) == ["A1"]

    # the hospital's request is still open; taking it assigns the review row of the hospital's tenant
    hospital_page = served.http.get(hospital_url)
    hospital_id = hospital_url.split("/")[3].split("?")[0]
    taken = served.http.post(
        f"/ops/requests/{hospital_id}/assignment",
        data={"csrf": _csrf(hospital_page.text), "tenant": HOSPITAL, "assignee": "me"},
        follow_redirects=False,
    )
    assert taken.status_code == 303, taken.text
    for action, fields in (
        ("extension", {"hours": "48", "reason": "Waiting for the imaging report"}),
        ("peer-to-peer", {"status": "requested", "notes": "Ordering physician asked"}),
    ):
        answer = served.http.post(
            f"/ops/requests/{hospital_id}/{action}",
            data={"csrf": _csrf(hospital_page.text), "tenant": HOSPITAL} | fields,
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
    (hospital,) = served.ops.facts(submission_id=hospital_id)
    assert hospital.tenant == HOSPITAL and hospital.extended
    queue = served.http.get("/ops/queue").text
    assert "1 request," in queue and "HOSP-CT-1" in queue and "EHR-MRI-1" not in queue
    assert "peer-to-peer requested" in queue
    with served.engine.connect() as connection:
        reviews = dict(connection.execute(select(pas_review.c.tenant, pas_review.c.assignee)).all())
        events = sorted(connection.execute(select(ops_event.c.tenant, ops_event.c.kind)).all())
    assert reviews == {CLINIC: "rev", HOSPITAL: "rev"}
    assert events == [
        (CLINIC, "decision"),
        (HOSPITAL, "assignment"),
        (HOSPITAL, "extension"),
        (HOSPITAL, "peer-to-peer"),
    ]
    assert [e.kind for e in served.ops.store.events(CLINIC, submission_id)] == ["decision"]

    # the dashboard's drill-down and the public metrics count every organization's requests
    approved = served.http.get("/ops/requests", params={"outcome": "approved"}).text
    assert "EHR-MRI-1" in approved and "HOSP-CT-1" not in approved
    report = served.ops.cms_report(served.clock().year)
    assert report.standard_approved.numerator == 1 and report.standard_approved.denominator == 1
