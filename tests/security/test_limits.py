"""Input limits: each refusal is a 413 OperationOutcome, never a 500."""

from __future__ import annotations

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.security.limits import InputLimits, check_json, parse_json_within_limits

LIMITS = InputLimits(max_body_bytes=1000, max_depth=5, max_string_length=20, max_bundle_entries=3)


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (_nested(6), "nesting"),
        ({"resourceType": "Patient", "name": [{"text": "x" * 21}]}, "string"),
        ({"resourceType": "Bundle", "entry": [{}, {}, {}, {}]}, "entries"),
        (
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "Bundle", "entry": [1, 2, 3, 4]}}],
            },
            "entries",
        ),
        ({"k" * 21: 1}, "property name"),
    ],
)
def test_json_over_a_limit_is_too_large(value, fragment):
    with pytest.raises(OperationOutcomeError, match=fragment) as exc:
        check_json(value, LIMITS)
    assert exc.value.failure is Failure.TOO_LARGE
    assert exc.value.to_fhir()["issue"][0]["code"] == "too-costly"


def test_json_within_limits_passes():
    check_json({"resourceType": "Bundle", "entry": [{"resource": {"id": "abc"}}] * 3}, LIMITS)
    check_json(_nested(5), LIMITS)


def test_parse_rejects_bad_json_as_invalid_and_deep_json_as_too_large():
    with pytest.raises(OperationOutcomeError) as bad:
        parse_json_within_limits(b"{not json", LIMITS)
    assert bad.value.failure is Failure.INVALID
    with pytest.raises(OperationOutcomeError) as deep:
        parse_json_within_limits(b"[" * 2000 + b"]" * 2000, InputLimits())
    assert deep.value.failure is Failure.TOO_LARGE
    with pytest.raises(OperationOutcomeError) as big:
        parse_json_within_limits(b" " * 1001, LIMITS)
    assert big.value.failure is Failure.TOO_LARGE
