"""`$next-question` for the adaptive home oxygen form: item by item to `completed`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from igs.outcome import Failure, OperationOutcomeError
from questionnaires import BASE, Catalog, next_question, questionnaire_package, response_links

ANS = f"{BASE}/CodeSystem/dtr-answers"
COVERAGE = {"resourceType": "Coverage", "id": "cov-1", "beneficiary": {"reference": "Patient/pat-1"}}


@pytest.fixture
def start(catalog: Catalog, now: datetime) -> dict[str, Any]:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/home-oxygen-adaptive|1.0.0"},
        ],
    }
    result = questionnaire_package(catalog, body, "2.2.0", now=now)
    response: dict[str, Any] = result["parameter"][0]["resource"]["entry"][1]["resource"]
    return response


def answer(response: dict[str, Any], link_id: str, **value: Any) -> None:
    response.setdefault("item", []).append({"linkId": link_id, "answer": [value]})


def asked(response: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            out.append(item["linkId"])
            walk(item.get("item", []))

    walk(response["contained"][0].get("item", []))
    return out


def coding(code: str) -> dict[str, str]:
    return {"system": ANS, "code": code}


def fill_test(
    catalog: Catalog, now: datetime, response: dict[str, Any], spo2: float, condition: str
) -> dict[str, Any]:
    """Answer the test step, then the measurement step the method selects."""
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    answer(response, "condition", valueCoding={"system": icd, "code": "J44.9"})
    answer(response, "test-method", valueCoding=coding("oximetry"))
    answer(response, "test-condition", valueCoding=coding(condition))
    answer(response, "test-date", valueDate="2026-11-18")
    response = next_question(catalog, response, now=now)
    assert "spo2" in asked(response) and "pao2" not in asked(response)
    answer(response, "spo2", valueDecimal=spo2)
    return response


def fill_prescription(response: dict[str, Any]) -> None:
    answer(response, "flow-rate", valueDecimal=2)
    answer(response, "hours-per-day", valueInteger=24)
    answer(response, "portable", valueBoolean=True)


def coverage_information(response: dict[str, Any]) -> dict[str, Any]:
    [ext] = [e for e in response["extension"] if e["url"].endswith("ext-coverage-information")]
    return {
        part["url"]: next(v for k, v in part.items() if k.startswith("value")) for part in ext["extension"]
    }


def test_qualifying_flow_completes_with_satisfied_pa_id(
    catalog: Catalog, now: datetime, start: dict[str, Any]
) -> None:
    response = next_question(catalog, start, now=now)
    assert response["status"] == "in-progress"
    assert {"condition", "test-method", "test-condition", "test-date"} <= set(asked(response))
    contained = response["contained"][0]
    assert any(e["url"].endswith("cqf-library") for e in contained["extension"])
    assert "enableWhen" not in orjson.dumps(contained).decode()
    response = fill_test(catalog, now, response, 86, "exertion")
    response = next_question(catalog, response, now=now)
    assert "exercise-improvement" in asked(response) and "group-ii" not in asked(response)
    answer(response, "exercise-improvement", valueBoolean=True)
    fill_prescription(response)
    response = next_question(catalog, response, now=now)
    assert asked(response)[-1] == "issue-pa-number"
    assert response["status"] == "in-progress"
    answer(response, "issue-pa-number", valueBoolean=True)
    ids = iter(["pa-1", "assert-1"])
    response = next_question(catalog, response, now=now, new_id=lambda: next(ids))
    assert response["status"] == "completed"
    info = coverage_information(response)
    assert info["satisfied-pa-id"] == "PGDEMO-pa-1"
    assert info["pa-needed"] == "satisfied"
    assert info["coverage"] == {"reference": "Coverage/cov-1"}
    assert info["coverage-assertion-id"] == "assert-1"
    links = response_links(response)
    assert links.questionnaire == f"{BASE}/Questionnaire/home-oxygen-adaptive|1.0.0"
    assert links.coverages == ("Coverage/cov-1",)
    assert links.satisfied_pa_ids == ("PGDEMO-pa-1",)
    assert links.coverage_assertion_ids == ("assert-1",)
    assert links.status == "completed"


def test_non_qualifying_flow_completes_without_pa_id(
    catalog: Catalog, now: datetime, start: dict[str, Any]
) -> None:
    response = next_question(catalog, start, now=now)
    response = fill_test(catalog, now, response, 93, "rest")
    response = next_question(catalog, response, now=now)
    assert "group-ii" in asked(response)
    answer(response, "group-ii", valueBoolean=False)
    fill_prescription(response)
    response = next_question(catalog, response, now=now)
    assert response["status"] == "completed"
    info = coverage_information(response)
    assert "satisfied-pa-id" not in info
    assert info["covered"] == "conditional"


def test_missing_required_answer_is_invalid(catalog: Catalog, now: datetime, start: dict[str, Any]) -> None:
    response = next_question(catalog, start, now=now)
    answer(response, "test-method", valueCoding=coding("oximetry"))
    with pytest.raises(OperationOutcomeError) as raised:
        next_question(catalog, response, now=now)
    assert raised.value.failure is Failure.INVALID


def test_answer_to_unasked_item_is_invalid(catalog: Catalog, now: datetime, start: dict[str, Any]) -> None:
    answer(start, "flow-rate", valueDecimal=2)
    with pytest.raises(OperationOutcomeError, match="never asked"):
        next_question(catalog, start, now=now)


def test_parameters_body_and_bad_bodies(catalog: Catalog, now: datetime, start: dict[str, Any]) -> None:
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": start}],
    }
    assert next_question(catalog, wrapped, now=now)["contained"][0]["item"]
    for bad in ({"resourceType": "Patient"}, {**start, "questionnaire": "#elsewhere"}):
        with pytest.raises(OperationOutcomeError):
            next_question(catalog, bad, now=now)


def test_pas_triggered_session_never_offers_a_pa_number(catalog: Catalog, now: datetime) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "context", "valueString": "PAS-TRN-123"},
        ],
    }
    result = questionnaire_package(
        catalog,
        body,
        "2.2.0",
        now=now,
        canonicals=[f"{BASE}/Questionnaire/home-oxygen-adaptive"],
        pas_triggered=True,
    )
    response = result["parameter"][0]["resource"]["entry"][1]["resource"]
    response = fill_test(catalog, now, next_question(catalog, response, now=now), 80, "rest")
    response = next_question(catalog, response, now=now)
    fill_prescription(response)
    response = next_question(catalog, response, now=now)
    assert "issue-pa-number" not in asked(response)
    assert response["status"] == "completed"
    info = coverage_information(response)
    assert info["covered"] == "covered"
    assert "satisfied-pa-id" not in info


def test_contained_items_without_type_do_not_break_the_walk(
    catalog: Catalog, now: datetime, start: dict[str, Any]
) -> None:
    response = next_question(catalog, start, now=now)
    for item in response["contained"][0]["item"]:
        item.pop("type")
    with pytest.raises(OperationOutcomeError, match="unanswered"):
        next_question(catalog, response, now=now)
