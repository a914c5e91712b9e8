"""DTR payer operations (https://hl7.org/fhir/us/davinci-dtr/): thin routes over ``questionnaires``.

``/fhir/...`` answers in the configured default DTR version; ``/dtr/{version}/...`` pins 2.0.1 or 2.2.0
explicitly, so clients of both versions can share one server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from igs.outcome import Failure, Issue, OperationOutcomeError, invalid, operation_outcome, unprocessable
from questionnaires import (
    DTR_VERSIONS,
    DtrVersion,
    expand_valueset,
    log_questionnaire_errors,
    next_question,
    parse_package_request,
    questionnaire_package,
)
from server.api.fhir import negotiate, pretty, read_resource
from server.fhir_json import FhirResponse
from server.pas.service import PasService
from server.services import Services, caller, scoped_pas, scoped_services, services

log = logging.getLogger("priorgate.dtr")

# OperationDefinition canonicals, as advertised in the CapabilityStatement.
QUESTIONNAIRE_PACKAGE = "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package"
LOG_QUESTIONNAIRE_ERRORS = "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/log-questionnaire-errors"
NEXT_QUESTION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-next-question"
VALUESET_EXPAND = "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"

router = APIRouter(dependencies=[Depends(negotiate), Depends(caller)])
Svc = Annotated[Services, Depends(services)]


def register(svc: Services) -> None:
    svc.capabilities.add_operation("Questionnaire", "questionnaire-package", QUESTIONNAIRE_PACKAGE)
    svc.capabilities.add_operation("Questionnaire", "next-question", NEXT_QUESTION)
    svc.capabilities.add_operation("Questionnaire", "log-questionnaire-errors", LOG_QUESTIONNAIRE_ERRORS)
    svc.capabilities.add_operation("ValueSet", "expand", VALUESET_EXPAND)


def _version(svc: Services, pinned: str | None) -> DtrVersion:
    chosen = pinned or svc.settings.dtr_version
    if chosen not in DTR_VERSIONS:
        raise OperationOutcomeError.of(
            Failure.NOT_FOUND, f"DTR version {chosen!r} is not served; use one of {', '.join(DTR_VERSIONS)}"
        )
    return cast(DtrVersion, chosen)


@dataclass(frozen=True)
class _Selection:
    """What the caller's context selects, and what the draft QuestionnaireResponses carry because of it."""

    canonicals: tuple[str, ...] = ()
    coverage_information: dict[str, Any] | None = None  # CRD coverage-information (coverage-assertion-id)
    context_identifier: dict[str, Any] | None = None  # the PAS trace number (DTR launched from a pend)


def _selected_canonicals(
    svc: Services,
    inputs: dict[str, Any],
    version: DtrVersion,
    questionnaire_id: str | None,
    pas: Callable[[], PasService],
) -> _Selection:
    """The questionnaires the caller's context selects: an instance-level call names one; a CRD
    ``coverage-assertion-id`` in ``context`` selects the questionnaires its decision named (DTR spec-107);
    a PAS trace number (or Claim identifier) of a pended request of the caller's organization selects the
    questionnaires its pended items asked for (DTR spec-109, PAS ainfo-3)."""
    parsed = parse_package_request(inputs, version)
    context = parsed.context
    stored = svc.assertions.find(context) if context else None
    pended = pas().dtr_context(context) if context and stored is None else None
    if context and stored is None and pended is None and questionnaire_id is None:
        if not parsed.orders and not parsed.questionnaires:  # nothing else selects a form (DTR spec-130)
            raise unprocessable(
                f"context {context!r} names no CRD coverage assertion and no prior authorization request "
                "of this organization; pass the coverage-assertion-id CRD returned, or the trace number of "
                "a pended PAS request",
                "Parameters.parameter.where(name='context')",
                code="not-found",
            )
    coverage_information = dict(stored.extension) if stored is not None and stored.extension else None
    context_identifier = pended.trace.to_fhir() if pended is not None else None
    if questionnaire_id is not None:
        canonicals: tuple[str, ...] = (_questionnaire_canonical(svc, questionnaire_id),)
    elif stored is not None:
        canonicals = stored.questionnaires
    else:
        canonicals = pended.questionnaires if pended is not None else ()
    return _Selection(canonicals, coverage_information, context_identifier)


def _questionnaire_canonical(svc: Services, questionnaire_id: str) -> str:
    for (url, version), questionnaire in svc.catalog.questionnaires.items():
        if questionnaire.get("id") == questionnaire_id:
            return f"{url}|{version}"
    raise OperationOutcomeError.of(Failure.NOT_FOUND, f"Questionnaire/{questionnaire_id} is not known")


