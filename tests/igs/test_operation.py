from __future__ import annotations

from typing import Any

import pytest

from igs.operation import validate_operation
from igs.outcome import Failure, OperationOutcomeError
from igs.registry import Registry
from igs.validator import Validator

PAS_CLAIM = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim"


def test_malformed_requests_are_invalid_not_crashes() -> None:
    validator = Validator.__new__(Validator)  # never reached: the request is rejected before validation
    patient = {"resourceType": "Patient"}
    for body in (
        None,
        [],
        {"no": "type"},
        {"resourceType": "Parameters", "parameter": [1]},
        # regressions: each of these was a TypeError (a 500)
        {"resourceType": "Parameters", "parameter": True},
        {"resourceType": "Parameters", "parameter": 5},
        {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": ["create"]}]},
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": patient}, {"name": "profile", "valueUri": 3}],
        },
    ):
        with pytest.raises(OperationOutcomeError) as caught:
            validate_operation(validator, body)
        assert caught.value.failure is Failure.INVALID
    with pytest.raises(OperationOutcomeError):
        validate_operation(
            validator, {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "x"}]}
        )
    deleted = validate_operation(
        validator, {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    )
    assert deleted["issue"][0]["severity"] == "information"


@pytest.mark.igs
def test_parameters_in_operation_outcome_out(registry: Registry) -> None:
    package = registry.find("hl7.fhir.us.davinci-pas", "2.2.1")
    assert package is not None
    claim: dict[str, Any] = dict(package.examples())["example/Claim-ReferralAuthorizationExample.json"]
    validator = Validator(registry)
    claim["use"] = "claim"
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": claim}, {"name": "profile", "valueUri": PAS_CLAIM}],
    }
    outcome = validate_operation(validator, body, "Claim", package=package)
    assert outcome["resourceType"] == "OperationOutcome"
    assert {"severity": "error", "code": "value", "expression": ["Claim.use"]}.items() <= next(
        i for i in outcome["issue"] if i["severity"] == "error"
    ).items()
    with pytest.raises(OperationOutcomeError) as caught:
        validate_operation(validator, body, "Patient")
    assert caught.value.failure is Failure.INVALID
    claim["use"] = "preauthorization"
    clean = validate_operation(validator, claim, "Claim", profile=PAS_CLAIM, package=package)
    assert [i for i in clean["issue"] if i["severity"] == "error"] == []
