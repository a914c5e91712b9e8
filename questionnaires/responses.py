"""What a completed DTR QuestionnaireResponse links to, for storage and PAS lookup (DTR 2.0.1 §4.3.7 /
2.2.0 `qr-context` and `qr-coverage`; CRD coverage-information with `coverage-assertion-id` and
`satisfied-pa-id`)."""

from __future__ import annotations

from dataclasses import dataclass

from igs.outcome import invalid
from questionnaires.canonicals import COVERAGE_INFORMATION, QR_CONTEXT, QR_COVERAGE
from questionnaires.catalog import Resource
from questionnaires.shape import check_structure


@dataclass(frozen=True)
class ResponseLinks:
    """The references a stored QuestionnaireResponse is indexed by."""

    questionnaire: str
    status: str
    subject: str | None
    coverages: tuple[str, ...]  # "Coverage/123"
    orders: tuple[str, ...]  # "ServiceRequest/123", "DeviceRequest/9", ...
    coverage_assertion_ids: tuple[str, ...]
    satisfied_pa_ids: tuple[str, ...]


def response_links(questionnaire_response: Resource) -> ResponseLinks:
    """Index keys of a DTR QuestionnaireResponse: coverage and order references (2.0.1 puts both in
    `qr-context`; 2.2.0 uses `qr-coverage` for the Coverage) and the CRD coverage-information ids.
    For an adaptive response, `questionnaire` is the served canonical the contained form derives from."""
    qr = questionnaire_response
    if not isinstance(qr, dict) or qr.get("resourceType") != "QuestionnaireResponse":
        raise invalid("expected a QuestionnaireResponse", "QuestionnaireResponse")
    check_structure(qr, "QuestionnaireResponse")
    questionnaire = qr.get("questionnaire")
    if not isinstance(questionnaire, str) or not questionnaire:
        raise invalid(
            "QuestionnaireResponse.questionnaire is required", "QuestionnaireResponse.questionnaire"
        )
    if questionnaire.startswith("#"):
        contained: Resource = next(
            (r for r in qr.get("contained", []) if f"#{r.get('id')}" == questionnaire), {}
        )
        derived = contained.get("derivedFrom") or []
        if not derived:
            raise invalid(
                "the contained adaptive Questionnaire has no derivedFrom", "Questionnaire.derivedFrom"
            )
        questionnaire = derived[0]
    coverages: list[str] = []
    orders: list[str] = []
    assertion_ids: list[str] = []
    pa_ids: list[str] = []
    for ext in qr.get("extension", []):
        url = ext.get("url")
        reference = (ext.get("valueReference") or {}).get("reference")
        if url in (QR_CONTEXT, QR_COVERAGE) and isinstance(reference, str):
            (coverages if reference.startswith("Coverage/") else orders).append(reference)
        elif url == COVERAGE_INFORMATION:
            for part in ext.get("extension", []):
                if part.get("url") == "coverage-assertion-id" and isinstance(part.get("valueString"), str):
                    assertion_ids.append(part["valueString"])
                elif part.get("url") == "satisfied-pa-id" and isinstance(part.get("valueString"), str):
                    pa_ids.append(part["valueString"])
    subject = (qr.get("subject") or {}).get("reference")
    return ResponseLinks(
        questionnaire=questionnaire,
        status=str(qr.get("status", "")),
        subject=subject if isinstance(subject, str) else None,
        coverages=tuple(coverages),
        orders=tuple(orders),
        coverage_assertion_ids=tuple(assertion_ids),
        satisfied_pa_ids=tuple(pa_ids),
    )
