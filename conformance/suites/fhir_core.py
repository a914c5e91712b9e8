"""FHIR R4 RESTful API checks (https://hl7.org/fhir/R4/http.html) every PriorGate deployment passes."""

from __future__ import annotations

import uuid
from typing import Any

from conformance.framework import (
    Suite,
    Target,
    check,
    expect,
    expect_operation_outcome,
    expect_status,
)


def _patient(family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:conformance:patient", "value": family}],
        "name": [{"family": family, "given": ["Conformance"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def _create(target: Target, resource: dict[str, Any]) -> dict[str, Any]:
    response = target.post(target.fhir(resource["resourceType"]), json=resource)
    expect_status(response, 201)
    return dict(response.json())


@check("capabilities", "metadata returns a CapabilityStatement", "fhir-r4-http#capabilities")
def capabilities(target: Target) -> None:
    response = target.get(target.fhir("metadata"))
    expect_status(response, 200)
    body = response.json()
    expect(body.get("resourceType") == "CapabilityStatement", "metadata is not a CapabilityStatement")
    expect(body.get("fhirVersion") == "4.0.1", f"fhirVersion is {body.get('fhirVersion')!r}, expected 4.0.1")
    types = {r.get("type") for rest in body.get("rest", []) for r in rest.get("resource", [])}
    expect("Patient" in types and "Claim" in types, "Patient and Claim are not both listed as resources")


@check(
    "create-read",
    "create assigns id and version; read returns it",
    "fhir-r4-http#create",
    "fhir-r4-http#read",
)
def create_read(target: Target) -> None:
    family = f"Create{uuid.uuid4().hex[:8]}"
    response = target.post(target.fhir("Patient"), json=_patient(family))
    expect_status(response, 201)
    created = response.json()
    rid = created.get("id")
    expect(bool(rid), "created resource has no id")
    expect(created.get("meta", {}).get("versionId") == "1", "first version is not versionId 1")
    location = response.headers.get("location", "")
    expect(
        f"Patient/{rid}/_history/1" in location,
        f"Location {location!r} does not name Patient/{rid}/_history/1",
    )
    expect(
        "fhir+json" in response.headers.get("content-type", ""),
        "create does not answer application/fhir+json",
    )
    read = target.get(target.fhir(f"Patient/{rid}"))
    expect_status(read, 200)
    expect(read.headers.get("etag") == 'W/"1"', f'ETag is {read.headers.get("etag")!r}, expected W/"1"')
    expect(read.json()["name"][0]["family"] == family, "read does not return what was created")


@check(
    "read-unknown", "reading an unknown id answers 404 with an OperationOutcome", "fhir-r4-http#read-unknown"
)
def read_unknown(target: Target) -> None:
    response = target.get(target.fhir(f"Patient/unknown-{uuid.uuid4().hex}"))
    expect_status(response, 404)
    expect_operation_outcome(response)


@check(
    "update-vread-concurrency",
    "update versions the resource, vread returns old versions, a stale If-Match answers 412",
    "fhir-r4-http#update",
    "fhir-r4-http#vread",
    "fhir-r4-http#concurrency",
)
def update_vread_concurrency(target: Target) -> None:
    created = _create(target, _patient(f"Update{uuid.uuid4().hex[:8]}"))
    rid = created["id"]
    changed = {**created, "gender": "male"}
    response = target.put(target.fhir(f"Patient/{rid}"), json=changed, headers={"If-Match": 'W/"1"'})
    expect_status(response, 200)
    expect(response.json()["meta"]["versionId"] == "2", "update did not create version 2")
    first = target.get(target.fhir(f"Patient/{rid}/_history/1"))
    expect_status(first, 200)
    expect(first.json()["gender"] == "female", "vread of version 1 does not return version 1")
    stale = target.put(target.fhir(f"Patient/{rid}"), json=changed, headers={"If-Match": 'W/"1"'})
    expect_status(stale, 412)
    expect_operation_outcome(stale)


@check("conditional-create", "If-None-Exist matching one resource creates nothing", "fhir-r4-http#ccreate")
def conditional_create(target: Target) -> None:
    family = f"Cond{uuid.uuid4().hex[:8]}"
    created = _create(target, _patient(family))
    header = {"If-None-Exist": f"identifier=urn:conformance:patient|{family}"}
    again = target.post(target.fhir("Patient"), json=_patient(family), headers=header)
    expect_status(again, 200)
    expect(again.json().get("id") == created["id"], "conditional create did not return the existing resource")


@check(
    "delete-history",
    "delete makes reads answer 410; history lists every version",
    "fhir-r4-http#delete",
    "fhir-r4-http#read-deleted",
    "fhir-r4-http#history",
)
def delete_history(target: Target) -> None:
    created = _create(target, _patient(f"Delete{uuid.uuid4().hex[:8]}"))
    rid = created["id"]
    expect_status(target.delete(target.fhir(f"Patient/{rid}")), 200, 204)
    gone = target.get(target.fhir(f"Patient/{rid}"))
    expect_status(gone, 410)
    expect_operation_outcome(gone)
    history = target.get(target.fhir(f"Patient/{rid}/_history"))
    expect_status(history, 200)
    bundle = history.json()
    expect(bundle.get("type") == "history", "instance history is not a history Bundle")
    expect(
        len(bundle.get("entry", [])) == 2, f"history has {len(bundle.get('entry', []))} entries, expected 2"
    )


@check(
    "search-paging", "search pages with _count and next links", "fhir-r4-http#search", "fhir-r4-http#paging"
)
def search_paging(target: Target) -> None:
    family = f"Page{uuid.uuid4().hex[:8]}"
    ids = {
        _create(target, {**_patient(family), "identifier": [{"value": f"{family}-{n}"}]})["id"]
        for n in range(5)
    }
    url: str | None = target.fhir(f"Patient?family={family}&_count=2")
    seen: list[str] = []
    pages = 0
    while url and pages < 10:
        response = target.get(url)
        expect_status(response, 200)
        bundle = response.json()
        expect(bundle.get("type") == "searchset", "search did not return a searchset Bundle")
        seen += [entry["resource"]["id"] for entry in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        pages += 1
    expect(
        sorted(seen) == sorted(ids), f"paging returned {len(seen)} matches, expected the {len(ids)} created"
    )
    expect(pages == 3, f"5 matches at _count=2 came in {pages} pages, expected 3")


@check(
    "transaction",
    "a transaction rewrites urn:uuid references and fails as a whole",
    "fhir-r4-http#transaction",
)
def transaction(target: Target) -> None:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    family = f"Tx{uuid.uuid4().hex[:8]}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": _patient(family),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": patient_url},
                    "payor": [{"display": "Conformance payer"}],
                },
                "request": {"method": "POST", "url": "Coverage"},
            },
        ],
    }
    response = target.post(target.fhir(), json=bundle)
    expect_status(response, 200)
    entries = response.json().get("entry", [])
    expect(len(entries) == 2, "transaction-response does not have one entry per request")
    coverage_location = entries[1]["response"]["location"]
    coverage = target.get(target.fhir(coverage_location.split("/_history")[0]))
    expect_status(coverage, 200)
    reference = coverage.json()["beneficiary"]["reference"]
    expect(reference.startswith("Patient/"), f"urn:uuid reference was not rewritten: {reference!r}")

    failing_family = f"TxFail{uuid.uuid4().hex[:8]}"
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient(failing_family), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/unknown-{uuid.uuid4().hex}"}},
            {"request": {"method": "DELETE", "url": "NotAType/1"}},
        ],
    }
    rejected = target.post(target.fhir(), json=failing)
    expect(rejected.status_code >= 400, f"a failing transaction answered {rejected.status_code}")
    expect_operation_outcome(rejected)
    search = target.get(target.fhir(f"Patient?family={failing_family}"))
    expect_status(search, 200)
    expect(not search.json().get("entry"), "a failed transaction left a resource behind")


