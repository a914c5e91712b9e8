"""The list of IG packages PriorGate supports (``igs/manifest.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ManifestEntry:
    """One supported package: ``name#version``, the published archive's sha256 and why we need it."""

    name: str
    version: str
    sha256: str
    why: str
    optional: bool = False

    @property
    def key(self) -> str:
        return f"{self.name}#{self.version}"


@dataclass(frozen=True)
class Manifest:
    packages: tuple[ManifestEntry, ...]
    aliases: dict[str, str]  # dependency name -> "name" or "name#version" published here
    pins: dict[str, dict[str, str]] = field(default_factory=dict)  # "name#version" -> {dependency: version}

    def canonical_dependency(self, name: str, version: str, dependent: str | None = None) -> tuple[str, str]:
        """Map a dependency as an IG declares it to the package name and version we look for."""
        pinned = self.pins.get(dependent or "", {}).get(name)
        if pinned is not None:
            version = pinned
        target = self.aliases.get(name)
        if target is None:
            return name, version
        if "#" in target:
            alias_name, alias_version = target.split("#", 1)
            return alias_name, alias_version
        return target, version


def load_manifest(text: str | None = None) -> Manifest:
    """Parse the bundled manifest, or ``text`` when given (tests)."""
    if text is None:
        text = resources.files("igs").joinpath("manifest.toml").read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    entries = tuple(
        ManifestEntry(
            name=row["name"],
            version=row["version"],
            sha256=row.get("sha256", ""),
            why=row["why"],
            optional=bool(row.get("optional", False)),
        )
        for row in data.get("package", [])
    )
    return Manifest(entries, dict(data.get("aliases", {})), dict(data.get("pins", {})))
