"""The DTR QuestionnaireResponses the payer already holds for a PAS request (PAS Must: decisions use "the
DTR QuestionnaireResponses linked by coverage-assertion-id or trace number").

A DTR client that stores its completed response at the payer (``POST`` / ``PUT /fhir/QuestionnaireResponse``,
or inside a transaction) has it indexed by two Da Vinci search parameters (``server/search/
ig_search_parameters.json``): ``coverage-assertion-id`` (CRD ``coverage-information`` on the response,
DTR spec-33) and ``context`` (``qr-context``: the order it was filled in for). A Claim whose requested
service carries the same coverage-assertion-id (CRD annotates the order), or whose supporting information
names it, finds those responses here; a Claim naming the EHR order by its URL finds them by context, and
an item's trace number finds a response whose ``qr-context`` names it by identifier (``context-identifier``:
DTR launched from a PAS pend, where the trace number is the DTR context id, PAS ainfo-3).
"""

from __future__ import annotations

from dataclasses import dataclass

from igs.outcome import OperationOutcomeError
from questionnaires import response_links
from server.coverage_assertions import CoverageAssertionStore
from server.storage.repository import Repository

from .ports import StoredResponse
from .request import PasRequest

QR_CONTEXT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"
MAX_RESPONSES = 50  # per link: more than this for one order is not documentation, it is noise


@dataclass(frozen=True)
class DtrResponseFinder:
    """``PasRequest -> stored DTR responses`` over the FHIR repository and the CRD coverage assertions."""

    repository: Repository
    assertions: CoverageAssertionStore

    def __call__(self, request: PasRequest) -> tuple[StoredResponse, ...]:
        assertion_ids = sorted(
            {a for item in request.items for a in item.coverage_assertion_ids}
            | {a for info in request.supporting_info for a in info.coverage_assertion_ids}
        )
        orders = sorted(
            {ref for item in request.items for s in item.requested_services if (ref := _relative(s.full_url))}
        )
        traces = sorted({t.value for item in request.items for t in item.trace_numbers})
        found: dict[str, StoredResponse] = {}
        searches = (
            ("coverage-assertion-id", assertion_ids),
            ("context", orders),
            ("context-identifier", traces),
        )
        for code, values in searches:
            for value in values:
                if "|" in value:
                    continue  # the token search has no escape for "|"
                try:
                    query = self.repository.parse_search(
                        "QuestionnaireResponse", [(code, _escaped(value)), ("_count", str(MAX_RESPONSES))]
                    )
                    matches = self.repository.search(query).matches
                except OperationOutcomeError:
                    continue  # a link no search can express (odd characters) documents nothing
                for match in matches:
                    reference = f"QuestionnaireResponse/{match.id}"
                    if reference not in found:
                        response = self._response(reference, match.resource())
                        if response is not None:
                            found[reference] = response
        return tuple(found[r] for r in sorted(found))

    def _response(self, reference: str, resource: dict[str, object]) -> StoredResponse | None:
        try:
            links = response_links(resource)
        except (OperationOutcomeError, AttributeError, TypeError):
            return None  # not a DTR response PAS can use (no questionnaire, malformed)
        requested = True
        for assertion_id in links.coverage_assertion_ids:
            assertion = self.assertions.find(assertion_id)
            if assertion is not None and assertion.questionnaires:
                requested = _asked_for(links.questionnaire, assertion.questionnaires)
        return StoredResponse(
            reference=reference,
            status=links.status,
            questionnaire=links.questionnaire,
            coverage_assertion_ids=links.coverage_assertion_ids,
            context_refs=links.orders,
            context_ids=_context_identifiers(resource),
            requested=requested,
        )


def _escaped(value: str) -> str:
    """A search value with FHIR's escapes (https://hl7.org/fhir/R4/search.html#escaping)."""
    for char in ("\\", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


def _context_identifiers(resource: dict[str, object]) -> tuple[str, ...]:
    out: list[str] = []
    extensions = resource.get("extension")
    for ext in extensions if isinstance(extensions, list) else ():
        if isinstance(ext, dict) and ext.get("url") == QR_CONTEXT:
            reference = ext.get("valueReference")
            identifier = reference.get("identifier") if isinstance(reference, dict) else None
            value = identifier.get("value") if isinstance(identifier, dict) else None
            if isinstance(value, str):
                out.append(value)
    return tuple(out)


def _asked_for(questionnaire: str, asked: tuple[str, ...]) -> bool:
    """``url|version`` matches itself; a response naming the bare url matches any version of it."""
    url, _, version = questionnaire.partition("|")
    for canonical in asked:
        asked_url, _, asked_version = canonical.partition("|")
        if url == asked_url and (not version or not asked_version or version == asked_version):
            return True
    return False


def _relative(full_url: str) -> str | None:
    if full_url.startswith("urn:") or "/" not in full_url:
        return None
    parts = full_url.split("/_history/", 1)[0].rstrip("/").split("/")
    return f"{parts[-2]}/{parts[-1]}"
