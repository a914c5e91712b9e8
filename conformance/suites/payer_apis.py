"""Bulk export checks for the CMS-0057-F payer APIs (FHIR Bulk Data 2.0 Group-level export, Provider
Access opt-out), spoken over HTTP to any server.

The checks set up their own members (Patients, an Organization, an opt-out Consent, an attribution
Group). Writing a Group is a payer administrator's job on PriorGate: with a token that may not write
Groups, the export checks are skipped. The export runs in the server's worker; the checks poll the
status URL (bounded) as a client would.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from conformance.framework import (
    CheckFailed,
    CheckSkipped,
    Suite,
    Target,
    check,
    expect,
    expect_operation_outcome,
    expect_status,
)
from conformance.requirements import rows_csv

Json = dict[str, Any]
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
GROUP_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
NDJSON = "application/fhir+ndjson"
# PriorGate's Provider Access opt-out marker (README "Payer APIs").
PAYER_API_CONSENT_SYSTEM = "https://priorgate.org/fhir/CodeSystem/payer-api-consent"
POLL_SECONDS = 60.0
POLL_INTERVAL = 0.2
_SPEC = "https://hl7.org/fhir/uv/bulkdata/STU2/export.html"


def _create(target: Target, resource: Json) -> str:
    response = target.post(target.fhir(resource["resourceType"]), json=resource)
    if resource["resourceType"] == "Group" and response.status_code in (401, 403):
        raise CheckSkipped("this token may not write Groups (payer administrators write attribution Groups)")
    expect_status(response, 201)
    return str(response.json()["id"])


def _members(target: Target) -> tuple[str, str, str]:
    """An attribution Group of two members, the second opted out of Provider Access: (group, kept, out)."""
    tag = uuid.uuid4().hex[:8]
    organization = _create(target, {"resourceType": "Organization", "name": f"Conformance clinic {tag}"})
    kept = _create(target, {"resourceType": "Patient", "name": [{"family": f"Kept{tag}"}]})
    out = _create(target, {"resourceType": "Patient", "name": [{"family": f"Out{tag}"}]})
    for patient in (kept, out):
        _create(
            target,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "conformance"},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": "2024-05-01",
            },
        )
    _create(
        target,
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": PAYER_API_CONSENT_SYSTEM, "code": "provider-access"}]}],
            "patient": {"reference": f"Patient/{out}"},
            "provision": {"type": "deny"},
        },
    )
    group = _create(
        target,
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "managingEntity": {"reference": f"Organization/{organization}"},
            "member": [{"entity": {"reference": f"Patient/{p}"}} for p in (kept, out)],
        },
    )
    return group, kept, out


def _relative(target: Target, url: str) -> str:
    """A URL the server returned, as a path the client's base URL reaches."""
    parsed = httpx.URL(url)
    return parsed.raw_path.decode() if parsed.is_absolute_url else url


def _kickoff(target: Target, group: str, query: str = "") -> str:
    response = target.get(target.fhir(f"Group/{group}/$export{query}"), headers=ASYNC)
    expect_status(response, 202)
    location = response.headers.get("content-location", "")
    expect(bool(location), "the kick-off answered 202 without Content-Location")
    return _relative(target, location)


def _wait(target: Target, status: str) -> Json:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        response = target.get(status)
        if response.status_code == 200:
            body = response.json()
            expect(isinstance(body, dict), "the manifest is not a JSON object")
            return dict(body)
        expect_status(response, 202)
        if time.monotonic() > deadline:
            raise CheckFailed(f"the export did not complete within {POLL_SECONDS:.0f} s")
        time.sleep(POLL_INTERVAL)


