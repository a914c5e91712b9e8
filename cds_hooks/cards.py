"""CRD cards (CRD 2.2 §Response types) and the card rules every response must obey.

Rules (CDS Hooks 2.0 §Card, CRD resp-3..resp-13): ``summary`` under 140 characters, ``indicator``,
``source.label`` = the insurer, ``source.topic`` from the version's card-type code system, a ``uuid``
on every card and suggestion, ``selectionBehavior`` with suggestions, a ``description`` on every
action, absolute links for External Reference cards, and no card repeating coverage information that
travels as a systemAction (resp-12, resp-25).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .configuration import CARD_TYPE_OPTIONS
from .coverage import CoverageDecision
from .policy import Alternate, Companion
from .urls import CARD_SOURCE_URL, EXT_COVERAGE_INFORMATION
from .versions import CrdVersion

MAX_SUMMARY = 139

# Lower number, higher priority when `max-cards` trims the list.
PRIORITY: Mapping[str, int] = MappingProxyType(
    {"therapy-alternatives-opt": 0, "clinical-reminder": 1, "guideline": 2, "claim": 3}
)


@dataclass(frozen=True)
class CardContext:
    """What every card of one response shares: CRD version, insurer label, id factory."""

    version: CrdVersion
    insurer: str
    new_id: Callable[[str], str]  # seed -> uuid string (deterministic per hook instance)


def _summary(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1].rstrip() + "…"


def _card(
    ctx: CardContext, topic: str, summary: str, seed: str, *, detail: str | None, about: Sequence[str]
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": ctx.new_id(seed),
        "summary": _summary(summary),
        "indicator": "info",
        "source": {
            "label": ctx.insurer,
            "url": CARD_SOURCE_URL,
            "topic": {
                "system": ctx.version.card_type_system,
                "code": topic,
                "display": CARD_TYPE_OPTIONS[topic][0],
            },
        },
    }
    if detail:
        card["detail"] = detail
    if about:
        card["extension"] = {"davinci-crd.associated-resource": [{"reference": ref} for ref in about]}
    return card


def external_reference_card(
    ctx: CardContext, decision: CoverageDecision, about: str
) -> dict[str, Any] | None:
    """External Reference card: the payer policy behind the decision (CRD §External Reference)."""
    if not decision.policy_links:
        return None
    title = decision.title or "Ordered service"
    card = _card(
        ctx,
        "guideline",
        f"{title}: {decision.payer_name} coverage policy",
        f"external-reference|{about}|{decision.rule_id}",
        detail=f"The payer policy describing the coverage criteria for {title.lower()}.",
        about=[about],
    )
    card["links"] = [
        {"label": link.label, "url": link.url, "type": "absolute"} for link in decision.policy_links
    ]
    return card


def instructions_card(ctx: CardContext, decision: CoverageDecision, about: str) -> dict[str, Any] | None:
    """Instructions card: payer guidance text with neither links nor suggestions (CRD §Instructions)."""
    if not decision.instructions:
        return None
    title = decision.title or "Ordered service"
    return _card(
        ctx,
        "claim",
        f"{title}: instructions from {decision.payer_name}",
        f"instructions|{about}|{decision.rule_id}",
        detail=decision.instructions,
        about=[about],
    )


def alternate_request_card(
    ctx: CardContext, alternate: Alternate, order: Mapping[str, Any], about: str
) -> dict[str, Any] | None:
    """Propose Alternate Request: one ``update`` of the draft order with the preferred code."""
    if order.get("resourceType") not in ("ServiceRequest", "DeviceRequest"):
        return None
    key = "code" if order["resourceType"] == "ServiceRequest" else "codeCodeableConcept"
    codings = (order.get(key) or {}).get("coding") or []
    if not any(
        isinstance(c, Mapping) and c.get("code") == r.code and c.get("system") == r.system
        for c in codings
        for r in alternate.replaces
    ):
        return None
    updated = dict(order)  # shallow: only top-level members are replaced
    # The proposal is a different order: drop assertions made about the original one.
    updated["extension"] = [
        e for e in updated.get("extension") or [] if e.get("url") != EXT_COVERAGE_INFORMATION
    ]
    if not updated["extension"]:
        del updated["extension"]
    updated[key] = {
        "coding": [alternate.code.coding()],
        "text": alternate.code.display or alternate.code.code,
    }
    card = _card(
        ctx,
        "therapy-alternatives-opt",
        alternate.summary,
        f"alternate|{about}",
        detail=alternate.detail,
        about=[about],
    )
    card["selectionBehavior"] = "at-most-one"
    card["suggestions"] = [
        {
            "label": f"Change the order to {alternate.code.display or alternate.code.code}",
            "uuid": ctx.new_id(f"alternate-suggestion|{about}"),
            "actions": [
                {
                    "type": "update",
                    "description": f"Replace the ordered code with {alternate.code.code}",
                    "resource": updated,
                }
            ],
        }
    ]
    return card


def additional_orders_card(
    ctx: CardContext,
    decision: CoverageDecision,
    companions: Sequence[Companion],
    order: Mapping[str, Any],
    about: str,
) -> dict[str, Any] | None:
    """Identify Additional Orders: ``create`` actions for companion orders (CRD §Additional Orders)."""
    if not companions:
        return None
    title = decision.title or "the ordered service"
    actions = []
    for i, companion in enumerate(companions):
        resource: dict[str, Any] = {
            "resourceType": companion.resource_type,
            "id": ctx.new_id(f"companion-resource|{about}|{i}")[:36],
            "status": "draft",
            "intent": "original-order",
        }
        code_key = {
            "DeviceRequest": "codeCodeableConcept",
            "MedicationRequest": "medicationCodeableConcept",
        }.get(companion.resource_type, "code")
        resource[code_key] = {
            "coding": [companion.code.coding()],
            "text": companion.code.display or companion.code.code,
        }
        for field_name in ("subject", "encounter", "requester"):
            if field_name in order:
                resource[field_name] = copy.deepcopy(order[field_name])
        if "authoredOn" in order:
            resource["authoredOn"] = order["authoredOn"]
        actions.append(
            {
                "type": "create",
                "description": f"Add an order for {companion.code.display or companion.code.code}",
                "resource": resource,
            }
        )
    card = _card(
        ctx,
        "clinical-reminder",
        f"Companion orders usually needed with: {title}",
        f"companions|{about}",
        detail="Supplies ordered with the device; adding them now avoids a second authorization cycle.",
        about=[about],
    )
    card["selectionBehavior"] = "any"
    card["suggestions"] = [
        {
            "label": "Add the companion orders",
            "uuid": ctx.new_id(f"companions-suggestion|{about}"),
            "actions": actions,
        }
    ]
    return card


def card_problems(card: Mapping[str, Any], version: CrdVersion) -> list[str]:
    """Violations of the CDS Hooks / CRD card rules in one card (empty when it conforms)."""
    problems: list[str] = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        problems.append("summary must be a non-empty string under 140 characters")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append("indicator must be info, warning or critical")
    if not isinstance(card.get("uuid"), str):
        problems.append("uuid is required (CRDHooksResponseBase)")
    raw_source = card.get("source")
    source: Mapping[str, Any] = raw_source if isinstance(raw_source, Mapping) else {}
    if not source.get("label"):
        problems.append("source.label is required")
    topic = source.get("topic")
    if (
        not isinstance(topic, Mapping)
        or not topic.get("code")
        or topic.get("system") != version.card_type_system
    ):
        problems.append("source.topic needs a code from the version's card-type system")
    elif topic.get("code") == "coverage-info":
        problems.append("coverage information must travel as a systemAction, not a card")
    suggestions = card.get("suggestions") or []
    if suggestions and card.get("selectionBehavior") not in ("at-most-one", "any"):
        problems.append("selectionBehavior is required with suggestions")
    for suggestion in suggestions:
        if not suggestion.get("uuid") or not suggestion.get("label"):
            problems.append("every suggestion needs uuid and label")
        if not suggestion.get("actions"):
            problems.append("every suggestion needs actions")
        problems += action_problems(suggestion.get("actions") or [])
    for link in card.get("links") or []:
        if link.get("type") not in ("absolute", "smart") or not link.get("label") or not link.get("url"):
            problems.append("links need label, url and type")
    return problems


def action_problems(actions: Sequence[Mapping[str, Any]]) -> list[str]:
    """Violations of the CDS Hooks Action rules (type, description, resource / resourceId)."""
    problems = []
    for action in actions:
        if action.get("type") not in ("create", "update", "delete"):
            problems.append("action type must be create, update or delete")
        if not action.get("description"):
            problems.append("every action needs a description")
        if action.get("type") in ("create", "update") and not isinstance(action.get("resource"), Mapping):
            problems.append("create/update actions need a resource")
        if action.get("type") == "delete" and not action.get("resourceId"):
            problems.append("delete actions need a resourceId")
    return problems


def response_problems(response: Mapping[str, Any], version: CrdVersion, *, primary: bool) -> list[str]:
    """Card rules over a whole hook response, plus the systemAction rules (CRD resp-12, resp-25, resp-26)."""
    problems: list[str] = []
    cards = response.get("cards")
    if not isinstance(cards, list):
        return ["cards array is required"]
    for card in cards:
        problems += card_problems(card, version)
    actions = response.get("systemActions")
    if primary and not isinstance(actions, list):
        problems.append("systemActions is required on primary hooks")
    for action in actions or []:
        problems += action_problems([action])
        if action.get("type") != "update":
            problems.append("coverage information systemActions are updates")
    return problems
