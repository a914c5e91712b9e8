"""X12 and FHIR codes PAS decisions are expressed in (TR3 element names in the comments).

Spec: PAS 2.2.1 "X12 terminology" and ClaimResponse profile; X12 lists 306 (HCR01), 1322 (UM02),
901 (AAA03), 889 (AAA04). Codes marked "TR3" are from the X12 278 TR3 and are checked there, not in the IG.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ReviewAction(StrEnum):
    """HCR01 action code (X12 list 306)."""

    CERTIFIED = "A1"  # certified in total
    NOT_CERTIFIED = "A3"  # denial: only ever from a reviewer
    PENDED = "A4"
    MODIFIED = "A6"  # the item as requested; what was authorized goes in addItem
    CANCELLED = "C"  # TR3

    @property
    def display(self) -> str:
        return _ACTION_DISPLAY[self]

    @property
    def is_final(self) -> bool:
        return self is not ReviewAction.PENDED


_ACTION_DISPLAY: Mapping[ReviewAction, str] = MappingProxyType(
    {
        ReviewAction.CERTIFIED: "Certified in total",
        ReviewAction.NOT_CERTIFIED: "Not Certified",
        ReviewAction.PENDED: "Pending",
        ReviewAction.MODIFIED: "Modified",
        ReviewAction.CANCELLED: "Cancelled",
    }
)


class CertificationType(StrEnum):
    """UM02 certification type (X12 list 1322)."""

    INITIAL = "I"
    IMMEDIATE_APPEAL = "1"  # requires a level of service (ImmediateLevelOfCare invariant)
    APPEAL = "2"  # TR3
    CANCEL = "3"
    EXTENSION = "4"  # TR3
    REVISED = "S"  # TR3


class Urgency(StrEnum):
    EXPEDITED = "expedited"
    STANDARD = "standard"


class InfoChange(StrEnum):
    """PASTempCodes value of the infoChanged extension on an updated item."""

    ADDED = "added"
    CHANGED = "changed"


class RejectReason(StrEnum):
    """AAA03 reject reason codes (X12 list 901) PriorGate emits; TR3."""

    REQUIRED_DATA_MISSING = "15"
    INPUT_ERRORS = "33"
    UNABLE_TO_RESPOND_NOW = "42"
    AUTHORIZATION_NUMBER_NOT_FOUND = "AA"
    PAYER_NAME_OR_ID_MISSING = "T4"


class FollowupAction(StrEnum):
    """AAA04 follow-up action codes (X12 list 889); TR3."""

    CORRECT_AND_RESUBMIT = "C"
    RESUBMISSION_NOT_ALLOWED = "N"
    RESUBMISSION_ALLOWED = "R"


# Levels of service (UM06, list 1338) and FHIR processpriority codes that make a request expedited.
EXPEDITED_LEVELS_OF_SERVICE: frozenset[str] = frozenset({"U", "03"})
EXPEDITED_PRIORITIES: frozenset[str] = frozenset({"stat"})

# LOINC "payer questionnaire": with it, the header or line TRN is the DTR context id (ainfo-3).
LOINC_PAYER_QUESTIONNAIRE = "102089-0"