def _download(target: Target, manifest: Json) -> dict[str, Json]:
    found: dict[str, Json] = {}
    for entry in manifest.get("output", []):
        response = target.get(_relative(target, str(entry["url"])), headers={"Accept": NDJSON})
        expect_status(response, 200)
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        expect(kind == NDJSON, f"an output file is served as {kind!r}, not {NDJSON}")
        lines = [line for line in response.text.split("\n") if line.strip()]
        expect(
            len(lines) == entry.get("count"),
            f"{entry['url']} holds {len(lines)} lines, count says {entry.get('count')}",
        )
        for line in lines:
            resource = httpx.Response(200, content=line).json()
            expect(
                resource.get("resourceType") == entry["type"],
                f"a {entry['type']} file holds a {resource.get('resourceType')}",
            )
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


@check("capability-group-export", "the CapabilityStatement lists Group $export", "bulkdata-2.0.0#capability")
def capability(target: Target) -> None:
    response = target.get(target.fhir("metadata"))
    expect_status(response, 200)
    resources = [r for rest in response.json().get("rest", []) for r in rest.get("resource", [])]
    group: Json = next((r for r in resources if r.get("type") == "Group"), {})
    definitions = {op.get("definition") for op in group.get("operation", [])}
    expect(GROUP_EXPORT in definitions, f"Group does not list $export with {GROUP_EXPORT}")


@check(
    "kickoff-needs-respond-async",
    "a kick-off without Prefer: respond-async is refused",
    "bulkdata-2.0.0#kickoff-headers",
    "bulkdata-2.0.0#kickoff-error",
)
def kickoff_needs_async(target: Target) -> None:
    group, _, _ = _members(target)
    response = target.get(target.fhir(f"Group/{group}/$export"), headers={"Accept": "application/fhir+json"})
    expect_status(response, 400)
    expect_operation_outcome(response)


@check(
    "kickoff-unsupported-parameter",
    "an unsupported kick-off parameter is a 400 OperationOutcome",
    "bulkdata-2.0.0#kickoff-error",
)
def kickoff_unsupported(target: Target) -> None:
    group, _, _ = _members(target)
    response = target.get(
        target.fhir(f"Group/{group}/$export?_typeFilter=Observation%3Fstatus%3Dfinal"), headers=ASYNC
    )
    expect_status(response, 400)
    expect_operation_outcome(response)


@check(
    "kickoff-unknown-group",
    "exporting an unknown Group is a 404 OperationOutcome",
    "bulkdata-2.0.0#kickoff-error",
)
def kickoff_unknown(target: Target) -> None:
    response = target.get(target.fhir(f"Group/unknown-{uuid.uuid4().hex[:12]}/$export"), headers=ASYNC)
    expect_status(response, 404)
    expect_operation_outcome(response)


@check(
    "export-flow",
    "kick-off, poll, manifest, NDJSON download",
    "bulkdata-2.0.0#group-export",
    "bulkdata-2.0.0#kickoff-response",
    "bulkdata-2.0.0#status-in-progress",
    "bulkdata-2.0.0#status-complete",
    "bulkdata-2.0.0#file-request",
)
def export_flow(target: Target) -> None:
    group, kept, _ = _members(target)
    manifest = _wait(target, _kickoff(target, group))
    for key in ("transactionTime", "request", "requiresAccessToken", "output", "error"):
        expect(key in manifest, f"the manifest has no {key}")
    expect(isinstance(manifest["requiresAccessToken"], bool), "requiresAccessToken is not a boolean")
    expect(f"Group/{group}/$export" in str(manifest["request"]), "request is not the kick-off URL")
    for entry in manifest["output"]:
        expect({"type", "url", "count"} <= set(entry), f"an output entry lacks type, url or count: {entry}")
    found = _download(target, manifest)
    expect(f"Patient/{kept}" in found, "the attributed member's Patient is not in the export")


