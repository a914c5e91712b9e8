"""Malformed JSON anywhere in a resource yields issues, never an exception (no bad input becomes a 500)."""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import pytest

from igs.packages import Package
from igs.validator import Validator, Visit

pytestmark = pytest.mark.igs

ODD_VALUES: tuple[Any, ...] = (None, 0, -1, 1.5, "", "x", True, [], [None], [1, "a"], {}, {"resourceType": 7})
SITES_PER_EXAMPLE = 3
_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for i, match in enumerate(_STEP.finditer(path)):
        if i > 0:
            steps.append(match.group(1))
        if match.group(2) is not None:
            steps.append(int(match.group(2)))
    return steps


def _replace(doc: Any, steps: list[str | int], value: Any) -> bool:
    for step in steps[:-1]:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        doc[steps[-1]] = value
    except (IndexError, TypeError):
        return False
    return True


def test_odd_values_never_raise(validator: Validator, example: tuple[Package, str, dict[str, Any]]) -> None:
    package, filename, original = example
    visits: list[Visit] = []
    validator.findings(original, visits=visits, package=package)
    paths = sorted({v.path for v in visits if _steps(v.path)})
    rng = random.Random(f"{package.key}/{filename}")
    tried = 0
    for path in rng.sample(paths, min(SITES_PER_EXAMPLE, len(paths))):
        for odd in ODD_VALUES:
            doc = copy.deepcopy(original)
            if _replace(doc, _steps(path), copy.deepcopy(odd)):
                tried += 1
                issues = validator.validate(doc, package=package)
                assert isinstance(issues, list)
    for odd in ODD_VALUES:
        validator.validate(
            {"resourceType": original["resourceType"], "meta": odd, "extension": odd}, package=package
        )
    assert tried > 0


@pytest.mark.parametrize("odd_type", [[], {}, 7])
def test_a_reference_target_with_an_odd_resource_type(validator: Validator, odd_type: object) -> None:
    # Regression: the target's resourceType was looked up in a dict of allowed types, so an array or
    # object there was a TypeError (a 500 on PAS $submit).
    from igs.registry import Registry

    registry: Registry = validator.registry
    package = registry.require("hl7.fhir.us.davinci-pas", "2.2.1")
    from conformance.suites import pas_server

    bundle = pas_server.request_bundle("ODD")  # urn:uuid references: resolved by fullUrl, whatever the type
    (patient,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    patient["resource"]["resourceType"] = odd_type  # the target of Claim.patient
    issues = validator.validate(bundle, package=package)
    assert any(i.severity == "error" for i in issues)
