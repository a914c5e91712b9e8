"""DTR latency: `questionnaire_package` and `next_question` as functions (p50/p99 in milliseconds).

DTR 2.2.0 asks 5 s for the first adaptive call and 1 s after; PriorGate's budget is p99 <= 100 ms for
the package and <= 30 ms for a next-question step. Run: `.venv/bin/python bench/dtr.py [iterations]`.

Baseline in the same run: what an echo endpoint does with the same payload, i.e. parsing and serializing
the request and the answer with orjson; the ratio says how many times that cost the DTR work takes.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from _report import Figure, Report

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


def echo_cost(request: Any, answer: Any) -> Callable[[], object]:
    """The baseline: parse and serialize the request and the answer, as an echo endpoint would."""
    raw_request, raw_answer = orjson.dumps(request), orjson.dumps(answer)
    return lambda: (orjson.dumps(orjson.loads(raw_request)), orjson.dumps(orjson.loads(raw_answer)))


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    start = time.perf_counter()
    catalog = load_catalog()
    load_ms = (time.perf_counter() - start) * 1000
    report = Report(
        "dtr",
        f"questionnaire_package and next_question as functions, {iterations} calls each after warm-up; "
        "baseline: orjson parse+serialize of the same request and answer (an echo's work)",
    )
    report.note(f"load_catalog: {load_ms:.1f} ms")
    base = "orjson echo of same payload"

    def add(name: str, fn: Callable[[], object], request: Any, answer: Any, per: int = 1) -> None:
        ours = measure(fn, iterations)
        echo = measure(echo_cost(request, answer), iterations)
        p50, p99 = ours["p50_ms"] / per, ours["p99_ms"] / per
        report.add(Figure(name, "ms", p50, base, echo["p50_ms"], p50, p99, echo["p50_ms"], echo["p99_ms"]))

    for version in ("2.0.1", "2.2.0"):
        body = package_input("E0601")
        answer = questionnaire_package(catalog, body, version, now=NOW)
        add(
            f"$questionnaire-package {version} (p50)",
            lambda body=body, version=version: questionnaire_package(catalog, body, version, now=NOW),
            body,
            answer,
        )
    body = package_input("E0601")
    answer = questionnaire_package(catalog, body, "2.0.1", now=NOW)
    report.note(f"questionnaire package: {len(orjson.dumps(answer))} bytes")
    add(
        "$questionnaire-package 2.0.1 serialized (p50)",
        lambda: orjson.dumps(questionnaire_package(catalog, body, "2.0.1", now=NOW)),
        body,
        answer,
    )
    steps = adaptive_steps(catalog)
    first = next_question(catalog, steps[0], now=NOW)
    add("$next-question first (p50)", lambda: next_question(catalog, steps[0], now=NOW), steps[0], first)
    later = next_question(catalog, steps[2], now=NOW)
    add(
        "$next-question step, mean of 4 (p50)",
        lambda: [next_question(catalog, step, now=NOW) for step in steps[1:5]],
        steps[2],
        later,
        per=4,
    )
    report.finish()


if __name__ == "__main__":
    main()
