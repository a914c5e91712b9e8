"""Materializing Patient Access: each recorded PAS result rewrites its ExplanationOfBenefit.

PriorGate stores the PDex prior-authorization ExplanationOfBenefit of a request when a result is recorded
(``PasService._publish``: the ``$submit`` answer, a reviewer's decision, an information request, a legacy
payer's answer), in the same database transaction as the new ClaimResponse version. So the member sees
the current status as soon as it exists (CMS-0057-F asks for one business day), and the resource is kept
like every stored resource: nothing in PriorGate deletes it, every status change is a new version
(``_history``), and ``meta.lastUpdated`` is the time of the last status change.

Where it lives: the id is the PAS submission id (the stored Claim's id too); the tenant is the member's,
i.e. that of the stored Patient the request names by member identifier (``members.find_member``), so
the member's own patient-context token reads it with the ordinary tenant rule. A request whose member has
no stored Patient gets no ExplanationOfBenefit until a later result finds one; once stored, an
ExplanationOfBenefit stays in its tenant and on its Patient.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.pas.response import claim_response_of
from server.pas.store import SubmissionRecord
from server.security.access import READ_EVERYWHERE
from server.storage.repository import Repository, Transaction

from .eob import build_prior_auth_eob, denial_dates
from .members import find_member

EOB = "ExplanationOfBenefit"


@dataclass(frozen=True)
class EobPublisher:
    """``PasService.published``: writes the ExplanationOfBenefit of ``record`` inside ``tx``."""

    repository: Repository  # the whole store (not a caller's view)

    def __call__(self, tx: Transaction, record: SubmissionRecord) -> str | None:
        """Store the current ExplanationOfBenefit; returns its reference, or ``None`` when there is none
        (no member Patient known, or a request for drugs only)."""
        everywhere = self.repository.acting_for(READ_EVERYWHERE)
        view = tx.seen_as(everywhere)
        existing = view.find(EOB, record.submission_id)
        denied_on: dict[int, str] = {}
        if existing is not None and not existing.deleted:
            tenant = existing.tenant
            previous = existing.resource()
            patient = previous.get("patient", {}).get("reference")
            denied_on = denial_dates(previous)
        else:
            member = find_member(view, everywhere, record.stored.request)
            if member is None:
                return None
            tenant, patient = member.tenant, member.reference
        response = claim_response_of(record.stored.response) or {}
        eob = build_prior_auth_eob(
            record.stored.request,
            record.stored.decision,
            response,
            eob_id=record.submission_id,
            patient_reference=str(patient),
            claim_reference=f"Claim/{record.submission_id}",
            denied_on=denied_on,
        )
        if eob is None:
            return None
        stored = tx.seen_as(self.repository.for_tenant(tenant)).update(EOB, record.submission_id, eob).stored
        return stored.reference
