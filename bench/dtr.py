"""DTR latency: `questionnaire_package` and `next_question` as functions (p50/p99 in milliseconds).

DTR 2.2.0 asks 5 s for the first adaptive call and 1 s after; PriorGate's budget is p99 <= 100 ms for
the package and <= 30 ms for a next-question step. Run: `.venv/bin/python bench/dtr.py [iterations]`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from questionnaires import BASE, Catalog, load_catalog, next_question, questionnaire_package

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
COVERAGE = {"resourceType": "Coverage", "id": "cov-1", "beneficiary": {"reference": "Patient/pat-1"}}
ANS = f"{BASE}/CodeSystem/dtr-answers"


def measure(fn: Callable[[], object], iterations: int) -> dict[str, float]:
    for _ in range(min(20, iterations)):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "n": iterations,
    }


def package_input(code: str) -> dict[str, Any]:
    order = {
        "resourceType": "DeviceRequest",
        "id": "ord-1",
        "codeCodeableConcept": {
            "coding": [{"system": "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "code": code}]
        },
    }
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "coverage", "resource": COVERAGE}, {"name": "order", "resource": order}],
    }


def adaptive_steps(catalog: Catalog) -> list[dict[str, Any]]:
    """The QuestionnaireResponses a client sends along one qualifying adaptive flow."""
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/home-oxygen-adaptive"},
        ],
    }
    response = questionnaire_package(catalog, body, "2.2.0", now=NOW)["parameter"][0]["resource"]["entry"][1][
        "resource"
    ]
    answers = [
        [
            ("condition", {"valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J44.9"}}),
            ("test-method", {"valueCoding": {"system": ANS, "code": "oximetry"}}),
            ("test-condition", {"valueCoding": {"system": ANS, "code": "rest"}}),
            ("test-date", {"valueDate": "2026-11-18"}),
        ],
        [("spo2", {"valueDecimal": 86})],
        [
            ("flow-rate", {"valueDecimal": 2}),
            ("hours-per-day", {"valueInteger": 24}),
            ("portable", {"valueBoolean": True}),
        ],
        [("issue-pa-number", {"valueBoolean": True})],
        [],
    ]
    steps = []
    for batch in [[], *answers]:
        for link_id, value in batch:
            response.setdefault("item", []).append({"linkId": link_id, "answer": [value]})
        steps.append(orjson.loads(orjson.dumps(response)))
        if response["status"] == "completed":
            break
        response = next_question(catalog, response, now=NOW)
    return steps


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    start = time.perf_counter()
    catalog = load_catalog()
    load_ms = (time.perf_counter() - start) * 1000
    results: dict[str, Any] = {"load_catalog_ms": round(load_ms, 1)}
    for version in ("2.0.1", "2.2.0"):
        body = package_input("E0601")
        results[f"questionnaire_package_{version}"] = measure(
            lambda body=body, version=version: questionnaire_package(catalog, body, version, now=NOW),
            iterations,
        )
    body = package_input("E0601")
    size = len(orjson.dumps(questionnaire_package(catalog, body, "2.0.1", now=NOW)))
    results["questionnaire_package_serialized"] = measure(
        lambda: orjson.dumps(questionnaire_package(catalog, body, "2.0.1", now=NOW)), iterations
    )
    results["questionnaire_package_bytes"] = size
    steps = adaptive_steps(catalog)
    results["next_question_first"] = measure(lambda: next_question(catalog, steps[0], now=NOW), iterations)
    results["next_question_step"] = measure(
        lambda: [next_question(catalog, step, now=NOW) for step in steps[1:5]], iterations
    )
    results["next_question_step"] = {
        k: (round(v / 4, 3) if k != "n" else v) for k, v in results["next_question_step"].items()
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
