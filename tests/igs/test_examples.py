"""Every example shipped in the CRD, DTR and PAS packages validates without errors (after suppressions)."""

from __future__ import annotations

from typing import Any

import pytest

from igs.packages import Package
from igs.validator import Validator

pytestmark = pytest.mark.igs


def test_example_has_no_errors(validator: Validator, example: tuple[Package, str, dict[str, Any]]) -> None:
    package, _, resource = example
    errors = [i for i in validator.validate(resource, package=package) if i.severity in ("error", "fatal")]
    assert errors == [], "\n".join(f"{i.expression}: {i.diagnostics}" for i in errors)


def test_example_count(example_list: list[tuple[Package, str, dict[str, Any]]]) -> None:
    found = example_list
    by_package: dict[str, int] = {}
    for package, _, _ in found:
        by_package[package.key] = by_package.get(package.key, 0) + 1
    print(f"\nvalidated {len(found)} IG examples: {by_package}")
    assert len(found) >= 150
    assert {p.split("#")[0] for p in by_package} == {
        "hl7.fhir.us.davinci-crd",
        "hl7.fhir.us.davinci-dtr",
        "hl7.fhir.us.davinci-pas",
    }
