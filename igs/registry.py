"""The IG package registry: which packages are loaded, and canonical-URL resolution across them.

Conformance resources are indexed by ``canonical|version`` and by canonical, several package versions side
by side (https://hl7.org/fhir/R4/references.html#canonical). When a canonical exists in several packages and
the caller names the package it is working in, that package and its own dependencies win; otherwise the
highest version does.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from igs.manifest import Manifest, load_manifest
from igs.outcome import Failure, Issue, OperationOutcomeError
from igs.packages import IndexEntry, Package, open_package

IG_PATH_ENV = "PRIORGATE_IG_PATH"
DEFAULT_CACHE = Path.home() / ".fhir" / "packages"


@dataclass(frozen=True)
class PackageWarning:
    """A structured startup warning: a package that is missing, substituted or unreadable."""

    package: str  # "name#version"
    message: str
    required_by: str | None = None
    severity: Literal["warning", "information"] = "warning"

    def to_issue(self) -> Issue:
        return Issue(diagnostics=self.message, code="not-found", severity=self.severity)


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key for package and resource versions: numeric release, then pre-releases before the release."""
    release, _, tag = version.partition("-")
    numbers = tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.+]", release))
    return numbers, 0 if tag else 1, tag


class Registry:
    """Packages found under one folder, indexed lazily on the first canonical lookup."""

    def __init__(self, packages: Iterable[Package], manifest: Manifest, warnings: Iterable[PackageWarning]):
        self.manifest = manifest
        self.packages: tuple[Package, ...] = tuple(
            sorted(packages, key=lambda p: (p.name, version_key(p.version)))
        )
        self.warnings: list[PackageWarning] = list(warnings)
        self._by_url: dict[str, list[tuple[Package, IndexEntry]]] | None = None
        self._closure: dict[str, tuple[Package, ...]] = {}
        self._check_manifest()
        self._check_dependencies()

    # -- packages ----------------------------------------------------------------------------------------

    def find(self, name: str, version: str | None = None) -> Package | None:
        """The package ``name#version`` (``version`` None or "current": the highest loaded)."""
        same = [p for p in self.packages if p.name == name]
        if not same:
            return None
        if version is None or version in ("current", "latest", "dev"):
            return same[-1]
        for package in same:
            if package.version == version:
                return package
        return None

    def require(self, name: str, version: str | None = None) -> Package:
        """The package, or an UNAVAILABLE OperationOutcome naming it (for features that need it)."""
        package = self.find(name, version)
        if package is None:
            key = f"{name}#{version}" if version else name
            raise OperationOutcomeError.of(
                Failure.UNAVAILABLE,
                f"IG package {key} is not installed; install it with `priorgate igs install`",
                code="not-found",
            )
        return package

    def dependency(
        self, name: str, version: str, dependent: str | None = None
    ) -> tuple[Package | None, bool]:
        """Resolve a declared dependency to (package, exact?), else the highest version of that name."""
        real_name, real_version = self.manifest.canonical_dependency(name, version, dependent)
        exact = self.find(real_name, real_version)
        if exact is not None:
            return exact, real_version == version and real_name == name
        return self.find(real_name), False

    def closure(self, package: Package) -> tuple[Package, ...]:
        """The package followed by its dependencies, breadth first (resolution order within that context)."""
        cached = self._closure.get(package.key)
        if cached is not None:
            return cached
        order: list[Package] = [package]
        seen = {package.key}
        index = 0
        while index < len(order):
            for name, version in order[index].dependencies.items():
                dep, _ = self.dependency(name, version, order[index].key)
                if dep is not None and dep.key not in seen:
                    seen.add(dep.key)
                    order.append(dep)
            index += 1
        result = self._closure[package.key] = tuple(order)
        return result

    def _check_manifest(self) -> None:
        for entry in self.manifest.packages:
            if self.find(entry.name, entry.version) is None:
                note = "expected but not installed" if entry.optional else "not installed"
                self.warnings.append(
                    PackageWarning(entry.key, f"IG package {entry.key} is {note}: {entry.why}")
                )

    def _check_dependencies(self) -> None:
        reported: set[str] = set()
        for package in self.packages:
            for name, version in package.dependencies.items():
                dep, exact = self.dependency(name, version, package.key)
                key = f"{name}#{version}"
                if dep is None and key not in reported:
                    reported.add(key)
                    self.warnings.append(
                        PackageWarning(
                            key,
                            f"IG package {key} (needed by {package.key}) is not installed; "
                            "resources from it cannot be resolved",
                            required_by=package.key,
                        )
                    )
                elif dep is not None and not exact and key not in reported:
                    reported.add(key)
                    self.warnings.append(
                        PackageWarning(
                            key,
                            f"IG package {key} (needed by {package.key}) is not installed; using {dep.key}",
                            required_by=package.key,
                            severity="information",
                        )
                    )

    # -- canonical resolution ----------------------------------------------------------------------------

    def _index(self) -> dict[str, list[tuple[Package, IndexEntry]]]:
        if self._by_url is None:
            # zlib releases the GIL: decompress the archives side by side (each package in one thread).
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                indexes = list(pool.map(lambda package: package.index(), self.packages))
            by_url: dict[str, list[tuple[Package, IndexEntry]]] = {}
            for package, index in zip(self.packages, indexes, strict=True):
                for entry in index:
                    if entry.url:
                        by_url.setdefault(entry.url, []).append((package, entry))
            self._by_url = by_url
        return self._by_url

    def candidates(self, canonical: str) -> list[tuple[Package, IndexEntry]]:
        """Every (package, entry) declaring this canonical URL (without ``|version``)."""
        return list(self._index().get(canonical, ()))

    def resolve(
        self, canonical: str, version: str | None = None, context: Package | None = None
    ) -> dict[str, Any] | None:
        """The conformance resource for ``canonical`` (may carry ``|version``), or None when not loaded."""
        found = self.resolve_entry(canonical, version, context)
        return None if found is None else found[0].read(found[1].filename)

    def resolve_entry(
        self, canonical: str, version: str | None = None, context: Package | None = None
    ) -> tuple[Package, IndexEntry] | None:
        if "|" in canonical:
            canonical, version = canonical.split("|", 1)
        found = self._index().get(canonical)
        if not found:
            return None
        if version:
            matching = [c for c in found if (c[1].version or c[0].version) == version]
            if not matching:
                matching = [c for c in found if (c[1].version or c[0].version).startswith(version + ".")]
            if not matching:
                return None
            found = matching
        if context is not None and len(found) > 1:
            for package in self.closure(context):
                for candidate in found:
                    if candidate[0] is package:
                        return candidate
        return max(found, key=lambda c: (version_key(c[1].version or ""), version_key(c[0].version)))

    def describe(self) -> list[dict[str, str]]:
        """One row per loaded package (for ``priorgate igs list``)."""
        supported = {e.key for e in self.manifest.packages}
        return [
            {
                "name": p.name,
                "version": p.version,
                "source": str(p.source),
                "supported": "yes" if p.key in supported else "dependency",
            }
            for p in self.packages
        ]


