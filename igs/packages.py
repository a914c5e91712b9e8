"""One FHIR NPM package, read lazily from a ``.tgz`` or from the FHIR package cache layout.

Spec: https://confluence.hl7.org/display/FHIR/NPM+Package+Specification (``package/package.json``,
``package/.index.json`` with ``index-version`` 2, examples under ``package/example/``).

Opening a package reads only ``package.json``. The file list and ``.index.json`` are read on first use; a
resource's JSON is parsed only when asked for, then kept.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_PREFIX = "package/"


@dataclass(frozen=True)
class IndexEntry:
    """One row of ``.index.json``: enough to find a conformance resource without parsing it."""

    filename: str  # relative to ``package/``
    resource_type: str
    id: str
    url: str | None
    version: str | None


class Package:
    """A package's identity plus lazy access to its files."""

    def __init__(self, source: Path, manifest: dict[str, Any]) -> None:
        self.source = source
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.canonical: str | None = manifest.get("canonical")
        self.dependencies: dict[str, str] = dict(manifest.get("dependencies") or {})
        self._files: dict[str, bytes] | None = None
        self._index: tuple[IndexEntry, ...] | None = None
        self._parsed: dict[str, dict[str, Any]] = {}

    @property
    def key(self) -> str:
        return f"{self.name}#{self.version}"

    def __repr__(self) -> str:
        return f"Package({self.key})"

    # -- files -------------------------------------------------------------------------------------------

    def _load_files(self) -> dict[str, bytes]:
        if self._files is None:
            self._files = _read_tgz(self.source) if self.source.is_file() else _read_dir(self.source)
        return self._files

    def filenames(self) -> list[str]:
        return sorted(self._load_files())

    def read(self, filename: str) -> dict[str, Any]:
        """The parsed JSON of ``package/<filename>`` (parsed once, then cached: do not mutate it)."""
        cached = self._parsed.get(filename)
        if cached is None:
            data = _parse_json(self._load_files()[filename])
            if not isinstance(data, dict):
                raise ValueError(f"{self.key}: {filename} is not a JSON object")
            cached = self._parsed[filename] = data
        return cached

    def index(self) -> tuple[IndexEntry, ...]:
        """The package's ``.index.json`` rows (built from the files themselves when it is absent)."""
        if self._index is None:
            files = self._load_files()
            rows: list[IndexEntry] = []
            if ".index.json" in files:
                for row in orjson.loads(files[".index.json"]).get("files", []):
                    rows.append(
                        IndexEntry(
                            filename=row["filename"],
                            resource_type=row.get("resourceType", ""),
                            id=row.get("id", ""),
                            url=row.get("url"),
                            version=row.get("version"),
                        )
                    )
            else:
                for name in files:
                    if "/" in name or not name.endswith(".json") or name == "package.json":
                        continue
                    try:
                        res = self.read(name)
                    except (ValueError, orjson.JSONDecodeError):
                        continue
                    rows.append(
                        IndexEntry(name, res.get("resourceType", ""), res.get("id", ""), res.get("url"), None)
                    )
            self._index = tuple(rows)
        return self._index

    def examples(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(filename, resource)`` for every JSON example under ``package/example/`` (fresh copies)."""
        for name in self.filenames():
            if name.startswith("example/") and name.endswith(".json") and not name.endswith("index.json"):
                yield name, _parse_json(self._load_files()[name])


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # A few published files carry a byte-order mark or another Unicode encoding.
        for encoding in ("utf-8-sig", "utf-16"):
            try:
                return orjson.loads(raw.decode(encoding))
            except (UnicodeDecodeError, orjson.JSONDecodeError):
                continue
        raise


def open_package(source: Path) -> Package:
    """Read a package's ``package.json`` from a ``.tgz`` or a ``<name>#<version>`` cache folder."""
    if source.is_file():
        manifest = _tgz_manifest(source)
    else:
        manifest = orjson.loads((source / "package" / "package.json").read_bytes())
    if not isinstance(manifest, dict) or "name" not in manifest or "version" not in manifest:
        raise ValueError(f"{source}: package.json lacks name or version")
    return Package(source, manifest)


def _tgz_manifest(path: Path) -> Any:
    # Streaming read: package.json is normally the first member, so this stops early.
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            if member.name.lstrip("./") == "package/package.json":
                handle = tar.extractfile(member)
                if handle is not None:
                    return orjson.loads(handle.read())
    raise ValueError(f"{path}: no package/package.json")


def _read_tgz(path: Path) -> dict[str, bytes]:
    raw = gzip.decompress(path.read_bytes())
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for member in tar.getmembers():
            name = member.name.lstrip("./")
            if not member.isfile() or not name.startswith(_PREFIX) or _is_resource_fork(name):
                continue
            out[name[len(_PREFIX) :]] = raw[member.offset_data : member.offset_data + member.size]
    return out


def _read_dir(folder: Path) -> dict[str, bytes]:
    root = folder / "package"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix == ".json" and not _is_resource_fork(p.name)
    }


def _is_resource_fork(name: str) -> bool:
    # macOS archivers add AppleDouble "._name" companions; they are not package content.
    return name.rsplit("/", 1)[-1].startswith("._")
