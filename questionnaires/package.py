"""`Questionnaire/$questionnaire-package` (Da Vinci DTR 2.0.1 / 2.2.0 §4.4.1, OperationDefinition
`questionnaire-package`): Parameters in, Parameters out with one collection Bundle per Questionnaire.

Each Bundle (DTR-QPackageBundle) holds the Questionnaire first, one draft QuestionnaireResponse, every
Library in the cqf-library + depends-on closure and every ValueSet the form or its CQL uses, expanded
(all of ours are under the 40-code threshold of oper-15).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from uuid import uuid4

from igs.outcome import Issue, invalid, unprocessable
from questionnaires.canonicals import (
    ADAPT_QUESTIONNAIRE,
    BASE,
    CQF_LIBRARY,
    CRD_COVERAGE_INFORMATION_CODES,
    CRD_TEMP_CODES,
    DERIVATION_TYPE,
    DTR_QUESTIONNAIRE_RESPONSE,
    DTR_QUESTIONNAIRE_RESPONSE_ADAPT,
    INTENDED_USE,
    NEXT_QUESTION_PATH,
    PAS_TRIGGERED,
    QPACKAGE_OUTPUT_PARAMETERS,
    QR_CONTEXT,
    QR_COVERAGE,
    QUESTIONNAIRE_ADAPTIVE,
    DtrVersion,
    canonical_of,
    package_bundle_parameter,
)
from questionnaires.catalog import Catalog, Key, Resource
from questionnaires.shape import parameter_list
from questionnaires.valuesets import expanded

XHTML = "http://www.w3.org/1999/xhtml"
ORDER_TYPES = frozenset(
    {
        "Appointment",
        "Encounter",
        "CommunicationRequest",
        "DeviceRequest",
        "MedicationRequest",
        "NutritionOrder",
        "ServiceRequest",
        "SupplyRequest",
        "VisionPrescription",
    }
)


@dataclass(frozen=True)
class PackageRequest:
    """The parsed `$questionnaire-package` input Parameters (dtr-qpackage-input-parameters)."""

    coverage: Resource | None
    orders: tuple[Resource, ...]
    questionnaires: tuple[str, ...]
    context: str | None
    changed_since: str | None


def parse_package_request(parameters: Resource, version: DtrVersion) -> PackageRequest:
    """Validate the input Parameters; both DTR versions' spellings are accepted (dtr-1: at least one of
    order, questionnaire, context; 2.2.0 requires exactly one coverage)."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("$questionnaire-package expects a Parameters resource", "Parameters")
    coverages: list[Resource] = []
    orders: list[Resource] = []
    canonicals: list[str] = []
    context: str | None = None
    changed_since: str | None = None
    for index, param in enumerate(parameter_list(parameters)):
        where = f"Parameters.parameter[{index}]"
        name = param.get("name") if isinstance(param, dict) else None
        resource = param.get("resource") if isinstance(param, dict) else None
        if name == "coverage":
            if not isinstance(resource, dict) or resource.get("resourceType") != "Coverage":
                raise invalid("coverage must carry a Coverage resource", where)
            coverages.append(resource)
        elif name == "order":
            if not isinstance(resource, dict) or str(resource.get("resourceType")) not in ORDER_TYPES:
                raise invalid("order must carry a request, Encounter or Appointment resource", where)
            orders.append(resource)
        elif name == "questionnaire":
            value = param.get("valueCanonical") or param.get("valueUri")
            if not isinstance(value, str) or not value:
                raise invalid("questionnaire must be a valueCanonical", where)
            canonicals.append(value)
        elif name == "context":
            value = param.get("valueString")
            if not isinstance(value, str) or not value:
                raise invalid("context must be a valueString", where)
            context = value
        elif name == "changedsince":
            value = param.get("valueDateTime") or param.get("valueInstant")
            if not isinstance(value, str):
                raise invalid("changedsince must be a dateTime or instant", where)
            changed_since = value
        elif name == "referenced":
            continue  # DTR 2.0.1 only; nothing in our content needs it
        else:
            raise invalid(f"unknown $questionnaire-package parameter {name!r}", where)
    if version == "2.2.0" and len(coverages) != 1:
        raise invalid("DTR 2.2.0 requires exactly one coverage parameter", "Parameters.parameter")
    if not (orders or canonicals or context):
        raise invalid(
            "dtr-1: at least one of order, questionnaire or context is required", "Parameters.parameter"
        )
    return PackageRequest(
        coverage=coverages[0] if coverages else None,
        orders=tuple(orders),
        questionnaires=tuple(canonicals),
        context=context,
        changed_since=changed_since,
    )


