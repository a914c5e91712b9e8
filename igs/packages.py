"""One FHIR NPM package, read lazily from a ``.tgz`` or from the FHIR package cache layout.

Spec: https://confluence.hl7.org/display/FHIR/NPM+Package+Specification (``package/package.json``,
``package/.index.json`` with ``index-version`` 2, examples under ``package/example/``).

Opening a package reads only ``package.json``. The file list and ``.index.json`` are read on first use; a
resource's JSON is parsed only when asked for, then kept.
"""

from __future__ import annotations

import zlib
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
        self._files: dict[str, bytes | memoryview] | None = None
        self._index: tuple[IndexEntry, ...] | None = None
        self._parsed: dict[str, dict[str, Any]] = {}

    @property
    def key(self) -> str:
        return f"{self.name}#{self.version}"

    def __repr__(self) -> str:
        return f"Package({self.key})"

    # -- files -------------------------------------------------------------------------------------------

    def _load_files(self) -> dict[str, bytes | memoryview]:
        files = self._files
        if files is None:
            files = self._files = (
                dict(_read_tgz(self.source)) if self.source.is_file() else _read_dir(self.source)
            )
        return files

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


def _parse_json(raw: bytes | memoryview) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # A few published files carry a byte-order mark or another Unicode encoding.
        for encoding in ("utf-8-sig", "utf-16"):
            try:
                return orjson.loads(bytes(raw).decode(encoding))
            except (UnicodeDecodeError, orjson.JSONDecodeError):
                continue
        raise


def open_package(source: Path) -> Package:
    """Read a package's ``package.json`` from a ``.tgz`` or a ``<name>#<version>`` cache folder."""
    files: dict[str, memoryview] | None = None
    if source.is_file():
        manifest, files = _tgz_manifest(source)
    else:
        manifest = orjson.loads((source / "package" / "package.json").read_bytes())
    if not isinstance(manifest, dict) or "name" not in manifest or "version" not in manifest:
        raise ValueError(f"{source}: package.json lacks name or version")
    package = Package(source, manifest)
    package._files = dict(files) if files is not None else None
    return package


def _members(raw: bytes | memoryview, until: str | None = None) -> tuple[dict[str, memoryview], bool]:
    """Files under ``package/`` in an uncompressed tar (ustar, pax and GNU long names) as views into ``raw``.

    Returns (files, complete); stops early once ``until`` has been read, or where ``raw`` is cut short.
    ``tarfile`` spends most of its time building TarInfo objects for thousands of members; package loading
    only needs names and contents.
    """
    view = memoryview(raw)
    files: dict[str, memoryview] = {}
    pos, total = 0, len(view)
    long_name: str | None = None
    while pos + 512 <= total:
        header = bytes(view[pos : pos + 512])
        if not header.strip(b"\0"):
            return files, True
        size_field = header[124:136].strip(b"\0 ")
        size = int(size_field, 8) if size_field else 0
        start = pos + 512
        if start + size > total:
            return files, False
        data = view[start : start + size]
        pos = start + (size + 511) // 512 * 512
        kind = header[156:157]
        if kind in (b"x", b"L"):
            long_name = _pax_path(bytes(data)) if kind == b"x" else bytes(data).rstrip(b"\0").decode()
            continue
        name = (long_name or _header_name(header)).lstrip("./")
        long_name = None
        if kind in (b"0", b"\0", b"7") and name.startswith(_PREFIX) and not _is_resource_fork(name):
            files[name[len(_PREFIX) :]] = data
            if until is not None and name[len(_PREFIX) :] == until:
                return files, False
    return files, pos >= total


def _header_name(header: bytes) -> str:
    name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
        if prefix:
            name = f"{prefix}/{name}"
    return name


def _pax_path(data: bytes) -> str | None:
    for record in data.decode("utf-8", "replace").splitlines():
        _, _, keyvalue = record.partition(" ")
        key, _, value = keyvalue.partition("=")
        if key == "path":
            return value
    return None


def _tgz_manifest(path: Path) -> tuple[Any, dict[str, memoryview] | None]:
    """package.json, plus every file when the whole archive had to be read to reach it."""
    compressed = path.read_bytes()
    head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(compressed, 1 << 20)
    files, _ = _members(head, until="package.json")
    complete: dict[str, memoryview] | None = None
    if "package.json" not in files:
        complete, _ = _members(zlib.decompress(compressed, 16 + zlib.MAX_WBITS))
        files = complete
    if "package.json" not in files:
        raise ValueError(f"{path}: no package/package.json")
    return _parse_json(bytes(files["package.json"])), complete


def _read_tgz(path: Path) -> dict[str, memoryview]:
    files, _ = _members(zlib.decompress(path.read_bytes(), 16 + zlib.MAX_WBITS))
    return files


def _read_dir(folder: Path) -> dict[str, bytes | memoryview]:
    root = folder / "package"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix == ".json" and not _is_resource_fork(p.name)
    }


def _is_resource_fork(name: str) -> bool:
    # macOS archivers add AppleDouble "._name" companions; they are not package content.
    return name.rsplit("/", 1)[-1].startswith("._")
