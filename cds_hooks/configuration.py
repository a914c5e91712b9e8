"""`davinci-crd.configuration-options` offered in discovery and `davinci-crd.configuration` read per request.

CRD 2.2 §Configuration options: a boolean per card type offered plus ``max-cards`` (dev-4, dev-5, dev-7,
dev-8); requests may switch them (dev-14); unknown options and wrong types are ignored (dev-6, dev-17).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# code -> (name, description); every card type PriorGate emits.
CARD_TYPE_OPTIONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "coverage-info": (
            "Coverage Information",
            "Coverage, prior-authorization and documentation requirements added to each order",
        ),
        "guideline": ("Guidelines", "Links to the payer policy that governs the ordered service"),
        "claim": ("Claim Guidance", "Instructions about what to do so the service can be billed"),
        "therapy-alternatives-opt": (
            "Optional Therapy Alternatives",
            "A proposed alternative order the payer prefers (optional to accept)",
        ),
        "clinical-reminder": (
            "Clinical Reminders",
            "Companion orders usually needed with the ordered service (e.g. CPAP supplies)",
        ),
    }
)
DEFAULT_MAX_CARDS = 10


def configuration_options() -> list[dict[str, Any]]:
    """The discovery ``davinci-crd.configuration-options`` array (all five members, CRD dev-4)."""
    options: list[dict[str, Any]] = [
        {"code": code, "type": "boolean", "name": name, "description": description, "default": True}
        for code, (name, description) in CARD_TYPE_OPTIONS.items()
    ]
    options.append(
        {
            "code": "max-cards",
            "type": "integer",
            "name": "Maximum cards",
            "description": "The most cards returned; the highest-priority cards are kept",
            "default": DEFAULT_MAX_CARDS,
        }
    )
    return options


@dataclass(frozen=True)
class Configuration:
    """The options in force for one request (defaults where the client said nothing)."""

    enabled: Mapping[str, bool]
    max_cards: int
    unsolicited_determinations: bool = True

    def allows(self, card_type: str) -> bool:
        return self.enabled.get(card_type, True)


def read_configuration(raw: object) -> Configuration:
    """Read ``extension["davinci-crd.configuration"]``; unknown codes and ill-typed values are ignored."""
    enabled: dict[str, bool] = {}
    max_cards = DEFAULT_MAX_CARDS
    unsolicited = True
    if isinstance(raw, Mapping):
        for code, value in raw.items():
            if code in CARD_TYPE_OPTIONS and isinstance(value, bool):
                enabled[code] = value
            elif (
                code == "max-cards" and isinstance(value, int) and not isinstance(value, bool) and value >= 0
            ):
                max_cards = value
            elif code == "unsolicited-determ" and isinstance(value, bool):
                unsolicited = value
    return Configuration(MappingProxyType(enabled), max_cards, unsolicited)