def _order_codings(order: Resource) -> Iterator[tuple[str, str]]:
    for field in (
        "code",
        "codeCodeableConcept",
        "productCodeableConcept",
        "medicationCodeableConcept",
        "serviceType",
    ):
        concepts = order.get(field)
        for concept in concepts if isinstance(concepts, list) else [concepts]:
            codings = concept.get("coding") if isinstance(concept, dict) else None
            if isinstance(codings, list):
                for coding in codings:
                    system, code = (
                        (coding.get("system"), coding.get("code")) if isinstance(coding, dict) else (0, 0)
                    )
                    if isinstance(system, str) and isinstance(code, str):
                        yield system, code


def _reference(resource: Resource) -> Resource:
    """A reference to the client's copy of a resource it sent us (spec-139); without an id, its type."""
    if isinstance(resource.get("id"), str) and resource["id"]:
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}
    return {"type": resource["resourceType"]}


def draft_response(
    catalog: Catalog,
    key: Key,
    request: PackageRequest,
    version: DtrVersion,
    *,
    now: datetime,
    response_id: str,
    pas_triggered: bool = False,
    coverage_information: Resource | None = None,
    context_identifier: Resource | None = None,
) -> Resource:
    """The draft QuestionnaireResponse of one package (DTR 2.2.0 requires it; 2.0.1 allows it).

    ``coverage_information`` is the CRD coverage-information behind the request's ``context``: carried on
    the draft so the completed response keeps its coverage-assertion-id (DTR spec-33) and PAS can find it.
    ``context_identifier`` (an Identifier: the PAS trace number a pended request named as ``context``)
    becomes a ``qr-context`` reference by identifier, so the completed response is found by that number.
    """
    questionnaire = catalog.questionnaires[key]
    extensions: list[Resource] = []
    if request.coverage is not None:
        url = QR_CONTEXT if version == "2.0.1" else QR_COVERAGE
        extensions.append({"url": url, "valueReference": _reference(request.coverage)})
    extensions.extend({"url": QR_CONTEXT, "valueReference": _reference(order)} for order in request.orders)
    if context_identifier is not None:
        extensions.append(
            {"url": QR_CONTEXT, "valueReference": {"identifier": copy.deepcopy(dict(context_identifier))}}
        )
    system = CRD_TEMP_CODES if version == "2.0.1" else CRD_COVERAGE_INFORMATION_CODES
    extensions.append(
        {"url": INTENDED_USE, "valueCodeableConcept": {"coding": [{"system": system, "code": "withpa"}]}}
    )
    if coverage_information is not None:
        extensions.append(copy.deepcopy(dict(coverage_information)))
    adaptive = QUESTIONNAIRE_ADAPTIVE in {e["url"] for e in questionnaire.get("extension", [])}
    response: Resource = {"resourceType": "QuestionnaireResponse", "id": response_id}
    if version == "2.2.0" and request.coverage is not None:
        profile = DTR_QUESTIONNAIRE_RESPONSE_ADAPT if adaptive else DTR_QUESTIONNAIRE_RESPONSE
        response["meta"] = {"profile": [profile]}
    response["extension"] = extensions
    if adaptive:
        contained_id = f"{questionnaire['id']}-{response_id}"
        served = catalog.rendered[(version, key)]
        response["contained"] = [_adapted_questionnaire(served, contained_id, pas_triggered)]
        response["questionnaire"] = f"#{contained_id}"
    else:
        response["questionnaire"] = canonical_of(*key)
    response["status"] = "in-progress"
    beneficiary = (request.coverage or {}).get("beneficiary")
    if isinstance(beneficiary, dict) and "reference" in beneficiary:
        response["subject"] = {"reference": beneficiary["reference"]}
    response["authored"] = now.isoformat()
    return response


