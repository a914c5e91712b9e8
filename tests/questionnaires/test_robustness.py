"""Malformed input to the DTR functions is an OperationOutcomeError (a 4xx), never another exception."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from igs.outcome import OperationOutcomeError
from questionnaires import (
    BASE,
    Catalog,
    load_catalog,
    log_questionnaire_errors,
    next_question,
    questionnaire_package,
    response_links,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "item",
        "answer",
        "contained",
        "extension",
        "linkId",
        "questionnaire",
        "derivedFrom",
        "status",
        "parameter",
    ]
    + ["resource", "name", "valueCanonical", "valueString", "resourceType", "id", "type", "url"]
)
FIELDS = st.dictionaries(KEYS, JSON, max_size=4)


NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@cache
def catalog() -> Catalog:
    return load_catalog()


def adaptive_response(catalog: Catalog, now: datetime) -> dict[str, Any]:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/home-oxygen-adaptive"}
        ],
    }
    result: dict[str, Any] = questionnaire_package(catalog, body, "2.0.1", now=now)
    response: dict[str, Any] = result["parameter"][0]["resource"]["entry"][1]["resource"]
    return response


@settings(max_examples=150, deadline=None)
@given(top=FIELDS, nested=FIELDS, where=st.sampled_from(["top", "contained", "item"]))
def test_next_question_rejects_malformed_responses(
    top: dict[str, Any], nested: dict[str, Any], where: str
) -> None:
    forms, now = catalog(), NOW
    response = next_question(forms, adaptive_response(forms, now), now=now)
    if where == "top":
        response.update(top)
    elif where == "contained":
        response["contained"][0].update(nested)
    else:
        response["contained"][0]["item"][0].update(nested)
        response.setdefault("item", []).append(top)
    for call in (lambda: next_question(forms, response, now=now), lambda: response_links(response)):
        try:
            call()
        except OperationOutcomeError:
            pass


@settings(max_examples=150, deadline=None)
@given(params=st.lists(FIELDS, max_size=4), extra=FIELDS)
def test_parameters_inputs_reject_malformed_bodies(
    params: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    forms = catalog()
    body = {"resourceType": "Parameters", "parameter": params, **extra}
    for call in (
        lambda: questionnaire_package(forms, body, "2.0.1", now=NOW),
        lambda: questionnaire_package(forms, body, "2.2.0", now=NOW),
        lambda: log_questionnaire_errors(body),
        lambda: next_question(forms, body, now=NOW),
    ):
        try:
            call()
        except OperationOutcomeError:
            pass


def test_an_order_coding_that_is_not_an_array_is_ignored() -> None:
    # Regression: `"coding": null` (or a number) in the order's code was iterated: a 500.
    forms = catalog()
    for odd in (None, 5, True, "x"):
        order = {"resourceType": "DeviceRequest", "codeCodeableConcept": {"coding": odd}}
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "coverage", "resource": {"resourceType": "Coverage", "id": "c"}},
                {"name": "order", "resource": order},
            ],
        }
        try:
            questionnaire_package(forms, body, "2.0.1", now=NOW)
        except OperationOutcomeError:
            pass