async def _package(
    request: Request, svc: Services, pinned: str | None, questionnaire_id: str | None
) -> Response:
    version = _version(svc, pinned)
    inputs = await read_resource(request)
    if inputs.get("resourceType") != "Parameters":
        raise invalid("$questionnaire-package takes a Parameters resource", "Parameters")
    selection = await run_in_threadpool(
        _selected_canonicals,
        svc,
        inputs,
        version,
        questionnaire_id,
        lambda: scoped_pas(request, scoped_services(request)),
    )
    base = svc.fhir_base(request)
    if pinned is not None:
        base = base.removesuffix("/fhir") + f"/dtr/{version}"
    result = questionnaire_package(
        svc.catalog,
        inputs,
        version,
        now=svc.now(),
        canonicals=selection.canonicals,
        service_base=base,
        pas_triggered=selection.context_identifier is not None,  # never a satisfied-pa-id (spec-42)
        coverage_information=selection.coverage_information,
        context_identifier=selection.context_identifier,
    )
    if not result.get("parameter"):
        # changedsince: nothing changed since the client's copy (DTR oper-20).
        return Response(status_code=200)
    return FhirResponse(result, pretty=pretty(request))


@router.post("/fhir/Questionnaire/$questionnaire-package")
@router.post("/fhir/$questionnaire-package")
async def package_default(request: Request, svc: Svc) -> Response:
    """`$questionnaire-package` (DTR §4.4.1) in the default DTR version."""
    return await _package(request, svc, None, None)


@router.post("/fhir/Questionnaire/{questionnaire_id}/$questionnaire-package")
async def package_instance(questionnaire_id: str, request: Request, svc: Svc) -> Response:
    return await _package(request, svc, None, questionnaire_id)


@router.post("/dtr/{version}/Questionnaire/$questionnaire-package")
@router.post("/dtr/{version}/$questionnaire-package")
async def package_pinned(version: str, request: Request, svc: Svc) -> Response:
    return await _package(request, svc, version, None)


async def _next(request: Request, svc: Services, pinned: str | None) -> Response:
    _version(svc, pinned)
    body = await read_resource(request)
    answer = await run_in_threadpool(lambda: next_question(svc.catalog, body, now=svc.now()))
    return FhirResponse(answer, pretty=pretty(request))


@router.post("/fhir/Questionnaire/$next-question")
async def next_default(request: Request, svc: Svc) -> Response:
    """SDC `$next-question` for adaptive questionnaires (DTR §4.4.3)."""
    return await _next(request, svc, None)


@router.post("/dtr/{version}/Questionnaire/$next-question")
async def next_pinned(version: str, request: Request, svc: Svc) -> Response:
    return await _next(request, svc, version)


async def _log_errors(request: Request, svc: Services, pinned: str | None) -> Response:
    _version(svc, pinned)
    report = log_questionnaire_errors(await read_resource(request))
    # DTR: the client must not send PHI here; the report is logged for content authors.
    log.warning(
        "DTR client reported %d error outcome(s) for %s",
        len(report.outcomes),
        ", ".join(report.questionnaires) or "(no questionnaire named)",
    )
    note = Issue(severity="information", code="informational", diagnostics="Questionnaire errors logged")
    return FhirResponse(operation_outcome([note]), pretty=pretty(request))


@router.post("/fhir/Questionnaire/$log-questionnaire-errors")
async def log_default(request: Request, svc: Svc) -> Response:
    """`$log-questionnaire-errors` (DTR §4.4.4)."""
    return await _log_errors(request, svc, None)


@router.post("/dtr/{version}/Questionnaire/$log-questionnaire-errors")
async def log_pinned(version: str, request: Request, svc: Svc) -> Response:
    return await _log_errors(request, svc, version)


def _expand_arguments(pairs: list[tuple[Any, Any]]) -> tuple[str, str | None, str | None]:
    values = {name: value for name, value in pairs}
    url = values.get("url")
    if not isinstance(url, str) or not url:
        raise invalid("ValueSet/$expand needs the url parameter", "Parameters.parameter.where(name='url')")
    version = values.get("valueSetVersion")
    text = values.get("filter")
    return url, version if isinstance(version, str) else None, text if isinstance(text, str) else None


@router.get("/fhir/ValueSet/$expand")
async def expand_get(request: Request, svc: Svc) -> Response:
    """`ValueSet/$expand` for the value sets the DTR content uses (current date, active codes)."""
    url, version, text = _expand_arguments(list(request.query_params.multi_items()))
    expansion = expand_valueset(svc.catalog, url, version, now=svc.now(), text_filter=text)
    return FhirResponse(expansion, pretty=pretty(request))


@router.post("/fhir/ValueSet/$expand")
async def expand_post(request: Request, svc: Svc) -> Response:
    body = await read_resource(request)
    if body.get("resourceType") != "Parameters":
        raise invalid("ValueSet/$expand takes a Parameters resource", "Parameters")
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list):
        raise invalid("Parameters.parameter must be an array", "Parameters.parameter", code="structure")
    pairs = [
        (p["name"], next((v for k, v in p.items() if k.startswith("value")), None))
        for p in parameters
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    ]
    url, version, text = _expand_arguments(pairs)
    expansion = expand_valueset(svc.catalog, url, version, now=svc.now(), text_filter=text)
    return FhirResponse(expansion, pretty=pretty(request))
