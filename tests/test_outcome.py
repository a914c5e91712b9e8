from igs.outcome import Failure, Issue, OperationOutcomeError, operation_outcome


def test_error_renders_operation_outcome_with_expression() -> None:
    error = OperationOutcomeError.of(Failure.NOT_FOUND, "Patient/1 is not known", expression=["Patient.id"])
    assert error.to_fhir() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-found",
                "diagnostics": "Patient/1 is not known",
                "expression": ["Patient.id"],
            }
        ],
    }


def test_empty_outcome_still_has_an_issue() -> None:
    assert operation_outcome([])["issue"][0]["severity"] == "information"


def test_message_joins_issues() -> None:
    error = OperationOutcomeError(Failure.INVALID, (Issue("a"), Issue("b")))
    assert str(error) == "a; b"
