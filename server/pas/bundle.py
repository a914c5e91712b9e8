"""Entries of a PAS Bundle and the resolution of references between them.

Spec: FHIR R4 Bundle "Resolving references in Bundles" (http://hl7.org/fhir/R4/bundle.html#references);
PAS spec-13/spec-17: every reference is fully traversed and included, each resource appears once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from igs.outcome import invalid

Json = dict[str, Any]

_RESTFUL = re.compile(
    r"^(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$"
)


@dataclass(frozen=True)
class Entry:
    """One ``Bundle.entry``: its position (for FHIRPath expressions), fullUrl and resource."""

    index: int
    full_url: str
    resource: Mapping[str, Any]

    @property
    def resource_type(self) -> str:
        return str(self.resource.get("resourceType", ""))

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass(frozen=True)
class BundleIndex:
    """The entries of a collection Bundle with FHIR reference resolution between them."""

    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, bundle: Mapping[str, Any]) -> BundleIndex:
        raw = bundle.get("entry")
        if not isinstance(raw, list):
            return cls(())
        entries: list[Entry] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise invalid("Bundle.entry must be an object", f"Bundle.entry[{i}]")
            resource = item.get("resource")
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise invalid("Bundle.entry.resource is required", f"Bundle.entry[{i}].resource")
            full_url = item.get("fullUrl")
            if not isinstance(full_url, str) or not full_url:
                raise invalid("Bundle.entry.fullUrl is required", f"Bundle.entry[{i}].fullUrl")
            entries.append(Entry(i, full_url, resource))
        return cls(tuple(entries))

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def resolve(self, reference: str, source: Entry | None = None) -> Entry | None:
        """The entry a reference points at, or None when it is not in the Bundle."""
        if not reference or reference.startswith("#"):
            return None
        for entry in self.entries:
            if entry.full_url == reference:
                return entry
        match = _RESTFUL.match(reference)
        if match is None:
            return None
        rtype, rid = match.group("type"), match.group("id")
        if match.group("base") is None and source is not None:
            base = _RESTFUL.match(source.full_url)
            if base is not None and base.group("base"):
                absolute = f"{base.group('base')}{rtype}/{rid}"
                for entry in self.entries:
                    if entry.full_url == absolute:
                        return entry
        # Lenient fallback (urn:uuid fullUrls with relative references): type and id, if unique.
        found = [e for e in self.entries if e.resource_type == rtype and e.resource.get("id") == rid]
        return found[0] if len(found) == 1 else None

    def resolve_ref(self, ref: Any, source: Entry | None = None) -> Entry | None:
        """Resolve a FHIR Reference object (``{"reference": ...}``)."""
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
            return self.resolve(ref["reference"], source)
        return None


def iter_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference-shaped object (a dict with a string ``reference``) inside a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for key, value in node.items():
            if key != "contained":
                yield from iter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_references(item)
