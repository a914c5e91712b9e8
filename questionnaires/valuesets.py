"""`ValueSet/$expand` over the catalog's value sets (FHIR R4 §4.9.21; DTR requires it of payers, expanding
at the current date with active codes only)."""

from __future__ import annotations

from datetime import datetime

from igs.outcome import invalid, not_found
from questionnaires.canonicals import canonical_of
from questionnaires.catalog import Catalog, Key, Resource


def expanded(catalog: Catalog, key: Key, *, now: datetime, text_filter: str | None = None) -> Resource:
    """A copy of the ValueSet with an expansion (all our value sets are small enumerations)."""
    contains = list(catalog.valueset_codes[key])
    if text_filter:
        needle = text_filter.casefold()
        contains = [
            c for c in contains if needle in c["code"].casefold() or needle in c.get("display", "").casefold()
        ]
    expansion: Resource = {
        "identifier": f"urn:priorgate:expansion:{canonical_of(*key)}",
        "timestamp": now.isoformat(),
        "total": len(contains),
    }
    if text_filter:
        expansion["parameter"] = [{"name": "filter", "valueString": text_filter}]
    if contains:
        expansion["contains"] = contains
    return {**catalog.valuesets[key], "expansion": expansion}


def expand_valueset(
    catalog: Catalog, url: str, version: str | None = None, *, now: datetime, text_filter: str | None = None
) -> Resource:
    """`ValueSet/$expand?url=...[&valueSetVersion=...][&filter=...]`: the expanded ValueSet, or 404."""
    if not url:
        raise invalid("$expand needs the url parameter", "url")
    key = catalog.valueset_key(canonical_of(url, version) if version else url)
    if key is None:
        raise not_found(f"ValueSet {url}{'|' + version if version else ''} is not known")
    return expanded(catalog, key, now=now, text_filter=text_filter)
