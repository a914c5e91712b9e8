"""Structural checks on untrusted QuestionnaireResponse JSON before it is walked (bad shape is a 400)."""

from __future__ import annotations

from typing import Any

from igs.outcome import invalid

_LISTS_OF_OBJECTS = ("contained", "item", "answer", "extension")
_STRINGS = ("questionnaire", "status", "linkId", "type", "url", "id", "resourceType")


def check_structure(node: Any, path: str, is_item: bool = False) -> None:
    """Reject QuestionnaireResponse JSON whose shape the DTR functions cannot walk (a 400, never a 500)."""
    if not isinstance(node, dict):
        raise invalid("expected a JSON object", path)
    if is_item and "linkId" not in node:
        raise invalid("an item needs a linkId", f"{path}.linkId")
    for name in _STRINGS:
        if name in node and not isinstance(node[name], str):
            raise invalid(f"{name} must be a string", f"{path}.{name}")
    if "derivedFrom" in node and not (
        isinstance(node["derivedFrom"], list) and all(isinstance(c, str) for c in node["derivedFrom"])
    ):
        raise invalid("derivedFrom must be a list of canonicals", f"{path}.derivedFrom")
    for name in _LISTS_OF_OBJECTS:
        if name not in node:
            continue
        if not isinstance(node[name], list):
            raise invalid(f"{name} must be an array", f"{path}.{name}")
        for index, child in enumerate(node[name]):
            check_structure(child, f"{path}.{name}[{index}]", is_item=name == "item")


def parameter_list(parameters: dict[str, Any]) -> list[Any]:
    """Parameters.parameter as a list (absent is empty); any other JSON type is a 400."""
    found = parameters.get("parameter", [])
    if not isinstance(found, list):
        raise invalid("Parameters.parameter must be an array", "Parameters.parameter")
    return found