@check("errors", "garbage and wrong content types answer 4xx with an OperationOutcome", "fhir-r4-http#errors")
def errors(target: Target) -> None:
    garbage = target.post(
        target.fhir("Patient"), content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    expect_status(garbage, 400)
    expect_operation_outcome(garbage)
    wrong_type = target.post(target.fhir("Patient"), json={"resourceType": "Coverage", "status": "active"})
    expect_status(wrong_type, 400)
    expect_operation_outcome(wrong_type)
    unknown = target.get(target.fhir("NotAResourceType/1"))
    expect_status(unknown, 404, 400)
    expect_operation_outcome(unknown)


@check(
    "mime-type", "JSON is served as application/fhir+json; XML is refused clearly", "fhir-r4-http#mime-type"
)
def mime_type(target: Target) -> None:
    xml = target.post(
        target.fhir("Patient"),
        content=b'<Patient xmlns="http://hl7.org/fhir"/>',
        headers={"Content-Type": "application/fhir+xml"},
    )
    expect_status(xml, 415)
    expect_operation_outcome(xml)
    accept_xml = target.get(target.fhir("metadata"), headers={"Accept": "application/fhir+xml"})
    expect_status(accept_xml, 406)
    expect_operation_outcome(accept_xml)


SUITE = Suite(
    name="fhir-core",
    title="FHIR R4 RESTful API",
    checks=(
        capabilities,
        create_read,
        read_unknown,
        update_vread_concurrency,
        conditional_create,
        delete_history,
        search_paging,
        transaction,
        errors,
        mime_type,
    ),
)
