"""Patient Access out of the box, on SQLite and PostgreSQL: ``priorgate serve`` with demo content (run
here without uvicorn) stores the demo member, its prior authorizations (through ``Claim/$submit``) and
its patient login; the demo patient app completes the standalone launch (``priorgate demo
patient-token``) and reads the member's ExplanationOfBenefits and nobody else's. Restarting loads
nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from server import cli
from server.app import create_app
from server.app_launch.accounts import AccountStore
from server.app_launch.apps import dump_apps, register_app
from server.app_launch.demo import (
    DEMO_PATIENT_APP_ID,
    DEMO_PATIENT_PASSWORD,
    DEMO_PATIENT_USERNAME,
    LaunchError,
    patient_token,
)
from server.demo import DEMO_MEMBER_PATIENT_ID, DEMO_MEMBER_TENANT
from server.ops.demo import SERVICES, SITES, request_bundle
from server.pas.versions import PasVersion
from server.patient_access.demo import DEMO_CLINIC_TENANT, DEMO_MEMBER_REQUESTS
from server.security.config import SecuritySettings
from server.services import Services
from server.settings import Settings
from server.storage.engine import make_engine
from server.storage.schema import pas_submission, resource

BASE = "http://testserver"
MEMBER = "https://priorgate.org/fhir/sid/member"
REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction"


@dataclass
class Demo:
    database_url: str
    settings: Settings
    security_dir: Path
    starts: list[dict[str, Any]]

    def app(self, **security: Any) -> TestClient:
        chosen = SecuritySettings(auth_mode="local", security_dir=self.security_dir, **security)
        return TestClient(create_app(self.settings, security=chosen), base_url=BASE)

    def counts(self) -> dict[str, int]:
        """Rows the demo writes: member Patients, ExplanationOfBenefits, PAS submissions, logins."""
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:

                def rows(table: Any, *where: Any) -> int:
                    return int(
                        connection.execute(select(func.count()).select_from(table).where(*where)).scalar()
                    )

                return {
                    "member": rows(
                        resource, resource.c.resource_type == "Patient", resource.c.tenant == "payer"
                    ),
                    "eobs": rows(resource, resource.c.resource_type == "ExplanationOfBenefit"),
                    "submissions": rows(pas_submission),
                    "logins": len(AccountStore(engine).all()),
                }
        finally:
            engine.dispose()


def serve(monkeypatch: pytest.MonkeyPatch, database_url: str, starts: list[dict[str, Any]]) -> None:
    """``priorgate serve`` up to starting uvicorn: schema, demo content, operations, Patient Access."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: starts.append(kwargs))
    assert cli.main(["serve", "--database-url", database_url]) == 0


