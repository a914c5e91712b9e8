"""US Core 3.1.1, 6.1.0 and 7.0.0 resources are accepted as prefetch and as orders (CRD conf-2)."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest

from cds_hooks.urls import SID_PAYER_ID

_EXAMPLES: dict[str, dict[str, Any]] = {}


def _us_core(kit: ModuleType) -> dict[str, dict[str, Any]]:
    if not _EXAMPLES:
        from igs import load_registry

        for package in load_registry(kit.ig_dir()).packages:
            if package.name == "hl7.fhir.us.core":
                _EXAMPLES[package.version] = dict(package.examples())
    return _EXAMPLES


@pytest.mark.igs
@pytest.mark.parametrize("version", ["3.1.1", "6.1.0", "7.0.0"])
def test_us_core_examples_drive_decisions(crd: Any, kit: ModuleType, version: str) -> None:
    examples = _us_core(kit)[version]
    child = examples["example/Patient-child-example.json"]
    adult = examples["example/Patient-example.json"]
    order = copy.deepcopy(examples["example/MedicationRequest-self-tylenol.json"])
    # Re-coded as a CPAP device order for the same patient: the pediatric case depends on birthDate.
    cpap = kit.device_request("dr1", "E0601", subject=order["subject"])
    coverage = copy.deepcopy(examples.get("example/Coverage-coverage-example.json", kit.COVERAGE))
    coverage["payor"] = [{"identifier": {"system": SID_PAYER_ID, "value": "PGDEMO"}}]
    coverage["status"] = "active"
    decisions = {}
    for name, patient in (("child", child), ("adult", adult)):
        request = kit.order_sign(cpap, order)
        request["prefetch"] = {"patient": patient, "coverage": kit.bundle(coverage)}
        response = crd.call("order-sign-crd", request)
        assert response.status_code == 200, response.text
        actions = {a["resource"]["resourceType"]: a["resource"] for a in response.json()["systemActions"]}
        decisions[name] = kit.coverage_information(actions["DeviceRequest"])["covered"]
        assert kit.coverage_information(actions["MedicationRequest"])["covered"] == ["covered"]  # unlisted
    assert decisions == {"child": ["not-covered"], "adult": ["covered"]}
