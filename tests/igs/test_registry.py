from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from igs.manifest import load_manifest
from igs.outcome import Failure, OperationOutcomeError
from igs.registry import Registry, load_registry, version_key

PAS_CLAIM = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim"


def _write_tgz(path: Path, files: dict[str, object]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _sd(url: str, version: str) -> dict[str, object]:
    return {"resourceType": "StructureDefinition", "id": "x", "url": url, "version": version}


def test_side_by_side_versions_and_context_resolution(tmp_path: Path) -> None:
    url = "http://example.org/StructureDefinition/x"
    _write_tgz(
        tmp_path / "a.tgz",
        {"package.json": {"name": "ex.a", "version": "1.0.0"}, "SD-x.json": _sd(url, "1.0.0")},
    )
    _write_tgz(
        tmp_path / "b.tgz",
        {"package.json": {"name": "ex.a", "version": "2.0.0"}, "SD-x.json": _sd(url, "2.0.0")},
    )
    cache = tmp_path / "ex.c#1.0.0" / "package"
    cache.mkdir(parents=True)
    (cache / "package.json").write_text(
        json.dumps({"name": "ex.c", "version": "1.0.0", "dependencies": {"ex.a": "1.0.0"}})
    )
    registry = load_registry(tmp_path, load_manifest(""))
    assert [p.key for p in registry.packages] == ["ex.a#1.0.0", "ex.a#2.0.0", "ex.c#1.0.0"]
    assert registry.resolve(url) == _sd(url, "2.0.0")
    assert registry.resolve(f"{url}|1.0.0") == _sd(url, "1.0.0")
    context = registry.find("ex.c")
    assert context is not None
    resolved = registry.resolve(url, context=context)
    assert resolved is not None and resolved["version"] == "1.0.0"
    assert registry.resolve("http://example.org/none") is None


def test_missing_packages_are_structured_warnings(tmp_path: Path) -> None:
    manifest = load_manifest('[[package]]\nname = "ex.gone"\nversion = "9.9.9"\nwhy = "testing"\n')
    _write_tgz(
        tmp_path / "a.tgz",
        {"package.json": {"name": "ex.a", "version": "1.0.0", "dependencies": {"ex.dep": "1.0.0"}}},
    )
    registry = load_registry(tmp_path, manifest)
    keys = {w.package for w in registry.warnings}
    assert keys == {"ex.gone#9.9.9", "ex.dep#1.0.0"}
    assert all(w.severity == "warning" for w in registry.warnings)
    with pytest.raises(OperationOutcomeError) as caught:
        registry.require("ex.gone", "9.9.9")
    assert caught.value.failure is Failure.UNAVAILABLE
    assert "ex.gone#9.9.9" in caught.value.message


def test_unreadable_and_absent_folders_do_not_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.tgz").write_bytes(b"not a tarball")
    registry = load_registry(tmp_path, load_manifest(""))
    assert registry.packages == ()
    assert [w.package for w in registry.warnings] == ["broken.tgz"]
    assert load_registry(tmp_path / "nowhere", load_manifest("")).warnings[0].package.endswith("nowhere")


def test_version_key_orders_numerically() -> None:
    assert sorted(["2.10.0", "2.2.0", "2.2.0-preview", "10.0"], key=version_key) == [
        "2.2.0-preview",
        "2.2.0",
        "2.10.0",
        "10.0",
    ]


@pytest.mark.igs
def test_real_packages_resolve_by_version(registry: Registry) -> None:
    for version in ("2.0.1", "2.2.0", "2.2.1"):
        sd = registry.resolve(f"{PAS_CLAIM}|{version}")
        assert sd is not None and sd["version"] == version
    latest = registry.resolve(PAS_CLAIM)
    assert latest is not None and latest["version"] == "2.2.1"
    dtr = [w for w in registry.warnings if w.package == "hl7.fhir.us.davinci-dtr#2.2.0"]
    assert len(dtr) == 1 and dtr[0].severity == "warning"