@pytest.fixture
def demo(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    monkeypatch.setenv("PRIORGATE_SECURITY_DIR", str(tmp_path / "sec"))  # keys of the loader's app
    monkeypatch.setenv("PRIORGATE_IG_PATH", str(tmp_path / "no-igs"))
    monkeypatch.setenv("PRIORGATE_BASE_URL", BASE)
    for name, value in (("DATABASE_URL", database_url), ("HOST", "127.0.0.1"), ("PORT", "8080")):
        monkeypatch.setenv(f"PRIORGATE_{name}", value)  # serve sets them for its workers
    starts: list[dict[str, Any]] = []
    serve(monkeypatch, database_url, starts)
    settings = Settings(
        database_url=database_url, demo_content=True, base_url=BASE, ig_path=tmp_path / "no-igs"
    )
    yield Demo(database_url, settings, tmp_path / "sec", starts)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _actions(eob: dict[str, Any]) -> set[str]:
    return {
        part["valueCodeableConcept"]["coding"][0]["code"]
        for item in eob["item"]
        for adjudication in item.get("adjudication", ())
        for ext in adjudication.get("extension", ())
        if ext["url"] == REVIEW_ACTION
        for part in ext["extension"]
        if "valueCodeableConcept" in part
    }


def _other_member(services: Services) -> tuple[str, str]:
    """Another member of the same organization with a prior authorization of its own: (Patient id, EOB id)."""
    other = {
        "resourceType": "Patient",
        "identifier": [{"system": MEMBER, "value": "PGM-OTHER-0002"}],
        "name": [{"family": "Other", "given": ["Robin"]}],
    }
    patient = services.repository.for_tenant(DEMO_MEMBER_TENANT).create("Patient", other).stored.id
    clinic = replace(services.pas.for_tenant(DEMO_CLINIC_TENANT), validate=None)
    bundle = request_bundle("DEMO-OTHER-001", site=SITES[1], codes=(SERVICES[2],), member="PGM-OTHER-0002")
    clinic.submit(PasVersion.V2_2_1, bundle)
    record = clinic.store.find_by_trace("DEMO-OTHER-001")
    assert record is not None
    return patient, record.submission_id  # the ExplanationOfBenefit's id is the submission's


def test_demo_patient_launches_and_reads_only_its_prior_authorizations(demo: Demo) -> None:
    assert demo.starts and demo.starts[0]["factory"] is True  # serve went all the way to uvicorn
    with demo.app() as http:
        services = http.app.state.services  # type: ignore[attr-defined]
        other_patient, other_eob = _other_member(services)

        body = patient_token(base_url=BASE, http=http)  # what `priorgate demo patient-token` runs
        assert body["patient"] == DEMO_MEMBER_PATIENT_ID
        assert set(body["scope"].split()) >= {"patient/*.rs", "launch/patient", "openid"}
        assert body["refresh_token"] and body["id_token"]
        token = _bearer(body["access_token"])

        own = http.get(f"/fhir/Patient/{DEMO_MEMBER_PATIENT_ID}", headers=token)
        assert own.status_code == 200
        assert own.json()["identifier"][0]["system"] == MEMBER
        eobs = http.get("/fhir/ExplanationOfBenefit", headers=token)
        assert eobs.status_code == 200, eobs.text
        found = [e["resource"] for e in eobs.json().get("entry", [])]
        assert len(found) == len(DEMO_MEMBER_REQUESTS) >= 2
        assert {e["patient"]["reference"] for e in found} == {f"Patient/{DEMO_MEMBER_PATIENT_ID}"}
        assert {e["use"] for e in found} == {"preauthorization"}
        # one approved at once (A1 certified in total), one pended for review (A4)
        assert sorted(_actions(e).pop() for e in found) == ["A1", "A4"]
        assert other_eob not in {e["id"] for e in found}

        # another member of the same organization: its Patient and its ExplanationOfBenefit answer 404
        assert http.get(f"/fhir/Patient/{other_patient}", headers=token).status_code == 404
        assert http.get(f"/fhir/ExplanationOfBenefit/{other_eob}", headers=token).status_code == 404
        named = http.get(f"/fhir/ExplanationOfBenefit?patient=Patient/{other_patient}", headers=token)
        assert named.status_code == 200 and not named.json().get("entry")
        patients = http.get("/fhir/Patient", headers=token).json()
        assert [e["resource"]["id"] for e in patients.get("entry", [])] == [DEMO_MEMBER_PATIENT_ID]
        assert http.get("/fhir/Patient/pgdemo-patient-1", headers=token).status_code == 404
        assert http.get("/fhir/Claim", headers=token).status_code == 403

        # the other member's ExplanationOfBenefit exists beside the demo member's: the 404 is the patient rule
        with services.repository.for_tenant(DEMO_MEMBER_TENANT).reading() as tx:
            stored = tx.find("ExplanationOfBenefit", other_eob)
        assert stored is not None and stored.resource()["patient"]["reference"] == f"Patient/{other_patient}"

        with pytest.raises(LaunchError, match="wrong password"):
            patient_token(base_url=BASE, http=http, password=DEMO_PATIENT_PASSWORD + "!")


def test_restart_loads_nothing_twice(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    first = demo.counts()
    assert first["member"] == 1 and first["logins"] == 1
    assert first["eobs"] == len(DEMO_MEMBER_REQUESTS)
    assert first["submissions"] > len(DEMO_MEMBER_REQUESTS)  # the operations demo's requests too
    serve(monkeypatch, demo.database_url, demo.starts)
    assert len(demo.starts) == 2
    assert demo.counts() == first
    engine = make_engine(demo.database_url)
    try:
        (login,) = AccountStore(engine).all()
    finally:
        engine.dispose()
    assert (login.username, login.tenant, login.patient_id) == (
        DEMO_PATIENT_USERNAME,
        DEMO_MEMBER_TENANT,
        DEMO_MEMBER_PATIENT_ID,
    )


def test_demo_app_follows_the_demo_clients_switch(demo: Demo, tmp_path: Path) -> None:
    with demo.app(demo_clients=False) as http, pytest.raises(LaunchError, match="PRIORGATE_DEMO_CLIENTS"):
        patient_token(base_url=BASE, http=http)
    # a registration of the same client_id in the patient apps file wins over the demo one
    mine = register_app(
        DEMO_PATIENT_APP_ID,
        redirect_uris=["https://app.example.org/callback"],
        scopes="launch/patient patient/*.rs",
        name="Mine",
    )
    apps_file = tmp_path / "patient-apps.json"
    apps_file.write_bytes(dump_apps([mine]))
    with demo.app(patient_apps_file=apps_file) as http, pytest.raises(LaunchError, match="400"):
        patient_token(base_url=BASE, http=http)  # the demo redirect URI is not the file app's


def test_a_refused_authorization_request_says_why(demo: Demo) -> None:
    with demo.app() as http, pytest.raises(LaunchError, match="refused: invalid_scope"):
        patient_token(base_url=BASE, http=http, scope="launch/patient system/Claim.rs")


def test_demo_cli_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "patient-token", "--base-url", "http://127.0.0.1:9"]) == 1
    assert "request to http://127.0.0.1:9 failed" in capsys.readouterr().err
