"""Patient access rules for patient-context callers: which requests, narrowed searches, Consent writes."""

from __future__ import annotations

import pytest

from igs.outcome import OperationOutcomeError
from server.security.patient_context import (
    check_consent_write,
    concerns,
    patient_path_allowed,
    patient_search_pairs,
)
from server.security.principal import Principal, kind_of
from server.security.tokens import lenient_scopes

SCOPES = lenient_scopes("patient/*.rs")


def patient(patient_id: str | None = "p1") -> Principal:
    return Principal("app", frozenset({"members"}), SCOPES, kind=kind_of(SCOPES), patient=patient_id)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "Patient/p1", True),
        ("GET", "Patient/p2", True),  # answered 404 by the read route, never 403
        ("GET", "Patient", True),
        ("GET", "ExplanationOfBenefit", True),
        ("GET", "ExplanationOfBenefit/e1", True),
        ("GET", "Consent/c1", True),
        ("POST", "Consent", True),
        ("PUT", "Consent/c1", True),
        ("PUT", "Consent", False),
        ("DELETE", "Consent/c1", False),
        ("POST", "ExplanationOfBenefit", False),
        ("GET", "Claim", False),
        ("GET", "Patient/p1/_history", False),
        ("GET", "Patient/p1/_history/1", False),
        ("POST", "Patient/$member-match", False),
        ("POST", "Consent/_search", False),
        ("POST", "", False),
        ("GET", "_history", False),
        ("GET", "Questionnaire", True),  # published content is nobody's patient data
        ("GET", "ValueSet/vs-1", True),
        ("POST", "Questionnaire/$questionnaire-package", True),
        ("GET", "ValueSet/$expand", True),
        ("PUT", "Questionnaire/q1", False),
        ("GET", "Questionnaire/q1/_history", False),
        ("POST", "QuestionnaireResponse", False),
    ],
)
def test_patient_paths(method: str, path: str, allowed: bool) -> None:
    assert patient_path_allowed(patient(), method, path) is allowed


def test_a_patient_context_without_a_patient_reaches_nothing() -> None:
    assert not patient_path_allowed(patient(None), "GET", "ExplanationOfBenefit")


def test_searches_are_narrowed_to_the_patient_and_reaching_parameters_refused() -> None:
    narrowed = patient_search_pairs(patient(), "ExplanationOfBenefit", [("patient", "Patient/p2")])
    assert narrowed == [("patient", "Patient/p2"), ("patient", "Patient/p1")]  # ANDed: finds nothing
    assert patient_search_pairs(patient(), "Patient", [])[-1] == ("_id", "p1")
    for name in ("_include", "_revinclude", "_has:Claim:patient:status", "patient.name"):
        with pytest.raises(OperationOutcomeError) as refused:
            patient_search_pairs(patient(), "ExplanationOfBenefit", [(name, "x")])
        assert refused.value.failure.value == "invalid"


def test_resources_concern_the_patient_by_reference() -> None:
    assert concerns(patient(), "Consent", {"patient": {"reference": "Patient/p1"}})
    assert concerns(patient(), "Consent", {"patient": {"reference": "https://pg.example/fhir/Patient/p1"}})
    assert not concerns(patient(), "Consent", {"patient": {"reference": "Patient/p12"}})
    assert not concerns(patient(), "Claim", {"patient": {"reference": "Patient/p1"}})


def test_consent_writes() -> None:
    check_consent_write(patient(), {"patient": {"reference": "Patient/p1"}})
    with pytest.raises(OperationOutcomeError):
        check_consent_write(patient(), {"patient": {"reference": "Patient/p2"}})
    staff_scopes = lenient_scopes("system/Consent.c")
    staff = Principal("ehr", frozenset({"org-a"}), staff_scopes, kind=kind_of(staff_scopes))
    check_consent_write(staff, {"patient": {"reference": "Patient/p2"}})  # the tenant rule applies instead
