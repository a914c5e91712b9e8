"""Group/$export (Bulk Data 2.0) for Provider Access and Payer-to-Payer on SQLite and PostgreSQL: kick-off,
status, manifest, NDJSON download, consent (opt-out, opt-in) with its AuditEvents, the CMS-0057-F content
rules (dates of service, drugs, denied PAs, cost sharing), _type/_since, bad parameters, cancel, expiry,
and the job lease. The worker is off: each test runs the export itself (ExportRunner.run_once)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.bulk.jobs import JobStore
from server.bulk.runner import ExportRunner, bulk_settings
from server.security.config import SecuritySettings
from server.services import Services
from server.settings import Settings

from . import bulk_fixtures as data
from .conftest import Clock

BASE = "http://testserver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
AUTH_OFF = SecuritySettings(auth_mode="off")  # access control is tested in test_bulk_export_security.py


@dataclass
class Exporter:
    http: TestClient
    clock: Clock

    @property
    def services(self) -> Services:
        found = self.http.app.state.services  # type: ignore[attr-defined]
        assert isinstance(found, Services)
        return found

    def runner(self) -> ExportRunner:
        svc = self.services
        return ExportRunner(
            JobStore(svc.engine), svc.repository, svc.now, bulk_settings(svc.settings), audit=svc.audit
        )

    def put(self, resource: dict[str, Any]) -> None:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        answer = self.http.put(path, content=orjson.dumps(resource), headers=FHIR_JSON)
        assert answer.status_code in (200, 201), answer.text

    def kickoff(self, group_id: str, query: str = "") -> str:
        answer = self.http.get(f"/fhir/Group/{group_id}/$export{query}", headers=ASYNC)
        assert answer.status_code == 202, answer.text
        location = answer.headers["content-location"]
        assert location.startswith(BASE + "/fhir/bulk-status/")
        return location.removeprefix(BASE)

    def export(self, group_id: str, query: str = "") -> dict[str, Any]:
        status = self.kickoff(group_id, query)
        assert self.runner().run_once() is True
        answer = self.http.get(status)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body, dict)
        return body

    def resources(self, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``Type/id`` -> resource over every output file."""
        out: dict[str, dict[str, Any]] = {}
        for entry in manifest["output"]:
            answer = self.http.get(entry["url"].removeprefix(BASE))
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("application/fhir+ndjson")
            lines = answer.content.decode().splitlines()
            assert len(lines) == entry["count"]
            for line in lines:
                resource = orjson.loads(line)
                assert resource["resourceType"] == entry["type"]
                out[f"{resource['resourceType']}/{resource['id']}"] = resource
        return out

    def audit_events(self, code: str) -> list[dict[str, Any]]:
        audit = self.services.audit
        assert audit is not None
        with audit.repository.reading() as tx:
            query = audit.repository.parse_search("AuditEvent", [("type", code), ("_count", "100")])
            page = tx.search(query)
        return [m.resource() for m in page.matches]


@pytest.fixture
def exporter(database_url: str, clock: Clock) -> Iterator[Exporter]:
    settings = Settings(
        database_url=database_url,
        demo_content=False,
        base_url=BASE,
        bulk_export_worker=False,
        bulk_export_lines_per_file=2,
    )
    with TestClient(create_app(settings, now=clock, security=AUTH_OFF), base_url=BASE) as http:
        found = Exporter(http, clock)
        for resource in data.payer_data():
            found.put(resource)
        found.put(data.group("g-clinic", data.CLINIC, ["p1", "p2", "p3"]))
        found.put(data.group("g-p2p", data.NEW_PAYER, ["p1", "p2"], purpose="payer-to-payer"))
        yield found


def test_kickoff_poll_manifest_and_ndjson_download(exporter: Exporter) -> None:
    status = exporter.kickoff("g-clinic")
    waiting = exporter.http.get(status)
    assert waiting.status_code == 202
    assert waiting.headers["x-progress"] and waiting.headers["retry-after"] == "2"
    assert exporter.runner().run_once() is True
    done = exporter.http.get(status)
    assert done.status_code == 200
    assert done.headers["content-type"].startswith("application/json")
    assert "expires" in done.headers
    manifest = done.json()
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["request"] == BASE + "/fhir/Group/g-clinic/$export"
    assert manifest["requiresAccessToken"] is False  # authentication is off in this test
    assert manifest["error"] == []
    # two lines per file (PRIORGATE_BULK_EXPORT_LINES_PER_FILE=2): Patient p1, p2 -> one file
    assert [e["count"] for e in manifest["output"] if e["type"] == "Patient"] == [2]
    found = exporter.resources(manifest)
    assert "Patient/p1" in found and "Patient/p2" in found and "Coverage/cov1" in found
    assert "Condition/cond-p2" in found
    # PA information: approved and denied PAs (Provider Access keeps denials), never drugs
    assert {"Claim/c-ok", "ClaimResponse/cr-ok", "Claim/c-denied", "ClaimResponse/cr-denied"} <= set(found)
    assert "Claim/c-drug" not in found and "ClaimResponse/cr-drug" not in found
    # dates of service from 2016 on
    assert "Observation/obs-2019" in found and "Observation/obs-2015" not in found
    # claims without remittance and cost sharing
    eob = found["ExplanationOfBenefit/eob1"]
    assert "payment" not in eob and "total" not in eob
    assert "amount" not in eob["item"][0]["adjudication"][0]


