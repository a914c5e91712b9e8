"""Replays, identifier conflicts, and the update / cancel rules checked against the prior request.

Spec: PAS "Updating authorization requests" (PASClaimUpdate, infoChanged / infoCancelled,
certificationType 3 cancels), spec-64 (a server MAY reject an update with an X12 error), spec-34
(item sequences are stable across versions). A resubmitted identical request returns the stored answer
and creates nothing; reusing a Claim identifier for different content is a conflict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson

from igs.outcome import Failure, OperationOutcomeError

from .bundle import BundleIndex, Entry
from .codes import InfoChange, RejectReason, ReviewAction
from .fhirdata import Ident
from .request import PasRequest
from .response import BusinessError

# Elements that differ between two submissions of the same content.
_IGNORED = frozenset({"id", "meta", "text"})


def fingerprint(request: PasRequest) -> str:
    """A content hash of the Claim and, transitively, every entry it references.

    Independent of key order, Bundle.id / timestamp / meta, resource ids, narrative and fullUrls:
    each in-Bundle reference is replaced by the hash of its target.
    """
    return _Hasher(request.index).digest(request.claim)


def _exact_decimal(value: object) -> object:
    """FHIR decimals arrive as Decimal (their exact text): hashed as that text."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _Hasher:
    def __init__(self, index: BundleIndex) -> None:
        self.index = index
        self.done: dict[str, str] = {}
        self.active: set[str] = set()

    def digest(self, entry: Entry) -> str:
        if entry.full_url in self.done:
            return self.done[entry.full_url]
        if entry.full_url in self.active:  # a cycle (e.g. a Claim referenced by its own resources)
            return f"cycle:{entry.resource_type}"
        self.active.add(entry.full_url)
        canonical = self._canonical(entry.resource, entry, top=True)
        self.active.discard(entry.full_url)
        blob = orjson.dumps(canonical, default=_exact_decimal, option=orjson.OPT_SORT_KEYS)
        value = hashlib.sha256(blob).hexdigest()
        self.done[entry.full_url] = value
        return value

    def _canonical(self, node: Any, source: Entry, top: bool = False) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if top and key in _IGNORED:
                    continue
                if key == "reference" and isinstance(value, str):
                    target = self.index.resolve(value, source)
                    out[key] = f"{target.resource_type}#{self.digest(target)}" if target else value
                else:
                    out[key] = self._canonical(value, source)
            return out
        if isinstance(node, list):
            return [self._canonical(v, source) for v in node]
        return node


class SubmissionKind(StrEnum):
    NEW = "new"
    REPLAY = "replay"  # same identifier, same content: answer with the stored response
    UPDATE = "update"
    CANCEL = "cancel"


@dataclass(frozen=True)
class PriorItem:
    sequence: int
    action: ReviewAction


@dataclass(frozen=True)
class PriorSubmission:
    """What storage knows about an earlier request sharing a Claim identifier (or named as prior)."""

    fingerprint: str
    claim_identifiers: tuple[Ident, ...]
    patient_identifiers: tuple[Ident, ...]
    member_ids: tuple[Ident, ...]
    items: tuple[PriorItem, ...]
    cancelled: bool = False  # the whole request was cancelled


def classify(request: PasRequest, request_fingerprint: str, prior: PriorSubmission | None) -> SubmissionKind:
    """NEW, REPLAY, UPDATE or CANCEL; raises CONFLICT (409) for an identifier reused for other content.

    ``prior`` is the stored request with one of this Claim's identifiers (2.0.1 updates reuse the
    identifier) or, for a 2.2.1 update, the request its ``related`` prior Claim identifies.
    """
    if prior is not None and prior.fingerprint == request_fingerprint:
        return SubmissionKind.REPLAY
    if request.is_update:
        return SubmissionKind.CANCEL if request.is_whole_cancel else SubmissionKind.UPDATE
    if prior is not None and _shares_identifier(request.claim_identifiers, prior.claim_identifiers):
        shown = ", ".join(i.token() for i in request.claim_identifiers)
        raise OperationOutcomeError.of(
            Failure.CONFLICT,
            f"Claim identifier {shown} was already used for a different request; "
            "send an update (PASClaimUpdate) or use a new identifier",
            expression=("Bundle.entry[0].resource.identifier",),
        )
    return SubmissionKind.NEW


def _shares_identifier(a: tuple[Ident, ...], b: tuple[Ident, ...]) -> bool:
    return bool({i.token() for i in a} & {i.token() for i in b})


def check_update(request: PasRequest, prior: PriorSubmission | None) -> tuple[BusinessError, ...]:
    """The IG's update / cancel rules as AAA errors (empty when the update may proceed, spec-64)."""
    claim = request.claim.path
    if prior is None:
        return (
            BusinessError(
                RejectReason.AUTHORIZATION_NUMBER_NOT_FOUND,
                "The prior request this update refers to is not known",
                element="2000E-TRN",
                path=f"{claim}.related",
            ),
        )
    errors: list[BusinessError] = []
    if prior.cancelled:
        errors.append(BusinessError(RejectReason.INPUT_ERRORS, "The prior request was cancelled", path=claim))
    if prior.items and all(i.action is ReviewAction.NOT_CERTIFIED for i in prior.items):
        errors.append(
            BusinessError(
                RejectReason.INPUT_ERRORS,
                "A denied request cannot be updated; submit a new request",
                path=claim,
            )
        )
    if (
        prior.member_ids
        and request.member_ids
        and not _shares_identifier(prior.member_ids, request.member_ids)
    ):
        errors.append(
            BusinessError(
                RejectReason.INPUT_ERRORS,
                "An update must be for the same member as the prior request",
                element="2010C-NM109",
                path=f"{claim}.insurance",
            )
        )
    known = {i.sequence: i for i in prior.items}
    for n, item in enumerate(request.items):
        path = f"{claim}.item[{n}]"
        if item.info_changed is InfoChange.ADDED and item.sequence in known:
            errors.append(
                BusinessError(
                    RejectReason.INPUT_ERRORS,
                    f"Item {item.sequence} is marked added but is in the prior request; sequences are stable",
                    element="2000F-TRN",
                    path=f"{path}.sequence",
                )
            )
        if (item.info_changed is InfoChange.CHANGED or item.cancelled) and item.sequence not in known:
            errors.append(
                BusinessError(
                    RejectReason.INPUT_ERRORS,
                    f"Item {item.sequence} is changed or cancelled but is not in the prior request",
                    element="2000F-TRN",
                    path=f"{path}.sequence",
                )
            )
        prior_item = known.get(item.sequence)
        if prior_item is not None and prior_item.action is ReviewAction.CANCELLED and not item.is_cancel:
            errors.append(
                BusinessError(
                    RejectReason.INPUT_ERRORS,
                    f"Item {item.sequence} was cancelled and cannot be updated; add a new item",
                    path=f"{path}.sequence",
                )
            )
    return tuple(errors)
