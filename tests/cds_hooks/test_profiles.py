"""Returned orders (with coverage information added) validate against the CRD profiles of each version.

Uses the IG's own example request resources, re-coded to demo rules so the extension carries
questionnaires, documentation needs, reasons, details and expiry dates.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest

from cds_hooks.urls import CRD_PROFILE_BASE, EXT_COVERAGE_INFORMATION
from igs.outcome import OperationOutcomeError

ORDER_TYPES = [
    "ServiceRequest",
    "DeviceRequest",
    "MedicationRequest",
    "CommunicationRequest",
    "NutritionOrder",
]
VERSIONS = {"2.0": "2.0.1", "2.2": "2.2.0"}
_CACHE: dict[str, Any] = {}


def _validators(kit: ModuleType) -> dict[str, Any]:
    if not _CACHE:
        from igs import Validator, load_registry

        registry = load_registry(kit.ig_dir())
        for package in registry.packages:
            if package.name == "hl7.fhir.us.davinci-crd":
                examples = dict(package.examples())
                _CACHE[package.version] = (Validator(registry, package=package), examples)
    return _CACHE


def _recode(order: dict[str, Any], kit: ModuleType) -> dict[str, Any]:
    order = copy.deepcopy(order)
    order["extension"] = [e for e in order.get("extension", []) if e.get("url") != EXT_COVERAGE_INFORMATION]
    if not order["extension"]:
        del order["extension"]
    kind = order["resourceType"]
    if kind == "ServiceRequest":
        order["code"] = {"coding": [{"system": kit.CPT, "code": "27447"}]}
        order["locationCode"] = [{"coding": [{"system": kit.POS, "code": "22"}]}]
    elif kind == "DeviceRequest":
        order.pop("codeReference", None)
        order["codeCodeableConcept"] = {"coding": [{"system": kit.HCPCS, "code": "E1390"}]}
    elif kind == "MedicationRequest":
        order.pop("medicationReference", None)
        order["medicationCodeableConcept"] = {"coding": [{"system": kit.HCPCS, "code": "J1745"}]}
    return order


@pytest.mark.igs
@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("kind", ORDER_TYPES)
def test_returned_order_validates_against_its_crd_profile(
    crd: Any, kit: ModuleType, version: str, kind: str
) -> None:
    validator, examples = _validators(kit)[VERSIONS[version]]
    example = next(r for name, r in examples.items() if name.endswith(f"/{kind}-example.json"))
    order = _recode(example, kit)
    profile = f"{CRD_PROFILE_BASE}profile-{kind.lower()}"
    baseline = {i.diagnostics for i in validator.validate(order, profile) if i.severity in ("error", "fatal")}
    response = crd.call("order-sign-crd", kit.order_sign(order, version=version))
    assert response.status_code == 200, response.text
    [action] = response.json()["systemActions"]
    errors = [
        f"{i.expression}: {i.diagnostics}"
        for i in validator.validate(action["resource"], profile)
        if i.severity in ("error", "fatal") and i.diagnostics not in baseline
    ]
    assert errors == []
    assert kit.coverage_information(action["resource"])["coverage-assertion-id"]


@pytest.mark.igs
def test_injected_validator_turns_profile_violations_into_422(
    policies: Any, fhir: Any, keys: Any, kit: ModuleType
) -> None:
    import httpx

    from cds_hooks import CdsServices

    validator, examples = _validators(kit)["2.2.0"]
    client = httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler))
    services = CdsServices(policies, http_client=client, now=lambda: kit.NOW, validator=validator.validate)
    order = _recode(examples["example/ServiceRequest-example.json"], kit)
    result = kit.run(services.call("order-sign-crd", kit.order_sign(order)))
    assert result.response["systemActions"]
    broken = copy.deepcopy(order)
    broken["intent"] = "not-an-intent"
    with pytest.raises(OperationOutcomeError) as err:
        kit.run(services.call("order-sign-crd", kit.order_sign(broken)))
    assert err.value.failure.value == "unprocessable"
    assert "context.draftOrders.entry[0].resource" in err.value.message