def test_opted_out_patient_is_absent_and_the_decision_audited(exporter: Exporter) -> None:
    found = exporter.resources(exporter.export("g-clinic"))
    assert "Patient/p3" not in found and "Observation/obs-p3" not in found
    decisions = exporter.audit_events("consent-decision")
    assert len(decisions) == 1
    patients = [e["what"]["reference"] for e in decisions[0]["entity"] if e["role"]["code"] == "1"]
    assert patients == ["Patient/p3"]
    assert "opt-out" in decisions[0]["outcomeDesc"]
    assert len(exporter.audit_events("bulk-export")) == 1
    assert len(exporter.audit_events("bulk-download")) >= 1


def test_opting_back_in_with_a_later_permit(exporter: Exporter) -> None:
    exporter.put(data.opt_out("consent-p3-back", "p3", kind="permit", when="2026-02-01"))
    found = exporter.resources(exporter.export("g-clinic"))
    assert "Patient/p3" in found and "Observation/obs-p3" in found
    assert exporter.audit_events("consent-decision") == []


def test_payer_to_payer_exports_opted_in_members_without_denials_or_old_data(exporter: Exporter) -> None:
    found = exporter.resources(exporter.export("g-p2p"))
    assert "Patient/p1" in found and "Coverage/cov1" in found
    assert "Patient/p2" not in found and "Condition/cond-p2" not in found  # no opt-in
    assert "Claim/c-ok" in found and "ClaimResponse/cr-ok" in found
    assert "Claim/c-denied" not in found and "ClaimResponse/cr-denied" not in found
    assert "Claim/c-drug" not in found
    # five years back from 2026-03-01: 2019 and 2015 are out, 2025 in
    assert "Observation/obs-2025" in found
    assert "Observation/obs-2019" not in found and "Observation/obs-2015" not in found
    decisions = exporter.audit_events("consent-decision")
    assert [e["what"]["reference"] for d in decisions for e in d["entity"] if e["role"]["code"] == "1"] == [
        "Patient/p2"
    ]


def test_an_opt_in_for_another_payer_does_not_count(exporter: Exporter) -> None:
    exporter.put(data.hrex_opt_in("consent-p1", "p1", payer_id="SOMEONE-ELSE"))
    manifest = exporter.export("g-p2p")
    assert manifest["output"] == []


def test_type_and_since_are_honoured(exporter: Exporter) -> None:
    manifest = exporter.export("g-clinic", "?_type=Observation,Patient")
    assert {e["type"] for e in manifest["output"]} == {"Observation", "Patient"}
    checkpoint = exporter.clock().isoformat()
    exporter.put(data._observation("obs-2025", "p1", "2025-07-01"))  # changed after the checkpoint
    later = exporter.export("g-clinic", f"?_since={checkpoint.replace('+00:00', 'Z')}")
    assert set(exporter.resources(later)) == {"Observation/obs-2025"}


