"""Slicing rules, primitives and references against a small synthetic profile (over the R4 core package)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from igs.manifest import load_manifest
from igs.registry import load_registry
from igs.validator import Validator

pytestmark = pytest.mark.igs

PROFILE = "http://example.org/StructureDefinition/test-basic"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
LINK = "http://hl7.org/fhir/StructureDefinition/narrativeLink"


def _el(eid: str, lo: int, hi: str, *types: dict[str, Any], **extra: Any) -> dict[str, Any]:
    path = ".".join(part.split(":")[0] for part in eid.split("."))
    out: dict[str, Any] = {
        "id": eid,
        "path": path,
        "min": lo,
        "max": hi,
        "base": {"path": path, "min": 0, "max": hi},
    }
    if types:
        out["type"] = list(types)
    out.update(extra)
    return out


def _profile() -> dict[str, Any]:
    ext = {"code": "Extension"}
    return {
        "resourceType": "StructureDefinition",
        "url": PROFILE,
        "version": "1.0.0",
        "name": "TestBasic",
        "status": "draft",
        "kind": "resource",
        "abstract": False,
        "type": "Basic",
        "derivation": "constraint",
        "snapshot": {
            "element": [
                _el("Basic", 0, "*"),
                _el("Basic.id", 0, "1", {"code": "http://hl7.org/fhirpath/System.String"}),
                _el("Basic.meta", 0, "1", {"code": "Meta"}),
                _el(
                    "Basic.extension",
                    0,
                    "*",
                    ext,
                    slicing={
                        "discriminator": [{"type": "value", "path": "url"}],
                        "rules": "closed",
                        "ordered": True,
                    },
                ),
                _el("Basic.extension:dar", 1, "1", {"code": "Extension", "profile": [DAR]}, sliceName="dar"),
                _el(
                    "Basic.extension:link", 0, "1", {"code": "Extension", "profile": [LINK]}, sliceName="link"
                ),
                _el(
                    "Basic.identifier",
                    0,
                    "*",
                    {"code": "Identifier"},
                    slicing={"discriminator": [{"type": "exists", "path": "period"}], "rules": "openAtEnd"},
                ),
                _el("Basic.identifier:dated", 0, "1", {"code": "Identifier"}, sliceName="dated"),
                _el("Basic.identifier:dated.value", 0, "1", {"code": "string"}),
                _el("Basic.identifier:dated.period", 1, "1", {"code": "Period"}),
                _el("Basic.code", 1, "1", {"code": "CodeableConcept"}),
                _el("Basic.created", 0, "1", {"code": "date"}),
                _el(
                    "Basic.subject",
                    0,
                    "1",
                    {
                        "code": "Reference",
                        "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                    },
                ),
            ]
        },
    }


@pytest.fixture(scope="module")
def validator(ig_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Validator:
    folder = tmp_path_factory.mktemp("igs")
    (folder / "core.tgz").symlink_to(ig_dir / "hl7.fhir.r4.core-4.0.1.tgz")
    files = {
        "package.json": {"name": "example.test", "version": "1.0.0"},
        "StructureDefinition-test.json": _profile(),
    }
    with tarfile.open(folder / "test.tgz", "w:gz") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Validator(load_registry(folder, load_manifest("")))


def _basic(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Basic",
        "extension": [
            {"url": DAR, "valueCode": "unknown"},
            {"url": LINK, "valueUrl": "http://example.org/n"},
        ],
        "identifier": [{"value": "a", "period": {"start": "2024-01-01"}}, {"value": "b"}],
        "code": {"text": "test"},
        "created": "2024-01-02",
        "subject": {"reference": "Patient/1"},
    }
    doc.update(changes)
    return doc


def _errors(validator: Validator, doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (i.expression[0], i.diagnostics) for i in validator.validate(doc, PROFILE) if i.severity == "error"
    ]


def test_conformant_instance(validator: Validator) -> None:
    assert _errors(validator, _basic()) == []


def test_ordered_slicing(validator: Validator) -> None:
    doc = _basic(
        extension=[{"url": LINK, "valueUrl": "http://example.org/n"}, {"url": DAR, "valueCode": "unknown"}]
    )
    assert ("Basic.extension[1]", "Slice 'dar' is out of order") in _errors(validator, doc)


def test_closed_slicing(validator: Validator) -> None:
    doc = _basic(
        extension=[{"url": DAR, "valueCode": "unknown"}, {"url": "http://example.org/x", "valueString": "y"}]
    )
    assert any(
        p == "Basic.extension[1]" and "does not match any known slice" in m
        for p, m in _errors(validator, doc)
    )


def test_open_at_end_slicing_and_exists_discriminator(validator: Validator) -> None:
    doc = _basic(identifier=[{"value": "b"}, {"value": "a", "period": {"start": "2024-01-01"}}])
    assert ("Basic.identifier[1]", "Unsliced items must come after all sliced items") in _errors(
        validator, doc
    )


def test_slice_minimum(validator: Validator) -> None:
    doc = _basic(extension=[{"url": LINK, "valueUrl": "http://example.org/n"}])
    assert ("Basic.extension", "Slice 'dar': minimum required = 1, but only found 0") in _errors(
        validator, doc
    )


def test_primitives_and_choice_types(validator: Validator) -> None:
    errors = _errors(validator, _basic(created=20240102))
    assert ("Basic.created", "Expected a JSON str for a FHIR date") in errors
    errors = _errors(validator, _basic(created="2024-13-01"))
    assert ("Basic.created", "Invalid date value '2024-13-01'") in errors
    wrong_type = {"url": DAR, "valueString": "x"}
    assert ("Basic.extension[0].valueString", "Unknown element 'valueString'") in _errors(
        validator, _basic(extension=[wrong_type])
    )
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueString": "a",
        "valueBoolean": True,
    }
    errors = [
        (i.expression[0], i.diagnostics) for i in validator.validate(observation) if i.severity == "error"
    ]
    assert ("Observation.valueBoolean", "Only one of valueString, valueBoolean is allowed") in errors


def test_reference_target_type(validator: Validator) -> None:
    errors = _errors(validator, _basic(subject={"reference": "Practitioner/9"}))
    assert ("Basic.subject.reference", "Reference to a Practitioner, but it must point to Patient") in errors


def test_unknown_element_and_array_shape(validator: Validator) -> None:
    errors = _errors(validator, _basic(bogus=1, code=[{"text": "x"}]))
    assert ("Basic.bogus", "Unknown element 'bogus'") in errors
    assert ("Basic.code", "code must not be an array") in errors


def test_native_bundle_invariants(validator: Validator) -> None:
    entry = {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Basic", "code": {"text": "x"}}}
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{**entry, "request": {"method": "GET", "url": "Basic"}}],
    }
    errors = [
        (i.expression[0], i.diagnostics[:5]) for i in validator.validate(collection) if i.severity == "error"
    ]
    assert ("Bundle.entry[0]", "bdl-3") in errors
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    errors = [
        (i.expression[0], i.diagnostics[:5]) for i in validator.validate(transaction) if i.severity == "error"
    ]
    assert ("Bundle.entry[0]", "bdl-3") in errors


def test_more_native_bundle_invariants(validator: Validator) -> None:
    basic = {"resourceType": "Basic", "code": {"text": "x"}}
    document = {
        "resourceType": "Bundle",
        "type": "document",
        "total": 1,
        "entry": [
            {"fullUrl": "http://example.org/Basic/1/_history/2", "resource": basic},
            {"fullUrl": "urn:uuid:2"},
        ],
    }
    keys = {
        (i.expression[0], i.diagnostics[:6]) for i in validator.validate(document) if i.severity == "error"
    }
    assert {
        ("Bundle", "bdl-1:"),
        ("Bundle.entry[0]", "bdl-8:"),
        ("Bundle.entry[1]", "bdl-5:"),
        ("Bundle", "bdl-9:"),
        ("Bundle", "bdl-10"),
        ("Bundle", "bdl-11"),
    } <= keys


def test_explicit_unknown_profile_is_an_error_declared_one_a_warning(validator: Validator) -> None:
    basic: dict[str, Any] = {"resourceType": "Basic", "code": {"text": "x"}}
    explicit = validator.validate(basic, "http://example.org/StructureDefinition/missing")
    assert [(i.severity, i.code) for i in explicit] == [("error", "not-found")]
    basic["meta"] = {"profile": ["http://example.org/StructureDefinition/missing"]}
    assert [(i.severity, i.code) for i in validator.validate(basic)] == [("warning", "not-found")]


def test_contained_references_resolve_in_the_container(validator: Validator) -> None:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "contained": [
            {"resourceType": "Organization", "id": "org", "name": "Payer"},
            {"resourceType": "PractitionerRole", "id": "role", "organization": {"reference": "#org"}},
        ],
        "performer": [{"reference": "#role"}],
    }
    assert [i for i in validator.validate(observation) if i.severity == "error"] == []
    observation["contained"][1]["organization"] = {"reference": "#nowhere"}
    errors = [
        (i.expression[0], i.diagnostics) for i in validator.validate(observation) if i.severity == "error"
    ]
    assert errors == [
        ("Observation.contained[1].organization", "ref-1: contained resource #nowhere not found")
    ]
