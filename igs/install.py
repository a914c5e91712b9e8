"""Install the manifest's IG packages into a package folder, from a local folder or the FHIR package registry.

Registry protocol: https://registry.fhir.org (NPM-style: ``GET {registry}/{name}/{version}`` returns the
``.tgz``). Archives are checked against the manifest's sha256 when it records one.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from igs.manifest import Manifest, ManifestEntry
from igs.packages import open_package

PACKAGE_REGISTRY = "https://packages.fhir.org"

# Downloads are injected (``fetch(url) -> bytes``) so this module needs no HTTP client and tests stay offline.
Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class InstallResult:
    package: str  # "name#version"
    status: str  # installed | present | missing | checksum-mismatch | failed
    detail: str = ""


def target_file(target: Path, entry: ManifestEntry) -> Path:
    return target / f"{entry.name}-{entry.version}.tgz"


def install(
    manifest: Manifest,
    target: Path,
    *,
    source: Path | None = None,
    fetch: Fetch | None = None,
    registry_url: str = PACKAGE_REGISTRY,
) -> list[InstallResult]:
    """Put every manifest package into ``target`` (as ``name-version.tgz``); report what happened to each."""
    target.mkdir(parents=True, exist_ok=True)
    present = _packages_in(target)
    offered = _packages_in(source) if source is not None else {}
    results: list[InstallResult] = []
    for entry in manifest.packages:
        if entry.key in present:
            results.append(InstallResult(entry.key, "present", str(present[entry.key])))
            continue
        if entry.key in offered:
            data = offered[entry.key].read_bytes()
            origin = str(offered[entry.key])
        elif fetch is not None:
            url = f"{registry_url}/{entry.name}/{entry.version}"
            try:
                data = fetch(url)
            except Exception as exc:  # noqa: BLE001 - any transport failure is reported per package
                results.append(InstallResult(entry.key, "failed", f"{url}: {exc}"))
                continue
            origin = url
        else:
            results.append(InstallResult(entry.key, "missing", "not in the source folder"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if entry.sha256 and digest != entry.sha256:
            results.append(InstallResult(entry.key, "checksum-mismatch", f"{origin}: sha256 {digest}"))
            continue
        out = target_file(target, entry)
        tmp = out.with_suffix(".part")
        tmp.write_bytes(data)
        shutil.move(tmp, out)
        results.append(InstallResult(entry.key, "installed", origin))
    return results


def _packages_in(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.tgz")):
        try:
            package = open_package(path)
        except Exception:  # noqa: BLE001, S112 - unreadable archives are simply not offered
            continue
        found.setdefault(package.key, path)
    return found
