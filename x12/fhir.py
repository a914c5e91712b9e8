"""Small readers over FHIR JSON (dicts) used by the mapping: Bundle references, extensions, codings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from x12.errors import X12Error

Json = dict[str, Any]


class BundleIndex:
    """Resolve references inside one Bundle by fullUrl, ``Type/id`` or the tail of an absolute URL."""

    def __init__(self, bundle: Json) -> None:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise X12Error.mapping("expected a Bundle", "Bundle")
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            raise X12Error.mapping("Bundle has no entry list", "Bundle.entry")
        self.bundle = bundle
        self.positions: dict[int, int] = {}
        self._by_key: dict[str, Json] = {}
        self.resources: list[Json] = []
        for n, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise X12Error.mapping(f"entry {n} has no resource", f"Bundle.entry[{n}].resource")
            self.resources.append(resource)
            self.positions[id(resource)] = n
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self._by_key[full_url] = resource
            if isinstance(resource.get("id"), str):
                self._by_key.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)

    def resolve(self, reference: Any) -> Json | None:
        """The resource a Reference points at, or None when it is not in the Bundle."""
        if not isinstance(reference, dict):
            return None
        ref = reference.get("reference")
        if not isinstance(ref, str):
            return None
        if ref in self._by_key:
            return self._by_key[ref]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:
            return self._by_key.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def path(self, resource: Json) -> str:
        """FHIRPath of a resource inside the Bundle (for errorPath and diagnostics)."""
        n = self.positions.get(id(resource))
        return f"Bundle.entry[{n}].resource" if n is not None else "Bundle"

    def first(self, resource_type: str) -> Json | None:
        for resource in self.resources:
            if resource["resourceType"] == resource_type:
                return resource
        return None


def ext(element: Any, url: str) -> Json | None:
    """The first extension with ``url`` on ``element``."""
    if not isinstance(element, dict):
        return None
    for extension in as_list(element.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == url:
            return extension
    return None


def ext_all(element: Any, url: str) -> list[Json]:
    if not isinstance(element, dict):
        return []
    return [e for e in as_list(element.get("extension")) if isinstance(e, dict) and e.get("url") == url]


def ext_value(element: Any, url: str) -> Any:
    """The value[x] of the first extension with ``url``."""
    extension = ext(element, url)
    if extension is None:
        return None
    for key, value in extension.items():
        if key.startswith("value"):
            return value
    return None


def codings(concept: Any) -> list[Json]:
    if not isinstance(concept, dict):
        return []
    return [c for c in as_list(concept.get("coding")) if isinstance(c, dict)]


def code_in(concept: Any, *systems: str) -> str:
    """The first code of ``concept`` from one of ``systems`` (any system when none given); ``""`` if none."""
    for coding in codings(concept):
        code = coding.get("code")
        if isinstance(code, str) and (not systems or coding.get("system") in systems):
            return code
    return ""


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def number(value: Any) -> str:
    """Exact decimal text of a JSON number (Decimal, int or float) for an X12 R/N element."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value)
        except ArithmeticError:
            return ""
    else:
        return ""
    out = format(d, "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out


def x12_date(value: Any) -> str:
    """FHIR date or dateTime to CCYYMMDD (the date part as written)."""
    raw = text(value)
    digits = raw[:10].replace("-", "")
    return digits if len(digits) == 8 and digits.isdigit() else ""


def fhir_date(value: str) -> str:
    """CCYYMMDD to a FHIR date."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def sequence_key(element: Json) -> int:
    """Sort key for FHIR elements carrying a ``sequence`` (missing or odd values first)."""
    value = element.get("sequence")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else an empty list (malformed input is ignored, not fatal)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> Json:
    """``value`` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}
