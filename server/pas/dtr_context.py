"""DTR launched from a pended PAS request: the ``$questionnaire-package`` ``context`` is a trace number.

A PAS response that pends an item for a payer questionnaire names it by the item's trace number (or the
Claim identifier when the item has none: the CommunicationRequest identifier, PAS ainfo-3), and the DTR
client passes that value as ``context`` (DTR spec-109; then usually without orders). This module answers
which questionnaires the pended items asked for and which identifier the draft QuestionnaireResponse
names in its ``qr-context``, so the completed response is found again by the next ``$submit`` (see
``dtr_responses.py``: ``context-identifier``).
"""

from __future__ import annotations

from dataclasses import dataclass

from igs.outcome import unprocessable

from .codes import ReviewAction
from .fhirdata import Ident
from .store import SubmissionRecord
from .versions import PasVersion


@dataclass(frozen=True)
class PendedDocumentation:
    """What a DTR client launched for a pended PAS request fills in."""

    submission_id: str
    version: PasVersion
    trace: Ident  # the trace number (or Claim identifier) the context named: the draft's qr-context
    items: tuple[int, ...]  # the pended item sequences it covers
    questionnaires: tuple[str, ...]  # the Questionnaire canonicals those items' decisions asked for


def documentation_for_context(record: SubmissionRecord, context: str) -> PendedDocumentation:
    """The pended items ``context`` names in ``record`` (an item trace number names its items; a Claim
    identifier names every pended item) and the questionnaires their coverage decisions asked for.
    422 when none of them waits for a questionnaire (decided already, or pended for review only)."""
    stored = record.stored
    pended = [i for i in stored.decision.items if i.action is ReviewAction.PENDED]
    named = [(i, t) for i in pended for t in i.trace_numbers if t.value == context]
    if named:
        trace = named[0][1]
        items = [i for i, _ in named]
    else:
        claim_ids = [c for c in stored.request.claim_identifiers if c.value == context]
        trace = claim_ids[0] if claim_ids else Ident(None, context)
        items = pended
    questionnaires = tuple(dict.fromkeys(q for i in items for q in i.questionnaires))
    if not questionnaires:
        state = "has no pended item" if not items else "has no pended item waiting for a questionnaire"
        raise unprocessable(
            f"The prior authorization request with trace number {context} {state}; check its current "
            "status with Claim/$inquire",
            "Parameters.parameter.where(name='context')",
            code="not-found",
        )
    return PendedDocumentation(
        submission_id=record.submission_id,
        version=record.version,
        trace=trace,
        items=tuple(dict.fromkeys(i.sequence for i in items)),
        questionnaires=questionnaires,
    )
