"""The CRD 2.2 IG's own example hook requests produce conforming responses.

The examples name "Acme Health Plan" without a payer identifier; the test gives their Coverage the
demo payer's identifier (the only change), and serves the examples' FHIR resources from a test FHIR
server so requests without prefetch are hydrated.
"""

from __future__ import annotations

import base64
import copy
import json
import tarfile
from types import ModuleType
from typing import Any

import pytest

from cds_hooks import CrdVersion, coverage_information_problems, response_problems
from cds_hooks.urls import EXT_COVERAGE_INFORMATION, SID_PAYER_ID

PACKAGE = "davinci_crd_2.2.0-preview.tgz"
REQUESTS = ["CRDServiceRequest", "CRDServiceRequest2", "CRDServiceRequest3", "CRDServiceRequest4"]
PRIMARY = {"appointment-book", "order-dispatch", "order-sign"}
IG_TOKEN = "some-opaque-fhir-access-token"


def _package(kit: ModuleType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tarfile.open(kit.ig_dir() / PACKAGE) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name.startswith("._"):
                continue
            if name.startswith("Binary-CRDServiceRequest") or "/example/" in member.name:
                handle = tar.extractfile(member)
                assert handle is not None
                out[name] = json.loads(handle.read())
    return out


def _ours(coverage: dict[str, Any]) -> dict[str, Any]:
    coverage = copy.deepcopy(coverage)
    for payor in coverage.get("payor", []):
        payor["identifier"] = {"system": SID_PAYER_ID, "value": "PGDEMO"}
    return coverage


@pytest.fixture(scope="module")
def package(kit: ModuleType) -> dict[str, Any]:
    return _package(kit)


@pytest.mark.igs
@pytest.mark.parametrize("name", REQUESTS)
def test_ig_example_request_gets_a_conforming_response(
    crd: Any, kit: ModuleType, package: dict[str, Any], name: str
) -> None:
    request = json.loads(base64.b64decode(package[f"Binary-{name}.json"]["data"]))
    reference = json.loads(base64.b64decode(package["Binary-CRDServiceRequest.json"]["data"]))
    # The EHR behind the examples: patient 123, its coverage, and the dispatched medication orders.
    crd.fhir.token = IG_TOKEN
    crd.fhir.add(reference["prefetch"]["patient"], reference["prefetch"]["encounter"])
    crd.fhir.add(*[_ours(e["resource"]) for e in reference["prefetch"]["coverage"]["entry"]])
    for rid in ("1111", "2222"):
        crd.fhir.add(copy.deepcopy(package["MedicationRequest-example.json"]) | {"id": rid})
    if request.get("prefetch", {}).get("coverage"):
        for entry in request["prefetch"]["coverage"]["entry"]:
            entry["resource"] = _ours(entry["resource"])
    hook = request["hook"]
    response = crd.call(f"{hook}-crd", request)
    assert response.status_code == 200, response.text
    body = response.json()
    # Without davinci-crd.requestedVersion the client predates negotiation: answered as CRD 2.0.
    version = CrdVersion(request.get("extension", {}).get("davinci-crd.requestedVersion", "2.0"))
    assert response_problems(body, version, primary=hook in PRIMARY) == []
    enabled = request.get("extension", {}).get("davinci-crd.configuration", {}).get("coverage-info", True)
    if hook in PRIMARY and enabled:
        assert body["systemActions"], "coverage information for each in-scope order"
    validator = _validator(kit)
    originals = {f"{r['resourceType']}/{r.get('id')}": r for r in _request_resources(request, crd)}
    for action in body.get("systemActions", []):
        resource = action["resource"]
        [ext] = [e for e in resource["extension"] if e["url"] == EXT_COVERAGE_INFORMATION]
        assert coverage_information_problems(ext, version) == []
        profile = _profile(resource)
        original = originals[f"{resource['resourceType']}/{resource.get('id')}"]
        before = {
            i.diagnostics for i in validator.validate(original, profile) if i.severity in ("error", "fatal")
        }
        after = [
            i.diagnostics for i in validator.validate(resource, profile) if i.severity in ("error", "fatal")
        ]
        assert [d for d in after if d not in before] == []


_VALIDATOR: dict[str, Any] = {}


def _validator(kit: ModuleType) -> Any:
    if not _VALIDATOR:
        from igs import Validator, load_registry

        registry = load_registry(kit.ig_dir())
        [package] = [
            p
            for p in registry.packages
            if p.name == "hl7.fhir.us.davinci-crd" and p.version.startswith("2.2")
        ]
        _VALIDATOR["v"] = Validator(registry, package=package)
    return _VALIDATOR["v"]


def _profile(resource: dict[str, Any]) -> str:
    base = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
    if resource["resourceType"] == "Appointment":
        return base + (
            "profile-appointment-with-order" if resource.get("basedOn") else "profile-appointment-no-order"
        )
    return base + f"profile-{resource['resourceType'].lower()}"


def _request_resources(request: dict[str, Any], crd: Any) -> list[dict[str, Any]]:
    from cds_hooks.prefetch import walk_resources

    found = list(walk_resources(list(request["context"].values())))
    found += list(walk_resources(list((request.get("prefetch") or {}).values())))
    return found + list(crd.fhir.resources.values())
