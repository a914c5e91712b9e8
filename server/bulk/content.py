"""What a member's export holds: the resource types, their dates of service, and the PA information
rules of CMS-0057-F. Pure functions over resource JSON.

* Types: Patient, Coverage, the PA exchange (Claim, ClaimResponse), ExplanationOfBenefit, and the US Core
  clinical data the payer holds for the patient (USCDI classes).
* Drugs are out: a Claim whose items are drugs (a MedicationRequest-based item, or an NDC / RxNorm
  product code) and the ClaimResponses answering it are never exported.
* Payer-to-Payer leaves out denied PAs: a ClaimResponse whose every item (and addItem) is not certified
  (X12 HCR01 ``A3``), and the Claim it answers. Partly approved PAs stay.
* Claims and encounters go without provider remittance and enrollee cost sharing: ``payment``,
  ``total``, ``benefitBalance`` and adjudication amounts are removed from Claims and
  ExplanationOfBenefits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from server.pas import urls as pas_urls
from server.pas.codes import ReviewAction
from server.search.values import DateRange, parse_date_range

Json = dict[str, Any]

# Each exported type -> the paths of its date of service, first found wins (none: undated).
SERVICE_DATE_PATHS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "Patient": (),
    "Coverage": (),
    "Claim": (
        ("item", "servicedDate"),
        ("item", "servicedPeriod", "start"),
        ("billablePeriod", "start"),
        ("created",),
    ),
    "ClaimResponse": (("created",),),
    "ExplanationOfBenefit": (
        ("item", "servicedDate"),
        ("item", "servicedPeriod", "start"),
        ("billablePeriod", "start"),
        ("created",),
    ),
    "Encounter": (("period", "start"),),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "DocumentReference": (("context", "period", "start"), ("date",)),
    "ServiceRequest": (("occurrenceDateTime",), ("occurrencePeriod", "start"), ("authoredOn",)),
    "DeviceRequest": (("occurrenceDateTime",), ("occurrencePeriod", "start"), ("authoredOn",)),
    "QuestionnaireResponse": (("authored",),),
}
EXPORT_TYPES: Final[tuple[str, ...]] = tuple(SERVICE_DATE_PATHS)
PA_TYPES: Final = frozenset({"Claim", "ClaimResponse"})

# Product code systems of drugs (NDC, RxNorm).
DRUG_CODE_SYSTEMS: Final = frozenset(
    {"http://hl7.org/fhir/sid/ndc", "http://www.nlm.nih.gov/research/umls/rxnorm"}
)
# Elements of provider remittance and enrollee cost sharing, removed from Claims and EOBs.
COST_ELEMENTS: Final = ("payment", "total", "benefitBalance")
COST_TYPES: Final = frozenset({"Claim", "ExplanationOfBenefit"})


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values(node[path[0]], path[1:])


def service_dates(resource: Json) -> list[DateRange]:
    """The dates of service of ``resource`` (empty: undated)."""
    for path in SERVICE_DATE_PATHS.get(str(resource.get("resourceType")), ()):
        found = [parse_date_range(v) for v in _values(resource, path) if isinstance(v, str)]
        ranges = [r for r in found if r is not None]
        if ranges:
            return ranges
    return []


def served_on_or_after(resource: Json, cutoff: str) -> bool:
    """True when undated, or some date of service reaches ``cutoff`` (a stored timestamp) or later."""
    dates = service_dates(resource)
    return not dates or any(d.high >= cutoff for d in dates)


def _codings(concept: Any) -> Iterable[Json]:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict):
                yield coding


def _is_drug_item(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if any(c.get("system") in DRUG_CODE_SYSTEMS for c in _codings(item.get("productOrService"))):
        return True
    for extension in item.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == pas_urls.EXT_REQUESTED_SERVICE:
            target = extension.get("valueReference")
            if isinstance(target, dict) and str(target.get("reference", "")).split("/")[-2:-1] == [
                "MedicationRequest"
            ]:
                return True
    return False


def is_drug_claim(claim: Json) -> bool:
    """A request for drugs: every item is a drug (MedicationRequest-based, NDC or RxNorm coded)."""
    items = [i for i in claim.get("item") or () if isinstance(i, dict)]
    return bool(items) and all(_is_drug_item(i) for i in items)


def _review_actions(adjudications: Any) -> Iterator[str]:
    for adjudication in adjudications or ():
        if not isinstance(adjudication, dict):
            continue
        for extension in adjudication.get("extension") or ():
            if not isinstance(extension, dict) or extension.get("url") != pas_urls.EXT_REVIEW_ACTION:
                continue
            for part in extension.get("extension") or ():
                if isinstance(part, dict) and part.get("url") == pas_urls.EXT_REVIEW_ACTION_CODE:
                    for coding in _codings(part.get("valueCodeableConcept")):
                        if isinstance(coding.get("code"), str):
                            yield coding["code"]


def is_denied(claim_response: Json) -> bool:
    """A denied PA: every item and added item answered ``A3`` (not certified)."""
    actions: list[str] = []
    for key in ("item", "addItem"):
        for item in claim_response.get(key) or ():
            if isinstance(item, dict):
                actions.extend(_review_actions(item.get("adjudication")))
    return bool(actions) and all(a == ReviewAction.NOT_CERTIFIED.value for a in actions)


def request_id(claim_response: Json) -> str | None:
    """The id of the Claim a ClaimResponse answers (``request``: ``Claim/<id>`` or an absolute URL)."""
    request = claim_response.get("request")
    reference = request.get("reference") if isinstance(request, dict) else None
    if not isinstance(reference, str):
        return None
    parts = reference.split("/")
    if len(parts) >= 2 and parts[-2] == "Claim":
        return parts[-1]
    return None


def _without_amounts(adjudications: Any) -> Any:
    if not isinstance(adjudications, list):
        return adjudications
    return [
        {k: v for k, v in a.items() if k != "amount"} if isinstance(a, dict) else a for a in adjudications
    ]


def without_cost_sharing(resource: Json) -> Json | None:
    """``resource`` without remittance and cost-sharing elements; ``None`` when it has none to remove."""
    if resource.get("resourceType") not in COST_TYPES:
        return None
    changed = any(key in resource for key in COST_ELEMENTS)
    out = {k: v for k, v in resource.items() if k not in COST_ELEMENTS}
    for key in ("item", "addItem"):
        items = out.get(key)
        if not isinstance(items, list):
            continue
        new_items = []
        for item in items:
            if isinstance(item, dict) and any(
                isinstance(a, dict) and "amount" in a for a in item.get("adjudication") or ()
            ):
                item = {**item, "adjudication": _without_amounts(item["adjudication"])}
                changed = True
            new_items.append(item)
        out[key] = new_items
    if isinstance(out.get("adjudication"), list) and any(
        isinstance(a, dict) and "amount" in a for a in out["adjudication"]
    ):
        out["adjudication"] = _without_amounts(out["adjudication"])
        changed = True
    return out if changed else None