def test_post_kickoff_with_parameters(exporter: Exporter) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Coverage"}]}
    answer = exporter.http.post(
        "/fhir/Group/g-clinic/$export", content=orjson.dumps(body), headers=ASYNC | FHIR_JSON
    )
    assert answer.status_code == 202
    exporter.runner().run_once()
    manifest = exporter.http.get(answer.headers["content-location"].removeprefix(BASE)).json()
    assert [e["type"] for e in manifest["output"]] == ["Coverage"]


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?_typeFilter=Observation%3Fstatus%3Dfinal", ASYNC),
        ("?_elements=id", ASYNC),
        ("?_type=Medication", ASYNC),
        ("?_outputFormat=text/csv", ASYNC),
        ("?_since=2020-01-01", ASYNC),
        ("?patient=Patient/p1", ASYNC),
        ("?unknown=1", ASYNC),
        ("", {"Accept": "application/fhir+json"}),  # no Prefer: respond-async
    ],
)
def test_bad_kickoffs_are_400_operation_outcomes(
    exporter: Exporter, query: str, headers: dict[str, str]
) -> None:
    answer = exporter.http.get(f"/fhir/Group/g-clinic/$export{query}", headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert JobStore(exporter.services.engine).count() == (0, 0)


def test_output_format_spellings_are_accepted(exporter: Exporter) -> None:
    for value in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        exporter.kickoff("g-clinic", f"?_outputFormat={value.replace('+', '%2B')}")


def test_unknown_group_is_404(exporter: Exporter) -> None:
    answer = exporter.http.get("/fhir/Group/nobody/$export", headers=ASYNC)
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_a_group_without_a_managing_organization_is_refused(exporter: Exporter) -> None:
    loose = data.group("g-loose", data.CLINIC, ["p1"])
    del loose["managingEntity"]
    exporter.put(loose)
    assert exporter.http.get("/fhir/Group/g-loose/$export", headers=ASYNC).status_code == 422


def test_cancel_deletes_the_job_and_its_files(exporter: Exporter) -> None:
    status = exporter.kickoff("g-clinic")
    assert exporter.http.delete(status).status_code == 202
    assert exporter.http.get(status).status_code == 404
    assert exporter.runner().run_once() is False
    assert JobStore(exporter.services.engine).count() == (0, 0)
    # a finished export is deleted the same way, files included
    manifest = exporter.export("g-clinic")
    status = "/fhir/bulk-status/" + manifest["output"][0]["url"].split("/")[-1]  # not a job id
    assert exporter.http.delete(status).status_code == 404
    jobs = JobStore(exporter.services.engine)
    assert jobs.count()[1] == len(manifest["output"])


def test_a_job_cancelled_while_running_stops_without_files(exporter: Exporter) -> None:
    exporter.kickoff("g-clinic")
    jobs = JobStore(exporter.services.engine)
    claim = jobs.claim(exporter.clock(), timedelta(seconds=60))
    assert claim is not None
    assert jobs.delete(claim.job.job_id) is True
    assert jobs.progress(claim, exporter.clock(), timedelta(seconds=60), "1 of 3") is False
    assert jobs.finish(claim, exporter.clock(), exporter.clock()) is False
    assert jobs.count() == (0, 0)


def test_the_lease_keeps_a_job_with_one_process(exporter: Exporter) -> None:
    status = exporter.kickoff("g-clinic")
    jobs = JobStore(exporter.services.engine)
    first = jobs.claim(exporter.clock(), timedelta(seconds=60))
    assert first is not None
    assert jobs.claim(exporter.clock(), timedelta(seconds=60)) is None  # another process finds nothing
    exporter.clock.current += timedelta(seconds=61)  # the first process died
    second = jobs.claim(exporter.clock(), timedelta(seconds=60))
    assert second is not None and second.job.job_id == first.job.job_id
    assert jobs.progress(first, exporter.clock(), timedelta(seconds=60), "late") is False
    assert exporter.runner().run_once() is False  # still leased to the second
    exporter.clock.current += timedelta(seconds=61)
    assert exporter.runner().run_once() is True
    assert exporter.http.get(status).status_code == 200


def test_files_expire_and_are_deleted(exporter: Exporter) -> None:
    manifest = exporter.export("g-clinic")
    url = manifest["output"][0]["url"].removeprefix(BASE)
    assert exporter.http.get(url).status_code == 200
    exporter.clock.current += timedelta(seconds=exporter.services.settings.bulk_export_file_lifetime + 1)
    assert exporter.http.get(url).status_code == 404
    jobs = JobStore(exporter.services.engine)
    assert jobs.count()[0] == 1  # not yet swept
    assert exporter.runner().run_once() is False
    assert jobs.count() == (0, 0)


def test_capability_statement_lists_group_export(exporter: Exporter) -> None:
    statement = exporter.http.get("/fhir/metadata").json()
    group = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Group")
    assert {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    } in (group["operation"])
    guides = statement["implementationGuide"]
    assert any("bulkdata" in g for g in guides) and any("davinci-pdex" in g for g in guides)


def test_inactive_and_ended_memberships_are_left_out(exporter: Exporter) -> None:
    group = data.group("g-members", data.CLINIC, ["p1", "p2", "p3"])
    group["member"][0]["inactive"] = True
    group["member"][1]["period"] = {"start": "2024-01-01", "end": "2025-12-31"}
    exporter.put(group)
    exporter.put(data.opt_out("consent-p3", "p3") | {"status": "inactive"})
    found = exporter.resources(exporter.export("g-members", "?_type=Patient"))
    assert set(found) == {"Patient/p3"}


def test_a_job_whose_group_is_gone_fails_with_an_operation_outcome(exporter: Exporter) -> None:
    status = exporter.kickoff("g-clinic")
    assert exporter.http.delete("/fhir/Group/g-clinic").status_code == 204
    assert exporter.runner().run_once() is True
    failed = exporter.http.get(status)
    assert failed.status_code == 500
    body = failed.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "Group/g-clinic" in body["issue"][0]["diagnostics"]
