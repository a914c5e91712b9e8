"""FHIR search: parameter definitions, index value extraction and query parsing (no SQL here)."""

from server.search.definitions import ParamType, SearchParam, SearchRegistry, load_registry
from server.search.extract import Extractor, IndexRows
from server.search.query import Criterion, Include, SearchQuery, parse_search

__all__ = [
    "Criterion",
    "Extractor",
    "Include",
    "IndexRows",
    "ParamType",
    "SearchParam",
    "SearchQuery",
    "SearchRegistry",
    "load_registry",
    "parse_search",
]
