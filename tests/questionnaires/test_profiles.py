"""Packages and adaptive responses validate against the DTR 2.0.1 profiles (the version Inferno tests)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

import pytest

from igs.registry import load_registry
from igs.validator import Validator
from questionnaires import BASE, Catalog, next_question, questionnaire_package

DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
TOPICS = [
    "lumbar-spine-mri",
    "ct-abdomen",
    "cpap",
    "home-oxygen",
    "home-oxygen-adaptive",
    "biologic-infusion",
    "total-knee-arthroplasty",
]
COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov-1",
    "status": "active",
    "beneficiary": {"reference": "Patient/pat-1"},
    "payor": [{"reference": "Organization/pgdemo"}],
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    return Validator(load_registry(raw))


UNKNOWN_SUB_EXTENSION = re.compile(r"^Unknown extension [^ :/]+ in (\S+)$")


def errors(validator: Validator, resource: dict[str, Any], profile: str) -> list[str]:
    """Errors, leaving out sub-extensions of an extension whose definition no loaded IG carries (the SDC
    package is not among the IG packages, so its complex extensions cannot be checked either way)."""
    out = []
    for issue in validator.validate(resource, profile):
        if issue.severity not in ("error", "fatal"):
            continue
        sub = UNKNOWN_SUB_EXTENSION.match(issue.diagnostics)
        if sub and validator.profiles.plan(sub.group(1), None) is None:
            continue
        out.append(f"{issue.expression}: {issue.diagnostics}")
    return out


def package(catalog: Catalog, now: datetime, topic: str) -> dict[str, Any]:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coverage", "resource": COVERAGE},
            {"name": "questionnaire", "valueCanonical": f"{BASE}/Questionnaire/{topic}|1.0.0"},
        ],
    }
    return questionnaire_package(catalog, body, "2.0.1", now=now)


@pytest.mark.parametrize("topic", TOPICS)
def test_package_output_validates(validator: Validator, catalog: Catalog, now: datetime, topic: str) -> None:
    result = package(catalog, now, topic)
    assert errors(validator, result, DTR + "dtr-qpackage-output-parameters|2.0.1") == []
    bundle = result["parameter"][0]["resource"]
    assert errors(validator, bundle, DTR + "DTR-QPackageBundle|2.0.1") == []
    questionnaire = bundle["entry"][0]["resource"]
    profile = "dtr-questionnaire-adapt-search" if topic.endswith("adaptive") else "dtr-std-questionnaire"
    assert errors(validator, questionnaire, f"{DTR}{profile}|2.0.1") == []


def test_adaptive_step_validates(validator: Validator, catalog: Catalog, now: datetime) -> None:
    draft = package(catalog, now, "home-oxygen-adaptive")["parameter"][0]["resource"]["entry"][1]["resource"]
    response = next_question(catalog, draft, now=now)
    assert errors(validator, response["contained"][0], DTR + "dtr-questionnaire-adapt|2.0.1") == []
    assert errors(validator, response, "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse") == []
