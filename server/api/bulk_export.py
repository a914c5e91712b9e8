"""Bulk export routes (FHIR Bulk Data 2.0, https://hl7.org/fhir/uv/bulkdata/STU2/export.html):

* ``GET|POST /fhir/Group/{id}/$export``: kick-off (``Prefer: respond-async``): 202 with the status URL in
  ``Content-Location``;
* ``GET /fhir/bulk-status/{job}``: 202 with ``X-Progress`` and ``Retry-After`` while running, 200 with the
  manifest when complete, the OperationOutcome of a failed job; ``DELETE`` cancels or deletes it (202);
* ``GET /fhir/bulk-files/{file}``: one NDJSON output file.

Status and files answer only the client that kicked the export off, with a valid access token
(``requiresAccessToken`` true); anyone else, and everything past its lifetime, gets 404. Thin routes: the
rules live in ``server/bulk``.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from igs.outcome import Failure, Issue, OperationOutcomeError, operation_outcome
from server.bulk.audit import export_kickoff, file_download
from server.bulk.codes import BULK_DATA_IG, GROUP_EXPORT_DEFINITION, NDJSON, PDEX_IG
from server.bulk.groups import attribution_group, ensure_may_export, find_group, payer_view
from server.bulk.jobs import COMPLETED, FAILED, Job, JobStore, Parameters
from server.bulk.manifest import manifest, status_url
from server.bulk.parameters import parameters_body, parse_parameters, require_respond_async
from server.fhir_json import FhirResponse, dumps, parse_resource, require_json_answer, require_json_body
from server.search.values import timestamp
from server.security.dependencies import audit_request
from server.services import Services, caller, principal_of, services

router = APIRouter(prefix="/fhir", dependencies=[Depends(caller)])
Svc = Annotated[Services, Depends(services)]
RETRY_AFTER_SECONDS = "2"


def register(svc: Services) -> None:
    svc.capabilities.add_operation("Group", "export", GROUP_EXPORT_DEFINITION)
    svc.capabilities.add_implementation_guide(BULK_DATA_IG)
    svc.capabilities.add_implementation_guide(PDEX_IG)


def _client_id(request: Request) -> str:
    principal = principal_of(request)
    return principal.client_id if principal is not None else ""


def _gone(what: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.NOT_FOUND, f"{what} is not known or has expired")


async def _kickoff(group_id: str, request: Request, svc: Services, parameters: Parameters) -> Response:
    base = svc.fhir_base(request)
    query = request.url.query
    kickoff_url = f"{base}/Group/{group_id}/$export" + (f"?{query}" if query else "")
    principal = principal_of(request)
    facts = audit_request(request)

    def run() -> Job:
        now = svc.now()
        group, tenant = find_group(payer_view(svc.repository), group_id)
        ensure_may_export(principal, group, tenant)
        attributed = attribution_group(group, tenant, now)
        job = JobStore(svc.engine).create(
            client_id=_client_id(request),
            group_id=group_id,
            request=kickoff_url,
            base=base,
            parameters=parameters,
            now=now,
        )
        if svc.audit is not None:
            svc.audit.write(
                export_kickoff(
                    attributed.reference,
                    job.job_id,
                    attributed.purpose.value,
                    request=facts,
                    source=svc.audit.source,
                    recorded=now,
                )
            )
        return job

    job = await run_in_threadpool(run)
    if svc.bulk is not None:
        svc.bulk.wake()
    note = Issue(severity="information", code="informational", diagnostics=f"export {job.job_id} accepted")
    return FhirResponse(
        operation_outcome([note]),
        status_code=202,
        headers={"Content-Location": status_url(base, job.job_id)},
    )


def _negotiate(request: Request) -> None:
    require_json_answer(request.headers.get("accept"), request.query_params.get("_format"))
    require_respond_async(request.headers.get("prefer"))


@router.get("/Group/{group_id}/$export")
async def export_get(group_id: str, request: Request, svc: Svc) -> Response:
    """Group-level export kick-off (Bulk Data 2.0 "Bulk Data Kick-off Request")."""
    _negotiate(request)
    return await _kickoff(group_id, request, svc, parse_parameters(list(request.query_params.multi_items())))


@router.post("/Group/{group_id}/$export")
async def export_post(group_id: str, request: Request, svc: Svc) -> Response:
    """Kick-off with a Parameters body."""
    _negotiate(request)
    require_json_body(request.headers.get("content-type"))
    body = parse_resource(await request.body(), "Parameters")
    pairs = list(request.query_params.multi_items()) + parameters_body(body)
    return await _kickoff(group_id, request, svc, parse_parameters(pairs))


def _owned_job(svc: Services, request: Request, job_id: str) -> Job:
    job = JobStore(svc.engine).get(job_id)
    if job is None or job.client_id != _client_id(request):
        raise _gone(f"export {job_id}")
    if job.expires is not None and job.expires <= timestamp(svc.now()):
        raise _gone(f"export {job_id}")
    return job


@router.get("/bulk-status/{job_id}")
async def export_status(job_id: str, request: Request, svc: Svc) -> Response:
    """Status request: in progress, error, or the completion manifest."""

    def run() -> Response:
        job = _owned_job(svc, request, job_id)
        if job.status == FAILED:
            raise OperationOutcomeError.of(Failure.INTERNAL, job.error or "the export failed")
        if job.status != COMPLETED:
            headers = {"X-Progress": job.progress or job.status, "Retry-After": RETRY_AFTER_SECONDS}
            return Response(status_code=202, headers=headers)
        files = JobStore(svc.engine).files(job.job_id)
        body = manifest(job, files, requires_access_token=svc.auth_required)
        headers = {}
        if job.expires is not None:
            expires = datetime.fromisoformat(f"{job.expires}+00:00")
            headers["Expires"] = format_datetime(expires, usegmt=True)
        return Response(dumps(body), status_code=200, media_type="application/json", headers=headers)

    return await run_in_threadpool(run)


@router.delete("/bulk-status/{job_id}")
async def export_delete(job_id: str, request: Request, svc: Svc) -> Response:
    """Delete request: cancels a running export or removes a finished one and its files."""

    def run() -> None:
        _owned_job(svc, request, job_id)
        JobStore(svc.engine).delete(job_id)

    await run_in_threadpool(run)
    note = Issue(severity="information", code="informational", diagnostics=f"export {job_id} deleted")
    return FhirResponse(operation_outcome([note]), status_code=202)


@router.get("/bulk-files/{file_id}")
async def export_file(file_id: str, request: Request, svc: Svc) -> Response:
    """One NDJSON output file (``application/fhir+ndjson``)."""
    facts = audit_request(request)

    def run() -> Response:
        jobs = JobStore(svc.engine)
        found = jobs.file(file_id)
        if found is None:
            raise _gone(f"file {file_id}")
        output, body = found
        job = _owned_job(svc, request, output.job_id)
        if svc.audit is not None:
            svc.audit.write(
                file_download(
                    f"Group/{job.group_id}",
                    job.job_id,
                    output.resource_type,
                    output.count,
                    request=facts,
                    source=svc.audit.source,
                    recorded=svc.now(),
                )
            )
        return Response(body, status_code=200, media_type=NDJSON)

    return await run_in_threadpool(run)
