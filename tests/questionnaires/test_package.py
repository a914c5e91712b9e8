"""`$questionnaire-package` output shape for DTR 2.0.1 and 2.2.0."""

from __future__ import annotations

import os
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from igs.outcome import Failure, OperationOutcomeError
from questionnaires import BASE, Catalog, DtrVersion, questionnaire_package, response_links

HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov-1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat-1"},
}


def order(code: str, system: str = HCPCS, kind: str = "DeviceRequest") -> dict[str, Any]:
    field = "codeCodeableConcept" if kind == "DeviceRequest" else "code"
    return {"resourceType": kind, "id": "ord-1", field: {"coding": [{"system": system, "code": code}]}}


def parameters(*params: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE}, *params]}


def bundles(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p["resource"] for p in result["parameter"] if p["name"] == name]


@pytest.mark.parametrize(("version", "name"), [("2.0.1", "PackageBundle"), ("2.2.0", "packagebundle")])
def test_package_bundle_shape(catalog: Catalog, now: datetime, version: DtrVersion, name: str) -> None:
    result = questionnaire_package(
        catalog,
        parameters({"name": "order", "resource": order("E0601")}),
        version,
        now=now,
        new_id=lambda: "qr-1",
    )
    assert result["resourceType"] == "Parameters"
    [bundle] = bundles(result, name)
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[:2] == ["Questionnaire", "QuestionnaireResponse"]
    assert set(kinds[2:]) == {"Library", "ValueSet"}
    questionnaire, response = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    libraries = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Library"]
    assert {lib["name"] for lib in libraries} == {"CPAPPrepopulation", "DTRHelpers", "FHIRHelpers"}
    urls = {lib["url"] for lib in libraries}
    versioned = {f"{lib['url']}|{lib['version']}" for lib in libraries}
    cqf = [e["valueCanonical"] for e in questionnaire["extension"] if e["url"].endswith("cqf-library")]
    # 2.0.1 clients (reference app, Inferno) match cqf-library to Library.url exactly; 2.2.0 wants |version.
    assert set(cqf) <= (urls if version == "2.0.1" else versioned)
    valuesets = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ValueSet"]
    assert all(vs["expansion"]["total"] == len(vs["expansion"]["contains"]) > 0 for vs in valuesets)
    answer_sets = {i["answerValueSet"] for i in _items(questionnaire["item"]) if "answerValueSet" in i}
    shipped = {vs["url"] for vs in valuesets} | {f"{vs['url']}|{vs['version']}" for vs in valuesets}
    assert answer_sets <= shipped
    assert response["status"] == "in-progress"
    assert response["questionnaire"] == f"{BASE}/Questionnaire/cpap|1.0.0"
    assert response["subject"] == {"reference": "Patient/pat-1"}
    contexts = {
        e["url"].rsplit("/", 1)[1]: e["valueReference"]["reference"] for e in response["extension"][:2]
    }
    links = response_links(response)
    assert (links.coverages, links.orders, links.subject) == (
        ("Coverage/cov-1",),
        ("DeviceRequest/ord-1",),
        "Patient/pat-1",
    )
    if version == "2.0.1":
        assert contexts == {"qr-context": "DeviceRequest/ord-1"}
        assert [e["valueReference"]["reference"] for e in response["extension"][:2]] == [
            "Coverage/cov-1",
            "DeviceRequest/ord-1",
        ]
    else:
        assert contexts == {"qr-coverage": "Coverage/cov-1", "qr-context": "DeviceRequest/ord-1"}


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item)
        out.extend(_items(item.get("item", [])))
    return out