def _adapted_questionnaire(served: Resource, contained_id: str, pas_triggered: bool) -> Resource:
    """The contained dtr-questionnaire-adapt that `$next-question` grows item by item."""
    extensions = [e for e in served["extension"] if e["url"] in (QUESTIONNAIRE_ADAPTIVE, CQF_LIBRARY)]
    if pas_triggered:
        extensions.append({"url": PAS_TRIGGERED, "valueBoolean": True})
    return {
        "resourceType": "Questionnaire",
        "id": contained_id,
        "meta": {"profile": [ADAPT_QUESTIONNAIRE]},
        "text": {
            "status": "generated",
            "div": f'<div xmlns="{XHTML}">{escape(served["title"])}: asked step by step</div>',
        },
        "extension": extensions,
        "version": served["version"],
        "name": served["name"],
        "title": served["title"],
        "derivedFrom": [canonical_of(served["url"], served["version"])],
        "_derivedFrom": [
            {
                "extension": [
                    {
                        "url": DERIVATION_TYPE,
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/questionnaire-derivationType",
                                    "code": "extends",
                                }
                            ]
                        },
                    }
                ]
            }
        ],
        "status": "active",
        "subjectType": ["Patient"],
    }


def _with_service_base(questionnaire: Resource, service_base: str | None) -> Resource:
    """Point questionnaireAdaptive at this deployment's `$next-question` (the RI posts to it verbatim)."""
    if service_base is None or QUESTIONNAIRE_ADAPTIVE not in {
        e["url"] for e in questionnaire.get("extension", [])
    }:
        return questionnaire
    extensions = [
        {"url": QUESTIONNAIRE_ADAPTIVE, "valueUrl": service_base.rstrip("/") + NEXT_QUESTION_PATH}
        if e["url"] == QUESTIONNAIRE_ADAPTIVE
        else e
        for e in questionnaire["extension"]
    ]
    return {**questionnaire, "extension": extensions}


def _changed(catalog: Catalog, key: Key, since: str) -> bool:
    dates = [str(catalog.questionnaires[key].get("date", ""))]
    dates += [str(catalog.libraries[k].get("date", "")) for k in catalog.library_closure[key]]
    dates += [str(catalog.valuesets[k].get("date", "")) for k in catalog.valueset_closure[key]]
    # ISO dates compare as strings at the shared precision; a bare content date counts as its whole day.
    return any(d >= since[: len(d)] for d in dates if d)


def package_bundle(
    catalog: Catalog,
    key: Key,
    request: PackageRequest,
    version: DtrVersion,
    *,
    now: datetime,
    response_id: str,
    service_base: str | None = None,
    pas_triggered: bool = False,
    coverage_information: Resource | None = None,
    context_identifier: Resource | None = None,
) -> Resource:
    """One DTR-QPackageBundle: Questionnaire first, draft QR, Libraries, ValueSets."""
    base = (service_base or BASE).rstrip("/")
    questionnaire = _with_service_base(catalog.rendered[(version, key)], service_base)
    entries: list[Resource] = [
        {"fullUrl": f"{base}/Questionnaire/{questionnaire['id']}", "resource": questionnaire},
        {
            "fullUrl": f"urn:uuid:{response_id}",
            "resource": draft_response(
                catalog,
                key,
                request,
                version,
                now=now,
                response_id=response_id,
                pas_triggered=pas_triggered,
                coverage_information=coverage_information,
                context_identifier=context_identifier,
            ),
        },
    ]
    for lib_key in catalog.library_closure[key]:
        library = catalog.libraries[lib_key]
        entries.append({"fullUrl": f"{base}/Library/{library['id']}", "resource": library})
    for vs_key in catalog.valueset_closure[key]:
        valueset = expanded(catalog, vs_key, now=now)
        entries.append({"fullUrl": f"{base}/ValueSet/{valueset['id']}", "resource": valueset})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": now.isoformat(), "entry": entries}


