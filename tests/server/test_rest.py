"""The FHIR REST surface through the ASGI app, on both engines (the issue's "Done when")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.security.config import SecuritySettings
from server.settings import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json"}

AUTH_OFF = SecuritySettings(auth_mode="off")  # these tests are not about access control


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, demo_content=False, max_body_bytes=64 * 1024)
    with TestClient(create_app(settings, security=AUTH_OFF), base_url="http://testserver") as test_client:
        yield test_client


def patient(family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:rest:mrn", "value": family}],
        "name": [{"family": family}],
        "birthDate": "1990-01-02",
    }


def assert_outcome(response: Any, status: int, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and body["issue"][0]["severity"] in ("error", "fatal")
    assert fragment.lower() in response.text.lower()
    assert "Traceback" not in response.text


def test_patient_lifecycle(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient("Life"))
    assert created.status_code == 201
    body = created.json()
    pid = body["id"]
    assert created.headers["location"] == f"http://testserver/fhir/Patient/{pid}/_history/1"
    assert created.headers["etag"] == 'W/"1"'
    assert created.headers["content-type"].startswith("application/fhir+json")
    assert "GMT" in created.headers["last-modified"]

    read = client.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200 and read.json() == body

    updated = client.put(
        f"/fhir/Patient/{pid}", json={**body, "gender": "other"}, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    stale = client.put(f"/fhir/Patient/{pid}", json={**body, "gender": "male"}, headers={"If-Match": 'W/"1"'})
    assert_outcome(stale, 412, "version 2")

    found = client.get("/fhir/Patient", params={"identifier": "urn:rest:mrn|Life"}).json()
    assert found["type"] == "searchset" and found["total"] == 1
    assert found["entry"][0]["resource"]["gender"] == "other"
    assert found["entry"][0]["fullUrl"] == f"http://testserver/fhir/Patient/{pid}"

    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["meta"]["versionId"] == "1"
    history = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["type"] == "history" and [
        e["resource"]["meta"]["versionId"] for e in history["entry"]
    ] == ["2", "1"]

    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert_outcome(client.get(f"/fhir/Patient/{pid}"), 410, "deleted")
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert len(client.get(f"/fhir/Patient/{pid}/_history").json()["entry"]) == 3
    assert client.get("/fhir/Patient", params={"identifier": "urn:rest:mrn|Life"}).json()["total"] == 0


def test_exact_decimals_over_http(client: TestClient) -> None:
    raw = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"w"},"valueQuantity":{"value":1.50}}'
    )
    created = client.post("/fhir/Observation", content=raw, headers=FHIR_JSON)
    assert b'"value":1.50}' in created.content
    assert b'"value":1.50}' in client.get(f"/fhir/Observation/{created.json()['id']}").content
    assert b'"value": 1.50' in client.get(f"/fhir/Observation/{created.json()['id']}?_pretty=true").content


def test_conditional_create_update_delete(client: TestClient) -> None:
    first = client.post("/fhir/Patient", json=patient("Cond"))
    header = {"If-None-Exist": "identifier=urn:rest:mrn|Cond"}
    again = client.post("/fhir/Patient", json=patient("Cond"), headers=header)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    put = client.put("/fhir/Patient?identifier=urn:rest:mrn|Cond", json={**patient("Cond"), "gender": "male"})
    assert put.status_code == 200 and put.json()["id"] == first.json()["id"]
    assert client.delete("/fhir/Patient?identifier=urn:rest:mrn|Cond").status_code == 204
    assert client.get(f"/fhir/Patient/{first.json()['id']}").status_code == 410


def test_prefer_return_minimal(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient("Min"), headers={"Prefer": "return=minimal"})
    assert response.status_code == 201 and response.content == b"" and "location" in response.headers


def test_search_paging_links_and_summary(client: TestClient) -> None:
    for n in range(5):
        client.post("/fhir/Patient", json={**patient("Pages"), "identifier": [{"value": f"pg-{n}"}]})
    url: str | None = "/fhir/Patient?family=Pages&_count=2"
    seen: list[str] = []
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert len(seen) == 5 == len(set(seen))
    summary = client.get("/fhir/Patient?family=Pages&_summary=count").json()
    assert summary["total"] == 5 and "entry" not in summary


def test_unknown_search_params_lenient_and_strict(client: TestClient) -> None:
    lenient = client.get("/fhir/Patient?bogus=1").json()
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "bogus" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "bogus" not in lenient["link"][0]["url"]
    assert_outcome(client.get("/fhir/Patient?bogus=1", headers={"Prefer": "handling=strict"}), 400, "bogus")
    assert_outcome(client.get("/fhir/Patient?birthdate=notadate"), 400, "date")
    assert_outcome(client.get("/fhir/Patient?_count=abc"), 400, "_count")


def test_claim_include(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient("Inc")).json()["id"]
    claim = {
        "resourceType": "Claim",
        "status": "active",
        "use": "preauthorization",
        "patient": {"reference": f"Patient/{pid}"},
    }
    cid = client.post("/fhir/Claim", json=claim).json()["id"]
    bundle = client.get(f"/fhir/Claim?patient={pid}&_include=Claim:patient").json()
    modes = sorted((e["search"]["mode"], e["resource"]["id"]) for e in bundle["entry"])
    assert modes == [("include", pid), ("match", cid)]


def test_transaction_rewrites_urn_uuid_and_is_atomic(client: TestClient) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": urn},
                    "payor": [{"display": "P"}],
                },
                "request": {"method": "POST", "url": "Coverage"},
            },
            {"fullUrl": urn, "resource": patient("Tx"), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "transaction-response"
    coverage_loc, patient_loc = (e["response"]["location"] for e in result["entry"])
    assert coverage_loc.startswith("Coverage/") and patient_loc.startswith("Patient/")
    coverage = client.get(f"/fhir/{coverage_loc.split('/_history')[0]}").json()
    assert coverage["beneficiary"]["reference"] == patient_loc.split("/_history")[0]
    assert client.get(f"/fhir/Coverage?beneficiary={patient_loc.split('/_history')[0]}").json()["total"] == 1

    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient("TxFail"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    assert_outcome(client.post("/fhir", json=failing), 404, "Bundle.entry[1]")
    assert client.get("/fhir/Patient?family=TxFail").json()["total"] == 0


def test_batch_reports_each_entry(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient("Batch"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "GET", "url": "Patient?family=Batch"}},
        ],
    }
    result = client.post("/fhir", json=bundle).json()
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "404 Not Found", "200 OK"]
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert result["entry"][2]["resource"]["total"] == 1


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "not a FHIR resource"),
        (b'{"name": []}', 400, "resourceType"),
        (b'{"resourceType": "Coverage", "status": "active"}', 400, "URL is for Patient"),
        (b"", 400, "empty"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b'{"resourceType": "Patient", "x": NaN}', 400, "not valid JSON"),
        # nested past orjson's writing limit (254) but within the parser's: was a 500 when stored
        (b'{"resourceType": "Patient", "extension": ' + b"[" * 300 + b"]" * 300 + b"}", 400, "nests more"),
        (b'{"resourceType": "Patient", "extension": ' + b"[" * 128 + b"]" * 128 + b"}", 400, "than 128"),
    ],
)
def test_bad_bodies_are_400(client: TestClient, content: bytes, status: int, fragment: str) -> None:
    assert_outcome(client.post("/fhir/Patient", content=content, headers=FHIR_JSON), status, fragment)


def test_content_negotiation(client: TestClient) -> None:
    xml = b'<Patient xmlns="http://hl7.org/fhir"/>'
    assert_outcome(
        client.post("/fhir/Patient", content=xml, headers={"Content-Type": "application/fhir+xml"}),
        415,
        "XML",
    )
    assert_outcome(
        client.post("/fhir/Patient", content=b"x", headers={"Content-Type": "text/plain"}), 415, "text/plain"
    )
    assert_outcome(client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406, "XML")
    assert_outcome(client.get("/fhir/metadata?_format=xml"), 406, "XML")
    assert (
        client.get("/fhir/metadata?_format=json", headers={"Accept": "application/fhir+xml"}).status_code
        == 200
    )
    plain = client.post(
        "/fhir/Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": "application/json"}
    )
    assert plain.status_code == 201
    assert client.get("/fhir/metadata", headers={"Accept": "application/json, text/html"}).status_code == 200


def test_oversized_bodies_are_413(client: TestClient) -> None:
    big = b'{"resourceType":"Patient","text":"' + b"x" * (70 * 1024) + b'"}'
    assert_outcome(client.post("/fhir/Patient", content=big, headers=FHIR_JSON), 413, "limit")

    def chunks() -> Iterator[bytes]:
        for _ in range(70):
            yield b"x" * 1024

    assert_outcome(client.post("/fhir/Patient", content=chunks(), headers=FHIR_JSON), 413, "limit")


def test_routing_errors_are_outcomes(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/NotAType/1"), 404, "NotAType")
    assert_outcome(client.get("/fhir/Patient/unknown"), 404, "unknown")
    assert_outcome(client.patch("/fhir/Patient/1", json={}), 405)
    assert_outcome(client.get("/fhir/Patient/1/_history/x"), 404)
    assert_outcome(
        client.put("/fhir/Patient/bad id!", json={"resourceType": "Patient", "id": "bad id!"}),
        400,
        "valid FHIR id",
    )
    assert_outcome(
        client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}),
        400,
        "transaction or batch",
    )


def test_metadata_is_built_from_what_is_mounted(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Claim", "ClaimResponse", "Coverage", "Parameters", "Binary"} <= set(resources)
    claim_params = {p["name"] for p in resources["Claim"]["searchParam"]}
    assert {"_id", "_lastUpdated", "identifier", "patient", "status"} <= claim_params
    assert "Claim:patient" in resources["Claim"]["searchInclude"]
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {
        "transaction",
        "batch",
        "history-system",
    }


def test_faults_are_500_outcomes_without_traces(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(Settings(database_url=database_url, demo_content=False), security=AUTH_OFF)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    # on the class: each request reads through its own tenant-scoped view of the repository
    monkeypatch.setattr(type(app.state.services.repository), "read", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/fhir/Patient/x")
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_concurrent_updates_with_the_same_if_match_let_one_win(client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    created = client.post("/fhir/Patient", json=patient("Race")).json()

    def attempt(n: int) -> int:
        body = {**created, "gender": "male" if n % 2 else "female"}
        return client.put(
            f"/fhir/Patient/{created['id']}", json=body, headers={"If-Match": 'W/"1"'}
        ).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))
    assert statuses == [200, 412, 412, 412]
    assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "2"


def test_post_search_and_format_json(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient("Posted")).json()["id"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    found = client.post("/fhir/Patient/_search", content=b"family=posted", headers=form).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid]
    assert_outcome(client.post("/fhir/Patient/_search", json={"family": "x"}), 415, "form")
    assert client.get(f"/fhir/Patient/{pid}?_format=application/fhir%2Bjson").status_code == 200


def test_tenants_do_not_see_each_other(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, demo_content=False), security=AUTH_OFF)
    repository = app.state.services.repository
    mine = repository.for_tenant("tenant-a").create("Patient", patient("Tenant")).stored
    assert repository.for_tenant("tenant-a").read("Patient", mine.id).id == mine.id
    with pytest.raises(Exception, match="not known"):
        repository.for_tenant("tenant-b").read("Patient", mine.id)
    query = repository.parse_search("Patient", [("family", "Tenant")])
    assert repository.search(query).total == 0
    app.state.services.engine.dispose()


def test_conditional_read(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient("Cread"))
    url = f"/fhir/Patient/{created.json()['id']}"
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"2"'}).status_code == 200
    modified = created.headers["last-modified"]
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": "garbage"}).status_code == 200


def test_type_and_system_history(client: TestClient) -> None:
    first = client.post("/fhir/Patient", json=patient("Hist")).json()
    client.put(f"/fhir/Patient/{first['id']}", json={**first, "gender": "male"})
    client.post("/fhir/Organization", json={"resourceType": "Organization", "name": "Hist Org"})
    typed = client.get("/fhir/Patient/_history").json()
    assert typed["type"] == "history"
    assert [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in typed["entry"]] == [
        (first["id"], "2"),
        (first["id"], "1"),
    ]
    everything = client.get("/fhir/_history?_count=2").json()
    assert (
        len(everything["entry"]) == 2 and everything["entry"][0]["resource"]["resourceType"] == "Organization"
    )
    following = next(link["url"] for link in everything["link"] if link["relation"] == "next")
    assert len(client.get(following).json()["entry"]) == 1
    since = first["meta"]["lastUpdated"]
    recent = client.get("/fhir/_history", params={"_since": since}).json()
    assert len(recent["entry"]) == 3
    assert_outcome(client.get("/fhir/_history?_since=yesterday"), 400, "_since")
    assert_outcome(client.get("/fhir/NotAType/_history"), 404)


def test_elements_and_summary(client: TestClient) -> None:
    body = {
        **patient("Shape"),
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    pid = client.post("/fhir/Patient", json=body).json()["id"]
    trimmed = client.get(f"/fhir/Patient/{pid}?_elements=name").json()
    assert set(trimmed) == {"resourceType", "id", "meta", "name"}
    assert trimmed["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert "text" not in client.get(f"/fhir/Patient/{pid}?_summary=data").json()
    assert set(client.get(f"/fhir/Patient/{pid}?_summary=text").json()) == {
        "resourceType",
        "id",
        "meta",
        "text",
    }
    found = client.get("/fhir/Patient?family=Shape&_elements=birthDate").json()
    assert set(found["entry"][0]["resource"]) == {"resourceType", "id", "meta", "birthDate"}
    assert "_elements=birthDate" in found["link"][0]["url"]
    full = client.get(f"/fhir/Patient/{pid}").json()
    assert "tag" not in full["meta"] and "text" in full


def test_version_aware_delete(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient("VDel")).json()["id"]
    assert_outcome(client.delete(f"/fhir/Patient/{pid}", headers={"If-Match": 'W/"7"'}), 412, "version 1")
    assert client.delete(f"/fhir/Patient/{pid}", headers={"If-Match": 'W/"1"'}).status_code == 204


def test_integers_beyond_64_bits_are_stored_exactly(client: TestClient) -> None:
    # Regression: orjson cannot write integers beyond 64 bits, so storing one was a 500.
    body = b'{"resourceType": "Patient", "multipleBirthInteger": 123456789012345678901234567}'
    created = client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    read = client.get(f"/fhir/Patient/{created.json()['id']}")
    assert b'"multipleBirthInteger":123456789012345678901234567' in read.content


@pytest.mark.parametrize("method", [[], {}, 7, None])
def test_a_transaction_entry_with_a_method_that_is_not_a_string_is_400(
    client: TestClient, method: object
) -> None:
    # Regression: an unhashable method (an array or object) was looked up in a dict: a 500.
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": method, "url": "Patient"}}],
    }
    assert_outcome(client.post("/fhir", json=bundle, headers=FHIR_JSON), 400, "request.method")