@check(
    "export-opt-out",
    "a member who opted out of Provider Access is absent",
    "cms-0057-f#provider-access-opt-out",
)
def export_opt_out(target: Target) -> None:
    group, kept, out = _members(target)
    found = _download(target, _wait(target, _kickoff(target, group)))
    expect(f"Patient/{kept}" in found, "the member who did not opt out is missing")
    expect(f"Patient/{out}" not in found, "the opted-out member's Patient was exported")
    leaked = [k for k, r in found.items() if r.get("subject", {}).get("reference") == f"Patient/{out}"]
    expect(not leaked, f"the opted-out member's data was exported: {leaked}")


@check("export-type", "_type limits the exported resource types", "bulkdata-2.0.0#type-parameter")
def export_type(target: Target) -> None:
    group, _, _ = _members(target)
    manifest = _wait(target, _kickoff(target, group, "?_type=Patient"))
    types = {entry.get("type") for entry in manifest.get("output", [])}
    expect(types == {"Patient"}, f"_type=Patient exported {sorted(map(str, types))}")


@check(
    "export-delete",
    "DELETE on the status URL ends the export; the status URL then answers 404",
    "bulkdata-2.0.0#delete-request",
)
def export_delete(target: Target) -> None:
    group, _, _ = _members(target)
    status = _kickoff(target, group)
    expect_status(target.delete(status), 202)
    gone = target.get(status)
    expect_status(gone, 404)
    expect_operation_outcome(gone)


REQUIREMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "bulkdata-2.0.0#capability",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#bulk-data-kick-off-request",
        "A server supporting Group-level export lists the group-export operation in its CapabilityStatement",
        "server",
    ),
    (
        "bulkdata-2.0.0#group-export",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#endpoint---group-of-patients",
        "GET [base]/Group/[id]/$export exports the data of the Group's member patients",
        "server",
    ),
    (
        "bulkdata-2.0.0#kickoff-headers",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#headers",
        "The kick-off request carries Accept: application/fhir+json and Prefer: respond-async",
        "server",
    ),
    (
        "bulkdata-2.0.0#kickoff-response",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#response---success",
        "A successful kick-off answers 202 Accepted with a Content-Location header naming the status URL",
        "server",
    ),
    (
        "bulkdata-2.0.0#kickoff-error",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#response---error-eg-unsupported-search-parameter",
        "A kick-off that fails answers 4XX or 5XX with an OperationOutcome",
        "server",
    ),
    (
        "bulkdata-2.0.0#status-in-progress",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#response---in-progress-status",
        "While the export runs, the status URL answers 202 Accepted (optionally X-Progress)",
        "server",
    ),
    (
        "bulkdata-2.0.0#status-complete",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#response---complete-status",
        "When complete, the status URL answers 200 with a JSON manifest: transactionTime, request, "
        "requiresAccessToken, output (type, url, count), error",
        "server",
    ),
    (
        "bulkdata-2.0.0#file-request",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#file-request",
        "Output files are served as application/fhir+ndjson, one resource of the entry's type per line",
        "server",
    ),
    (
        "bulkdata-2.0.0#type-parameter",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#query-parameters",
        "_type restricts the export to the listed resource types",
        "server",
    ),
    (
        "bulkdata-2.0.0#delete-request",
        "hl7.fhir.uv.bulkdata",
        "2.0.0",
        f"{_SPEC}#bulk-data-delete-request",
        "DELETE on the status URL answers 202; later status requests answer 404 with an OperationOutcome",
        "server",
    ),
    (
        "cms-0057-f#provider-access-opt-out",
        "cms-0057-f",
        "2024",
        "https://www.federalregister.gov/d/2024-00895",
        "Provider Access: a patient who opted out has no data shared with providers",
        "server",
    ),
)


def requirements_csv() -> str:
    return rows_csv(REQUIREMENTS)


SUITE = Suite(
    name="payer-apis",
    title="CMS-0057-F payer APIs: Bulk Data Group export, Provider Access opt-out",
    checks=(
        capability,
        kickoff_needs_async,
        kickoff_unsupported,
        kickoff_unknown,
        export_flow,
        export_opt_out,
        export_type,
        export_delete,
    ),
)