def questionnaire_package(
    catalog: Catalog,
    inputs: Resource,
    version: DtrVersion,
    *,
    now: datetime,
    canonicals: Sequence[str] = (),
    service_base: str | None = None,
    pas_triggered: bool = False,
    new_id: Callable[[], str] = lambda: str(uuid4()),
    coverage_information: Resource | None = None,
    context_identifier: Resource | None = None,
) -> Resource:
    """`$questionnaire-package` (DTR §4.4.1): the output Parameters for `inputs`.

    Selection: the `questionnaire` input canonicals, plus `canonicals` the caller resolved from the
    `context` (the CRD decision's questionnaires for a coverage-assertion-id, or a PAS trace number);
    when neither names a form, the orders' codes pick forms by Questionnaire.useContext focus.
    Unknown requested canonicals become warnings in `outcome` (oper-9); no form at all is a 422 with
    instructions (oper-8). With `changedsince`, unchanged packages are left out. The result shares
    Questionnaire and Library resources with the catalog: serialize it, never mutate it. Set `pas_triggered`
    when `context` is a PAS trace number: adaptive sessions then never offer a satisfied-pa-id (spec-42).
    `coverage_information` (the CRD extension behind a coverage-assertion-id `context`) goes on each draft
    QuestionnaireResponse, so the completed response stays linked to the CRD decision (spec-33);
    `context_identifier` (the PAS trace number `context` named) goes on it as a `qr-context` by identifier.
    """
    request = parse_package_request(inputs, version)
    warnings: list[Issue] = []
    selected: list[Key] = []
    for canonical in (*request.questionnaires, *canonicals):
        key = catalog.questionnaire_key(canonical)
        if key is None:
            warnings.append(
                Issue(f"Questionnaire {canonical} is not known to this payer", "not-found", "warning")
            )
        elif key not in selected:
            selected.append(key)
    if not selected and not request.questionnaires and not canonicals:
        codings = (coding for order in request.orders for coding in _order_codings(order))
        selected = catalog.questionnaires_for_codes(codings)
    if not selected:
        raise unprocessable(
            "No documentation template applies to this request: check the ordered service codes, or call "
            "CRD first and pass its coverage-assertion-id as `context`",
            "Parameters.parameter",
            code="not-found",
        )
    if request.changed_since is not None:
        selected = [key for key in selected if _changed(catalog, key, request.changed_since)]
    name = package_bundle_parameter(version)
    parameters: list[Resource] = [
        {
            "name": name,
            "resource": package_bundle(
                catalog,
                key,
                request,
                version,
                now=now,
                response_id=new_id(),
                service_base=service_base,
                pas_triggered=pas_triggered,
                coverage_information=coverage_information,
                context_identifier=context_identifier,
            ),
        }
        for key in selected
    ]
    if warnings:
        outcome: dict[str, Any] = {
            "resourceType": "OperationOutcome",
            "issue": [w.to_fhir() for w in warnings],
        }
        parameters.append({"name": "outcome", "resource": outcome})
    result: Resource = {"resourceType": "Parameters"}
    if version == "2.2.0":
        result["meta"] = {"profile": [QPACKAGE_OUTPUT_PARAMETERS]}
    if parameters:  # nothing changed since `changedsince`: an empty Parameters (FHIR forbids empty arrays)
        result["parameter"] = parameters
    return result