def discover(folder: Path) -> tuple[list[Package], list[PackageWarning]]:
    """Find packages in ``folder``: ``*.tgz`` files and ``<name>#<version>/package/`` cache folders."""
    packages: list[Package] = []
    warnings: list[PackageWarning] = []
    seen: set[str] = set()
    if not folder.is_dir():
        return packages, [PackageWarning(str(folder), f"IG package folder {folder} does not exist")]
    for entry in sorted(folder.iterdir()):
        is_tgz = entry.is_file() and entry.name.endswith(".tgz")
        is_cache = entry.is_dir() and (entry / "package" / "package.json").is_file()
        if not (is_tgz or is_cache):
            continue
        try:
            package = open_package(entry)
        except (OSError, ValueError, zlib.error) as exc:
            warnings.append(PackageWarning(entry.name, f"IG package file {entry.name} is unreadable: {exc}"))
            continue
        if package.key in seen:
            continue
        seen.add(package.key)
        packages.append(package)
    return packages, warnings


def load_registry(path: str | Path | None = None, manifest: Manifest | None = None) -> Registry:
    """Open the packages under ``path`` (default: ``$PRIORGATE_IG_PATH``, else ``~/.fhir/packages``).

    Cheap: reads each package's ``package.json`` only. Missing packages become ``Registry.warnings``.
    """
    if path is None:
        path = os.environ.get(IG_PATH_ENV) or DEFAULT_CACHE
    packages, warnings = discover(Path(path))
    return Registry(packages, manifest or load_manifest(), warnings)
