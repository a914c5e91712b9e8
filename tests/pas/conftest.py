"""Fixtures for the PAS core tests: IG packages read from PRIORGATE_IG_PATH, fakes, a cardinality check.

Two checks of what the builders produce: ``check_profile`` is structural (min cardinalities, fixed and
pattern codes of the snapshot elements outside slices, read straight from the package), and
``validate`` runs the ``igs`` profile validator with the version's PAS package (errors only).
"""

from __future__ import annotations

import itertools
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from server.pas import CoverageFinding, CoverageQuery, PasVersion

PACKAGES = {PasVersion.V2_0_1: "davinci_pas_2.0.1.tgz", PasVersion.V2_2_1: "davinci_pas_2.2.1.tgz"}
NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

Json = dict[str, Any]


def _ig_dir() -> Path | None:
    raw = os.environ.get("PRIORGATE_IG_PATH")
    return Path(raw) if raw and Path(raw).is_dir() else None


@cache
def package_files(version: PasVersion) -> dict[str, Json]:
    """Every JSON file of a PAS package, by file name (``example/Bundle-x.json`` -> ``Bundle-x.json``)."""
    ig_dir = _ig_dir()
    assert ig_dir is not None
    out: dict[str, Json] = {}
    with tarfile.open(ig_dir / PACKAGES[version]) as tgz:
        for member in tgz.getmembers():
            name = member.name
            if not name.endswith(".json") or "/._" in name or "/other/" in name or "/openapi/" in name:
                continue
            handle = tgz.extractfile(member)
            if handle is None:
                continue
            try:
                out[name.rsplit("/", 1)[-1]] = json.loads(handle.read())
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
    return out


def request_examples(version: PasVersion) -> dict[str, Json]:
    return {
        name: data
        for name, data in package_files(version).items()
        if name.startswith("Bundle-")
        and any(
            str(p).split("|")[0].endswith("profile-pas-request-bundle")
            for p in data.get("meta", {}).get("profile", [])
        )
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``request_example`` over every PAS request example of both packages."""
    if "request_example" not in metafunc.fixturenames:
        return
    if _ig_dir() is None:
        metafunc.parametrize("request_example", [pytest.param(None, id="no-igs")])
        return
    params = [
        pytest.param((version, name), id=f"{version.value}-{name}")
        for version in PasVersion
        for name in sorted(request_examples(version))
    ]
    metafunc.parametrize("request_example", params)


@pytest.fixture
def ig() -> Callable[[PasVersion], dict[str, Json]]:
    if _ig_dir() is None:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    return package_files


@pytest.fixture
def example_bundle(request_example: tuple[PasVersion, str] | None) -> tuple[PasVersion, Json]:
    if request_example is None:
        pytest.skip("PRIORGATE_IG_PATH is not set")
    version, name = request_example
    return version, json.loads(json.dumps(package_files(version)[name]))


class FakeIds:
    """Deterministic ids and authorization numbers."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new_id(self) -> str:
        return f"00000000-0000-4000-8000-{next(self._n):012d}"

    def authorization_number(self) -> str:
        return f"PG{next(self._n):06d}"


@pytest.fixture
def ids() -> FakeIds:
    return FakeIds()


def evaluator(mode: str) -> Callable[[CoverageQuery], CoverageFinding]:
    """A fake CRD coverage evaluator: approve, pend (conditional), modify (quantity limit), not-covered."""

    def evaluate(query: CoverageQuery) -> CoverageFinding:
        if mode == "approve":
            return CoverageFinding("covered", "auth-needed", coverage_assertion_id="CA-1")
        if mode == "pend":
            return CoverageFinding("conditional", "auth-needed", reasons=("medical necessity review",))
        if mode == "modify":
            return CoverageFinding(
                "covered", "auth-needed", authorized_quantity=_less(query), reasons=("quantity limit",)
            )
        if mode == "not-covered":
            return CoverageFinding("not-covered", reasons=("excluded benefit",))
        raise AssertionError(mode)

    return evaluate


def _less(query: CoverageQuery) -> Any:
    from decimal import Decimal

    return (query.quantity or Decimal(2)) - 1


# --- structural profile check --------------------------------------------------------------------


def _children(nodes: list[Any], key: str) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if key.endswith("[x]"):
            prefix = key[:-3]
            values = [
                v
                for k, v in node.items()
                if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()
            ]
        else:
            values = [node[key]] if key in node else []
        for value in values:
            out.extend(value if isinstance(value, list) else [value])
    return out


def profile_problems(instance: Json, structure_definition: Json) -> list[str]:
    """Min-cardinality, fixed and pattern violations of an instance against a profile snapshot (no slices)."""
    problems: list[str] = []
    for element in structure_definition["snapshot"]["element"]:
        eid: str = element["id"]
        if ":" in eid or "extension" in eid.split(".")[1:] or "modifierExtension" in eid.split(".")[1:]:
            continue
        parts = eid.split(".")[1:]
        if not parts:
            continue
        parents = [instance]
        for key in parts[:-1]:
            parents = _children(parents, key)
        for parent in parents:
            values = _children([parent], parts[-1])
            if len(values) < element.get("min", 0):
                problems.append(f"{eid}: min {element['min']}, found {len(values)}")
            fixed = element.get("fixedCode") or element.get("patternCode")
            if fixed is not None and values and any(v != fixed for v in values):
                problems.append(f"{eid}: expected {fixed}, found {values}")
            pattern = element.get("patternCodeableConcept")
            if pattern is not None and values:
                want = {(c.get("system"), c.get("code")) for c in pattern.get("coding", [])}
                for v in values:
                    have = {(c.get("system"), c.get("code")) for c in v.get("coding", [])}
                    if not want <= have:
                        problems.append(f"{eid}: expected pattern {want}, found {have}")
    return problems


@pytest.fixture
def check_profile(
    ig: Callable[[PasVersion], dict[str, Json]],
) -> Callable[[Json, PasVersion, str], list[str]]:
    """``check_profile(instance, version, "profile-claimresponse")`` -> problems (empty when fine)."""

    def check(instance: Json, version: PasVersion, profile_id: str) -> list[str]:
        sd = ig(version)[f"StructureDefinition-{profile_id}.json"]
        return profile_problems(instance, sd)

    return check


def iter_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from iter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_references(item)


@cache
def _validator(version: PasVersion) -> Any:
    from igs import Validator, load_registry

    registry = load_registry(_ig_dir())
    package = next(
        p for p in registry.packages if p.name == "hl7.fhir.us.davinci-pas" and p.version == version.value
    )
    return Validator(registry, package=package)


@pytest.fixture
def validate(ig: Any) -> Callable[[Json, PasVersion], list[str]]:
    """``validate(resource, version)`` -> the igs validator's error and fatal issues, rendered."""

    def run(resource: Json, version: PasVersion) -> list[str]:
        issues = _validator(version).validate(resource)
        return [f"{i.expression}: {i.diagnostics}" for i in issues if i.severity in ("error", "fatal")]

    return run


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_evaluator() -> Callable[[str], Callable[[CoverageQuery], CoverageFinding]]:
    return evaluator


@pytest.fixture
def references() -> Callable[[Any], Iterator[str]]:
    return iter_references
