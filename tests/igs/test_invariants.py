from __future__ import annotations

from typing import Any

import pytest

from igs.invariants import Invariants, booleanise, native_check, npi_check_digit
from igs.registry import Registry


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


@pytest.mark.igs
def test_native_npi_check_agrees_with_the_us_core_fhirpath(registry: Registry) -> None:
    sd = registry.resolve("http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner|6.1.0")
    assert sd is not None
    expression = next(
        c["expression"]
        for e in sd["snapshot"]["element"]
        for c in e.get("constraint", ())
        if c["key"] == "us-core-17"
    )
    native = native_check("us-core-17", expression)
    assert native is npi_check_digit
    invariants = Invariants(memo_size=0)
    for npi in ("1234567893", "1234567890", "9941339108", "9941339100", "1538269431", "1538269432", "123"):
        identifier = {"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}
        expected = invariants.holds(expression, identifier, "Identifier", {}, {}, None)
        assert native(identifier) is (expected is not False), npi
    assert npi_check_digit({"value": "1234567893"}) and not npi_check_digit({"value": "1234567890"})


def test_memo_is_bounded() -> None:
    invariants = Invariants(memo_size=2)
    for day in ("01", "02", "03", "04"):
        period = {"start": f"2024-01-{day}", "end": "2024-01-02"}
        invariants.holds("start.exists() or end.exists()", period, "Period", {}, {}, None)
    assert len(invariants._results) <= 2  # noqa: SLF001 - the bound is the point of the test


@pytest.mark.igs
def test_exact_decimals_in_a_memoised_node(validator: Any) -> None:
    # Regression: the memo key was orjson.dumps(node), which refuses Decimal: a 500 on any decimal.
    from decimal import Decimal

    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "valueQuantity": {"value": Decimal("72.50"), "unit": "kg"},
    }
    assert [i for i in validator.validate(observation) if i.severity == "error"] == []
    wrong = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": Decimal("0.0")}]}
    assert any("fullUrl" in " ".join(i.expression) for i in validator.validate(wrong))
