"""`ValueSet/$expand` and `$log-questionnaire-errors` input validation."""

from __future__ import annotations

from datetime import datetime

import pytest

from igs.outcome import Failure, OperationOutcomeError
from questionnaires import BASE, Catalog, expand_valueset, log_questionnaire_errors


def test_expand_lists_codes_with_current_timestamp(catalog: Catalog, now: datetime) -> None:
    vs = expand_valueset(catalog, f"{BASE}/ValueSet/oxygen-test-conditions", now=now)
    assert [c["code"] for c in vs["expansion"]["contains"]] == ["rest", "exertion", "sleep"]
    assert vs["expansion"]["timestamp"] == now.isoformat()
    filtered = expand_valueset(
        catalog, f"{BASE}/ValueSet/low-back-pain", "1.0.0", now=now, text_filter="radiculopathy"
    )
    assert {c["code"] for c in filtered["expansion"]["contains"]} == {"M54.16", "M54.17", "M51.16", "M51.17"}


def test_expand_with_no_match_has_no_contains(catalog: Catalog, now: datetime) -> None:
    vs = expand_valueset(catalog, f"{BASE}/ValueSet/low-back-pain", now=now, text_filter="no such code")
    assert vs["expansion"]["total"] == 0
    assert "contains" not in vs["expansion"]


def test_expand_unknown_is_not_found(catalog: Catalog, now: datetime) -> None:
    with pytest.raises(OperationOutcomeError) as raised:
        expand_valueset(catalog, f"{BASE}/ValueSet/low-back-pain", "9.9.9", now=now)
    assert raised.value.failure is Failure.NOT_FOUND


@pytest.mark.parametrize(
    ("q_name", "o_name"), [("Questionnaire", "OperationOutcome"), ("questionnaire", "operationOutcome")]
)
def test_log_errors_accepts_both_spellings(q_name: str, o_name: str) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}
    report = log_questionnaire_errors(
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": q_name, "valueCanonical": f"{BASE}/Questionnaire/cpap|1.0.0"},
                {"name": o_name, "resource": outcome},
            ],
        }
    )
    assert report.questionnaires == (f"{BASE}/Questionnaire/cpap|1.0.0",)
    assert report.outcomes == (outcome,)


def test_log_errors_rejects_incomplete_input() -> None:
    with pytest.raises(OperationOutcomeError, match="operationOutcome"):
        log_questionnaire_errors(
            {"resourceType": "Parameters", "parameter": [{"name": "questionnaire", "valueCanonical": "x"}]}
        )
