"""The Inferno DTR payer-server checks (davinci-dtr-test-kit, DTR 2.0.1), applied to every package this
payer serves: static form tests 1.04-1.06, adaptive 2.04-2.06 and 2.11-2.13."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from questionnaires import BASE, Catalog, next_question, questionnaire_package

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
ROOT_EXTENSIONS = {
    SDC + "sdc-questionnaire-launchContext",
    "http://hl7.org/fhir/StructureDefinition/variable",
    SDC + "sdc-questionnaire-itemPopulationContext",
    "http://hl7.org/fhir/StructureDefinition/cqf-library",
}
ITEM_EXPRESSIONS = {
    SDC + "sdc-questionnaire-initialExpression",
    SDC + "sdc-questionnaire-candidateExpression",
    SDC + "sdc-questionnaire-contextExpression",
}
COVERAGE = {"resourceType": "Coverage", "id": "cov-1", "beneficiary": {"reference": "Patient/pat-1"}}
QUESTIONNAIRES = [
    "lumbar-spine-mri",
    "ct-abdomen",
    "cpap",
    "home-oxygen",
    "home-oxygen-adaptive",
    "biologic-infusion",
    "total-knee-arthroplasty",
]


def items(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from items(node.get("item", []))


def package_bundle(catalog: Catalog, now: datetime, topic: str) -> dict[str, Any]:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/{topic}"},
        ],
    }
    result = questionnaire_package(catalog, body, "2.0.1", now=now)
    [bundle] = [p["resource"] for p in result["parameter"] if p["name"] == "PackageBundle"]
    return bundle


def check_libraries(bundle: dict[str, Any]) -> set[str]:
    """1.04 / 2.04: at least one Library; each has text/cql and application/elm+json data; names unique."""
    libraries = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Library"]
    assert libraries
    for library in libraries:
        types = {c["contentType"] for c in library["content"] if base64.b64decode(c["data"])}
        assert {"text/cql", "application/elm+json"} <= types, library["name"]
    names = [library["name"] for library in libraries]
    assert len(names) == len(set(names))
    return {library["url"] for library in libraries}


def check_extensions(questionnaire: dict[str, Any], library_urls: set[str]) -> None:
    """1.05 / 2.05 / 2.11: prepopulation root extensions; variable expressions are CQL; every cqf-library
    equals a Library.url in the package (exact string)."""
    root = questionnaire.get("extension", [])
    assert {e["url"] for e in root} & ROOT_EXTENSIONS
    for ext in root:
        if ext["url"] == "http://hl7.org/fhir/StructureDefinition/variable":
            assert ext["valueExpression"]["language"] == "text/cql"
        if ext["url"] == "http://hl7.org/fhir/StructureDefinition/cqf-library":
            assert ext["valueCanonical"] in library_urls


def check_expressions(questionnaire: dict[str, Any]) -> None:
    """1.06 / 2.12: at least one initial/candidate/context expression, and all of them text/cql."""
    found = [
        ext["valueExpression"]
        for item in items(questionnaire.get("item", []))
        for ext in item.get("extension", [])
        if ext["url"] in ITEM_EXPRESSIONS
    ]
    assert found
    assert {expression["language"] for expression in found} == {"text/cql"}


@pytest.mark.parametrize("topic", QUESTIONNAIRES)
def test_package_passes_the_static_form_checks(catalog: Catalog, now: datetime, topic: str) -> None:
    bundle = package_bundle(catalog, now, topic)
    library_urls = check_libraries(bundle)
    questionnaire = bundle["entry"][0]["resource"]
    check_extensions(questionnaire, library_urls)
    if not topic.endswith("adaptive"):
        check_expressions(questionnaire)


def test_adaptive_flow_passes_the_next_question_checks(catalog: Catalog, now: datetime) -> None:
    bundle = package_bundle(catalog, now, "home-oxygen-adaptive")
    library_urls = check_libraries(bundle)
    response = bundle["entry"][1]["resource"]
    answers: dict[str, dict[str, Any]] = {
        "condition": {"valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J44.9"}},
        "test-method": {"valueCoding": {"system": f"{BASE}/CodeSystem/dtr-answers", "code": "abg"}},
        "test-condition": {"valueCoding": {"system": f"{BASE}/CodeSystem/dtr-answers", "code": "rest"}},
        "test-date": {"valueDate": "2026-11-18"},
        "pao2": {"valueDecimal": 52},
        "flow-rate": {"valueDecimal": 2},
        "hours-per-day": {"valueInteger": 24},
        "portable": {"valueBoolean": False},
        "issue-pa-number": {"valueBoolean": False},
    }
    statuses = []
    for _ in range(8):
        response = next_question(catalog, response, now=now)
        statuses.append(response["status"])
        if response["status"] == "completed":
            break
        contained = response["contained"][0]
        check_extensions(contained, library_urls)  # 2.11
        check_expressions(contained)  # 2.12
        answered = {i["linkId"] for i in response.get("item", [])}
        for item in items(contained["item"]):
            if item["linkId"] in answers and item["linkId"] not in answered:
                response.setdefault("item", []).append(
                    {"linkId": item["linkId"], "answer": [answers[item["linkId"]]]}
                )
    assert statuses[-1] == "completed"  # 2.13
    assert statuses.count("in-progress") == 4
