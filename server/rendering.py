"""Bundles and headers for stored resources (https://hl7.org/fhir/R4/bundle.html, http.html#versioning).

Stored bytes are spliced into Bundles as-is (orjson fragments), so a resource is never re-serialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from igs.outcome import Issue, operation_outcome
from server.fhir_json import loads
from server.search.query import Shape
from server.storage.repository import SearchPage, StoredResource, instant


def embed(stored: StoredResource, pretty: bool, shape: Shape | None = None) -> Any:
    if shape is not None and shape.trims:
        return shape.apply(stored.resource())
    return loads(stored.raw) if pretty else orjson.Fragment(stored.raw)


def version_headers(stored: StoredResource) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` (https://hl7.org/fhir/R4/http.html#versioning)."""
    return {"ETag": stored.etag, "Last-Modified": format_datetime(stored.last_updated_at, usegmt=True)}


def location(base: str, stored: StoredResource) -> str:
    return f"{base}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"


def search_url(base: str, resource_type: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{base}/{resource_type}?{urlencode(params)}"


def searchset(page: SearchPage, base: str, *, pretty: bool = False) -> dict[str, Any]:
    """A ``searchset`` Bundle with ``self``/``next``/``previous`` links (https://hl7.org/fhir/R4/http.html#paging)."""
    query = page.query
    links = [{"relation": "self", "url": search_url(base, query.resource_type, query.link_params())}]
    if page.has_next:
        following = query.offset + query.count
        links.append(
            {"relation": "next", "url": search_url(base, query.resource_type, query.link_params(following))}
        )
    if query.offset > 0 and query.count > 0:
        previous = query.link_params(max(query.offset - query.count, 0))
        links.append({"relation": "previous", "url": search_url(base, query.resource_type, previous)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{m.resource_type}/{m.id}",
            "resource": embed(m, pretty, query.shape),
            "search": {"mode": "match"},
        }
        for m in page.matches
    ]
    entries += [
        {
            "fullUrl": f"{base}/{i.resource_type}/{i.id}",
            "resource": embed(i, pretty),
            "search": {"mode": "include"},
        }
        for i in page.included
    ]
    if query.ignored:
        note = Issue(
            severity="warning",
            code="not-supported",
            diagnostics="Ignored search parameters (not supported): " + ", ".join(query.ignored),
        )
        entries.append({"resource": operation_outcome([note]), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def history(
    versions: Sequence[StoredResource],
    base: str,
    *,
    pretty: bool = False,
    links: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """A ``history`` Bundle, newest first (https://hl7.org/fhir/R4/http.html#history)."""
    entries: list[dict[str, Any]] = []
    for version in versions:
        url = f"{version.resource_type}/{version.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if version.deleted:
            entry["request"] = {"method": "DELETE", "url": url}
            entry["response"] = {"status": "410 Gone", "lastModified": instant(version.last_updated)}
        else:
            entry["resource"] = embed(version, pretty)
            method = "POST" if version.version_id == 1 else "PUT"
            entry["request"] = {"method": method, "url": url if method == "PUT" else version.resource_type}
            entry["response"] = {
                "status": "201 Created" if method == "POST" else "200 OK",
                "etag": version.etag,
                "lastModified": instant(version.last_updated),
            }
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if links:
        bundle["link"] = list(links)
    else:
        bundle["total"] = len(entries)
    bundle["entry"] = entries
    return bundle
