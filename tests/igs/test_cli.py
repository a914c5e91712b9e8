from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from igs.cli import main, validate_main
from igs.install import install
from igs.manifest import load_manifest
from igs.registry import Registry


def _tgz(path: Path, name: str, version: str) -> bytes:
    data = json.dumps({"name": name, "version": version}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def test_install_from_folder_checks_sha256(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    good = _tgz(source / "a.tgz", "ex.a", "1.0.0")
    _tgz(source / "b.tgz", "ex.b", "1.0.0")
    digest = hashlib.sha256(good).hexdigest()
    manifest = load_manifest(
        f'[[package]]\nname = "ex.a"\nversion = "1.0.0"\nsha256 = "{digest}"\nwhy = "a"\n'
        '[[package]]\nname = "ex.b"\nversion = "1.0.0"\nsha256 = "00"\nwhy = "b"\n'
        '[[package]]\nname = "ex.c"\nversion = "1.0.0"\nwhy = "c"\n'
    )
    results = {r.package: r.status for r in install(manifest, target, source=source)}
    assert results == {"ex.a#1.0.0": "installed", "ex.b#1.0.0": "checksum-mismatch", "ex.c#1.0.0": "missing"}
    assert (target / "ex.a-1.0.0.tgz").read_bytes() == good
    again = {r.package: r.status for r in install(manifest, target, source=source)}
    assert again["ex.a#1.0.0"] == "present"


def test_install_fetches_from_the_registry_when_online(tmp_path: Path) -> None:
    payload = _tgz(tmp_path / "x.tgz", "ex.a", "1.0.0")
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return payload

    manifest = load_manifest('[[package]]\nname = "ex.a"\nversion = "1.0.0"\nwhy = "a"\n')
    results = install(manifest, tmp_path / "dst", fetch=fetch, registry_url="https://registry.example")
    assert [r.status for r in results] == ["installed"]
    assert asked == ["https://registry.example/ex.a/1.0.0"]


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bogus"]) == 2
    assert validate_main([]) == 2
    assert validate_main(["/nonexistent/file.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_igs_list_names_packages_and_warnings(tmp_path: Path) -> None:
    _tgz(tmp_path / "a.tgz", "hl7.fhir.r4.core", "4.0.1")
    out = io.StringIO()
    assert main(["list", "--ig-path", str(tmp_path)], out) == 0
    text = out.getvalue()
    assert "hl7.fhir.r4.core#4.0.1" in text
    assert "hl7.fhir.us.davinci-pas#2.2.1 is not installed" in text


@pytest.mark.igs
def test_validate_exit_codes(registry: Registry, ig_dir: Path, tmp_path: Path) -> None:
    package = registry.find("hl7.fhir.us.davinci-pas", "2.2.1")
    assert package is not None
    bundle = dict(package.examples())["example/Bundle-ReferralAuthorizationBundleExample.json"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bundle))
    args = ["--ig-path", str(ig_dir), "--package", "hl7.fhir.us.davinci-pas#2.2.1"]
    assert validate_main([str(good), *args], io.StringIO()) == 0
    bundle["entry"][0]["resource"]["use"] = "claim"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bundle))
    out = io.StringIO()
    assert validate_main([str(bad), "--json", *args], out) == 1
    outcome = json.loads(out.getvalue())
    assert outcome["resourceType"] == "OperationOutcome"
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert errors and errors[0]["expression"] == ["Bundle.entry[0].resource.use"]


@pytest.mark.igs
def test_install_offline_from_folder(ig_dir: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(["install", "--from", str(ig_dir), "--to", str(tmp_path), "--offline"], out)
    statuses = dict(line.split()[:2][::-1] for line in out.getvalue().splitlines())
    assert statuses["hl7.fhir.us.davinci-pas#2.2.1"] == "installed"
    assert statuses["hl7.fhir.us.davinci-dtr#2.2.0"] == "missing"
    assert code == 0
