"""PAS -> DTR -> PAS through the real app: a request pended for documentation names its item trace
number; DTR ``$questionnaire-package`` with that number as ``context`` (DTR spec-109, PAS ainfo-3)
returns the questionnaire the coverage decision asked for, with a draft QuestionnaireResponse linked to
the trace number; the completed response stored at the payer approves the next ``$submit`` update.
Also: a pended request stays queryable by ``$inquire`` six months later (PAS spec-73). SQLite and
PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conformance.suites import pas_server
from server.app import create_app
from server.security.backend_client import fetch_token
from server.security.clients import dump_clients, register_client
from server.security.config import SecuritySettings
from server.security.keys import SigningKey, generate_private_key, public_jwk
from server.settings import Settings

from .test_crd_to_dtr import COVERAGE

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
LUMBAR_MRI = "https://priorgate.org/fhir/Questionnaire/lumbar-spine-mri|1.0.0"
TRN = "urn:trnorg:1999999999"
Json = dict[str, Any]

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


class Clock:
    """Moves only when told (plus a millisecond per reading, so stamps stay ordered)."""

    def __init__(self) -> None:
        self.current = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url, demo_content=False, ig_path=tmp_path / "no-igs", cds_development_mode=True
    )
    with TestClient(create_app(settings, now=clock, security=AUTH_OFF)) as test_client:
        yield test_client


def lumbar_mri_request(claim_id: str, item_trace: str) -> Json:
    """A 2.2.1 request for a lumbar spine MRI for low back pain (the demo plan pends it for
    documentation) whose item carries its own trace number."""
    bundle = pas_server.request_bundle(claim_id, ("72148",))
    claim = bundle["entry"][0]["resource"]
    claim["diagnosis"] = [
        {
            "sequence": 1,
            "diagnosisCodeableConcept": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]
            },
        }
    ]
    item = claim["item"][0]
    item["extension"].append(
        {"url": PAS + "extension-itemTraceNumber", "valueIdentifier": {"system": TRN, "value": item_trace}}
    )
    return bundle


def update_of(initial: Json, claim_id: str) -> Json:
    """The PASClaimUpdate of ``initial``: a new identifier, ``related`` to the prior Claim, the item
    marked changed (so it is decided again) and keeping its trace number."""
    bundle = copy.deepcopy(initial)
    claim = bundle["entry"][0]["resource"]
    prior_identifier = copy.deepcopy(claim["identifier"][0])
    claim["identifier"][0]["value"] = claim_id
    claim["related"] = [
        {
            "claim": {"identifier": prior_identifier},
            "relationship": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                        "code": "prior",
                    }
                ]
            },
        }
    ]
    claim["item"][0]["extension"].append({"url": PAS + "extension-infoChanged", "valueCode": "changed"})
    bundle["identifier"]["value"] = claim_id
    return bundle


def submit(client: TestClient, bundle: Json) -> Json:
    answer = client.post("/pas/2.2.1/Claim/$submit", json=bundle, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    response: Json = answer.json()["entry"][0]["resource"]
    assert response["resourceType"] == "ClaimResponse"
    return response


def action(response: Json, sequence: int = 1) -> str:
    item = next(i for i in response["item"] if i["itemSequence"] == sequence)
    review = item["adjudication"][0]["extension"][0]
    code = next(e for e in review["extension"] if e["url"].endswith("extension-reviewActionCode"))
    return str(code["valueCodeableConcept"]["coding"][0]["code"])


def notes(response: Json) -> str:
    return " ".join(n["text"] for n in response.get("processNote", []))


def package(client: TestClient, context: str) -> Any:
    inputs = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "context", "valueString": context},
        ],
    }
    return client.post("/dtr/2.2.0/Questionnaire/$questionnaire-package", json=inputs, headers=FHIR_JSON)


def bundles(answer: Any) -> list[Json]:
    assert answer.status_code == 200, answer.text
    return [p["resource"] for p in answer.json()["parameter"] if p["name"].lower() == "packagebundle"]


def draft_of(bundle: Json) -> Json:
    (draft,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    return draft


def context_identifiers(qr: Json) -> list[Json]:
    return [
        e["valueReference"]["identifier"]
        for e in qr.get("extension", [])
        if e["url"] == QR_CONTEXT and "identifier" in e["valueReference"]
    ]


def test_a_pend_for_documentation_is_completed_through_dtr_by_its_trace_number(client: TestClient) -> None:
    initial = lumbar_mri_request("PAS-DTR-1", "ITEM-TRN-1")
    answer = client.post("/pas/2.2.1/Claim/$submit", json=initial, headers=FHIR_JSON).json()
    pended = answer["entry"][0]["resource"]
    assert action(pended) == "A4" and "Documentation required" in notes(pended)
    # the pend asks for the payer questionnaire (LOINC 102089-0) naming the item trace number (ainfo-2/3)
    (asked,) = [
        e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "CommunicationRequest"
    ]
    assert asked["payload"][0]["contentString"] == "102089-0"
    assert asked["identifier"] == [{"system": TRN, "value": "ITEM-TRN-1"}]
    assert [r["reference"] for r in pended["communicationRequest"]] == [
        e["fullUrl"] for e in answer["entry"] if e["resource"]["resourceType"] == "CommunicationRequest"
    ]

    (form,) = bundles(package(client, "ITEM-TRN-1"))
    questionnaire = form["entry"][0]["resource"]
    assert f"{questionnaire['url']}|{questionnaire['version']}" == LUMBAR_MRI
    draft = draft_of(form)
    assert draft["questionnaire"] == LUMBAR_MRI and draft["status"] == "in-progress"
    assert context_identifiers(draft) == [{"system": TRN, "value": "ITEM-TRN-1"}]

    done = {**copy.deepcopy(draft), "status": "completed"}
    done.pop("id")
    stored = client.post("/fhir/QuestionnaireResponse", json=done, headers=FHIR_JSON)
    assert stored.status_code == 201, stored.text
    found = client.get("/fhir/QuestionnaireResponse", params={"context-identifier": "ITEM-TRN-1"}).json()
    assert [e["resource"]["status"] for e in found["entry"]] == ["completed"]

    updated = submit(client, update_of(initial, "PAS-DTR-1-U1"))
    assert action(updated) == "A1" and updated["outcome"] == "complete", notes(updated)
    assert updated.get("preAuthRef") and "communicationRequest" not in updated  # nothing left to ask


def test_the_claim_identifier_names_every_pended_item(client: TestClient) -> None:
    submit(client, lumbar_mri_request("PAS-DTR-2", "ITEM-TRN-2"))
    (form,) = bundles(package(client, "PAS-DTR-2"))
    assert context_identifiers(draft_of(form)) == [{"system": TRN, "value": "PAS-DTR-2"}]


def test_a_reviewer_approval_withdraws_the_questionnaire_request(client: TestClient) -> None:
    pended = submit(client, lumbar_mri_request("PAS-DTR-5", "ITEM-TRN-5"))
    assert len(pended["communicationRequest"]) == 1
    (item,) = client.get("/pas/review").json()
    decision = {"reviewer": {"id": "rev-1"}, "decisions": [{"itemSequence": 1, "action": "approve"}]}
    answered = client.post(f"/pas/review/{item['id']}/decision", json=decision)
    assert answered.status_code == 200, answered.text
    final = answered.json()
    assert action(final["entry"][0]["resource"]) == "A1"
    assert "communicationRequest" not in final["entry"][0]["resource"]
    assert not [e for e in final["entry"] if e["resource"]["resourceType"] == "CommunicationRequest"]


def test_an_in_progress_response_for_the_trace_number_keeps_the_request_pended(client: TestClient) -> None:
    initial = lumbar_mri_request("PAS-DTR-3", "ITEM-TRN-3")
    submit(client, initial)
    draft = draft_of(bundles(package(client, "ITEM-TRN-3"))[0])
    draft.pop("id")
    assert client.post("/fhir/QuestionnaireResponse", json=draft, headers=FHIR_JSON).status_code == 201
    updated = submit(client, update_of(initial, "PAS-DTR-3-U1"))
    assert action(updated) == "A4" and "is in-progress, not completed" in notes(updated)


def test_unknown_or_settled_trace_numbers_are_4xx_with_an_operation_outcome(client: TestClient) -> None:
    unknown = package(client, "NO-SUCH-TRN")
    assert unknown.status_code == 422 and unknown.json()["resourceType"] == "OperationOutcome"
    assert "no prior authorization request" in unknown.json()["issue"][0]["diagnostics"]
    # an approved request waits for no questionnaire
    approved = pas_server.request_bundle("PAS-DTR-4", ("97110",))
    assert action(submit(client, approved)) == "A1"
    settled = package(client, "PAS-DTR-4")
    assert settled.status_code == 422, settled.text
    assert "no pended item" in settled.json()["issue"][0]["diagnostics"]


def test_a_pended_request_is_found_by_inquire_six_months_later(client: TestClient, clock: Clock) -> None:
    bundle = lumbar_mri_request("PAS-OLD-1", "ITEM-OLD-1")
    pended = submit(client, bundle)
    assert action(pended) == "A4"
    clock.current += timedelta(days=180)
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = "INQ-OLD-1"
    answer = client.post("/pas/2.2.1/Claim/$inquire", json=inquiry, headers=FHIR_JSON)
    assert answer.status_code == 200, answer.text
    (returned,) = [p["resource"] for p in answer.json()["parameter"] if p["name"] == "return"]
    claim_response = returned["entry"][0]["resource"]
    assert claim_response["resourceType"] == "ClaimResponse"
    assert claim_response["id"] == pended["id"] and action(claim_response) == "A4"
    # still in the review queue, and its ClaimResponse still readable under /fhir
    assert [q["claimIdentifiers"] for q in client.get("/pas/review").json()] == [[f"{TRN}|PAS-OLD-1"]]
    assert client.get(f"/fhir/ClaimResponse/{pended['id']}").status_code == 200
    # and DTR still finds it by its trace number
    assert context_identifiers(draft_of(bundles(package(client, "ITEM-OLD-1"))[0])) == [
        {"system": TRN, "value": "ITEM-OLD-1"}
    ]


# -- tenancy: a trace number names a request of the caller's own organization only ----------------------

BASE = "http://testserver"
CLINIC_SCOPES = (
    "system/Claim.crs system/ClaimResponse.rs system/Questionnaire.rs system/QuestionnaireResponse.cruds"
)


def test_another_organization_cannot_open_a_pended_request_by_its_trace_number(
    database_url: str, tmp_path: Path, clock: Clock
) -> None:
    keys = {cid: SigningKey.of(generate_private_key("ES384"), "ES384") for cid in ("clinic-a", "clinic-b")}
    registrations = [
        register_client(
            cid,
            tenants=[f"org-{cid[-1]}"],
            scopes=CLINIC_SCOPES,
            jwks={"keys": [public_jwk(key.private_key, "ES384")]},
        )
        for cid, key in keys.items()
    ]
    (tmp_path / "clients.json").write_bytes(dump_clients(registrations))
    security = SecuritySettings(
        auth_mode="local", security_dir=tmp_path, clients_file=tmp_path / "clients.json", demo_clients=False
    )
    settings = Settings(
        database_url=database_url, demo_content=False, base_url=BASE, ig_path=tmp_path / "no-igs"
    )
    with TestClient(create_app(settings, now=clock, security=security), base_url=BASE) as http:

        def as_(cid: str) -> dict[str, str]:
            token = fetch_token(
                cid, keys[cid], token_url=BASE + "/auth/token", scope=CLINIC_SCOPES, now=clock(), http=http
            )
            return {"Authorization": f"Bearer {token['access_token']}"} | FHIR_JSON

        a, b = as_("clinic-a"), as_("clinic-b")
        submitted = http.post(
            "/pas/2.2.1/Claim/$submit", json=lumbar_mri_request("PAS-TEN-1", "ITEM-TEN-1"), headers=a
        )
        assert submitted.status_code == 200, submitted.text
        inputs = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "coverage", "resource": COVERAGE},
                {"name": "context", "valueString": "ITEM-TEN-1"},
            ],
        }
        url = "/dtr/2.2.0/Questionnaire/$questionnaire-package"
        own = http.post(url, json=inputs, headers=a)
        assert context_identifiers(draft_of(bundles(own)[0])) == [{"system": TRN, "value": "ITEM-TEN-1"}]
        other = http.post(url, json=inputs, headers=b)
        assert 400 <= other.status_code < 500 and other.json()["resourceType"] == "OperationOutcome"
        assert "names no CRD coverage assertion and no prior authorization request" in other.text
