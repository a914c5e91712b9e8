from __future__ import annotations

from typing import Any

from igs.invariants import Invariants, booleanise


def test_booleanise_only_touches_where_used_as_boolean() -> None:
    assert booleanise("extension.where(url = 'a') implies b.exists()") == (
        "extension.where(url = 'a').exists() implies b.exists()"
    )
    assert booleanise("x.where(a and (b or c)) and y") == "x.where(a and (b or c)).exists() and y"
    assert booleanise("x.where(a).count() > 1 implies y") == "x.where(a).count() > 1 implies y"
    assert booleanise("name.exists()") == "name.exists()"


def test_resolve_uses_the_bundle_resolver() -> None:
    invariants = Invariants()
    target = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    claim: dict[str, Any] = {"resourceType": "Claim", "patient": {"reference": "urn:uuid:1"}}

    def resolver(ref: str) -> dict[str, Any] | None:
        return target if ref == "urn:uuid:1" else None

    expression = "patient.resolve().gender = 'female'"
    assert invariants.holds(expression, claim, "Claim", claim, claim, resolver) is True
    target["gender"] = "male"
    assert invariants.holds(expression, claim, "Claim", claim, claim, resolver) is False


def test_unsupported_functions_are_skipped_and_recorded() -> None:
    invariants = Invariants()
    value = {"code": "x"}
    assert (
        invariants.holds("code.memberOf('http://example.org/vs')", value, "Coding", value, value, None)
        is None
    )
    assert "memberOf" in invariants.skipped["code.memberOf('http://example.org/vs')"]


def test_context_free_results_are_memoised_per_focus() -> None:
    invariants = Invariants()
    period = {"start": "2024-02-01", "end": "2024-01-01"}
    expression = "start.hasValue().not() or end.hasValue().not() or (start <= end)"
    assert invariants.holds(expression, period, "Period", {}, {}, None) is False
    assert invariants.holds(expression, {"start": "2024-01-01"}, "Period", {}, {}, None) is True
    assert invariants.holds(expression, period, "Period", {}, {}, None) is False