def test_caller_canonicals_select_and_unknown_ones_warn(catalog: Catalog, now: datetime) -> None:
    result = questionnaire_package(
        catalog,
        parameters(
            {"name": "context", "valueString": "assertion-123"},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/unknown"},
        ),
        "2.0.1",
        now=now,
        canonicals=[
            f"{BASE}/Questionnaire/lumbar-spine-mri|1.0.0",
            f"{BASE}/Questionnaire/biologic-infusion|1.0.0",
        ],
    )
    ids = [b["entry"][0]["resource"]["id"] for b in bundles(result, "PackageBundle")]
    assert ids == ["lumbar-spine-mri", "biologic-infusion"]
    [outcome] = bundles(result, "outcome")
    assert outcome["issue"][0]["severity"] == "warning"
    assert "unknown" in outcome["issue"][0]["diagnostics"]


def test_adaptive_package_has_contained_questionnaire_and_service_url(
    catalog: Catalog, now: datetime
) -> None:
    result = questionnaire_package(
        catalog,
        parameters({"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/home-oxygen-adaptive"}),
        "2.2.0",
        now=now,
        service_base="https://payer.example/fhir/",
    )
    [bundle] = bundles(result, "packagebundle")
    served, response = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    assert "item" not in served
    adaptive = [e["valueUrl"] for e in served["extension"] if e["url"].endswith("questionnaireAdaptive")]
    assert adaptive == ["https://payer.example/fhir/Questionnaire/$next-question"]
    [contained] = response["contained"]
    assert response["questionnaire"] == f"#{contained['id']}"
    assert contained["derivedFrom"] == [f"{BASE}/Questionnaire/home-oxygen-adaptive|1.0.0"]
    assert any(e["resource"]["resourceType"] == "Library" for e in bundle["entry"])


def test_changedsince_after_content_date_returns_no_bundle(catalog: Catalog, now: datetime) -> None:
    body = parameters(
        {"name": "order", "resource": order("J1745")},
        {"name": "changedsince", "valueInstant": "2027-01-01T00:00:00Z"},
    )
    unchanged = questionnaire_package(catalog, body, "2.2.0", now=now)
    assert "parameter" not in unchanged
    body["parameter"][-1] = {"name": "changedsince", "valueDateTime": "2026-01-01"}
    assert len(bundles(questionnaire_package(catalog, body, "2.0.1", now=now), "PackageBundle")) == 1


def test_no_matching_questionnaire_is_unprocessable(catalog: Catalog, now: datetime) -> None:
    body = parameters(
        {"name": "order", "resource": order("99213", "http://www.ama-assn.org/go/cpt", "ServiceRequest")}
    )
    with pytest.raises(OperationOutcomeError) as raised:
        questionnaire_package(catalog, body, "2.0.1", now=now)
    assert raised.value.failure is Failure.UNPROCESSABLE


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Bundle"},
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "order", "resource": {"resourceType": "Patient"}}],
        },
        {"resourceType": "Parameters", "parameter": [{"name": "coverage", "resource": COVERAGE}]},
        {"resourceType": "Parameters", "parameter": [{"name": "bogus", "valueString": "x"}]},
    ],
)
def test_invalid_input_is_rejected(catalog: Catalog, now: datetime, body: dict[str, Any]) -> None:
    with pytest.raises(OperationOutcomeError) as raised:
        questionnaire_package(catalog, body, "2.0.1", now=now)
    assert raised.value.failure is Failure.INVALID


def test_2_2_0_requires_one_coverage(catalog: Catalog, now: datetime) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "order", "resource": order("E0601")}]}
    assert bundles(questionnaire_package(catalog, body, "2.0.1", now=now), "PackageBundle")
    with pytest.raises(OperationOutcomeError, match="exactly one coverage"):
        questionnaire_package(catalog, body, "2.2.0", now=now)


def test_output_parameter_name_matches_the_2_0_1_profile(catalog: Catalog) -> None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    with tarfile.open(Path(raw) / "davinci_dtr_2.0.1.tgz") as archive:
        member = archive.extractfile("package/StructureDefinition-dtr-qpackage-output-parameters.json")
        assert member is not None
        profile = orjson.loads(member.read())
    names = {
        e.get("patternString")
        for e in profile["differential"]["element"]
        if e["path"] == "Parameters.parameter.name"
    }
    assert "PackageBundle" in names
