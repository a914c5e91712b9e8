"""Da Vinci CRD server checks, modelled on the CRD test kit's server groups (CRD 2.2 and CDS Hooks 2.0).

The kit acts as a CRD client: discovery, then one call per hook with request bodies the tester supplies,
then the response rules (card fields, coverage-information systemActions on the primary hooks, External
Reference and Instructions cards demonstrated across hooks) and error handling. The request bodies
here are ``conformance/payloads/crd/<hook>.json``, written for the demo payer (PGDEMO) and carrying
their data as prefetch, so the server never needs to query back. When the target's headers carry an
``Authorization`` header it is sent with every call; otherwise calls are anonymous (a server in CDS
development mode), and the unsigned-JWT check skips.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from conformance.framework import (
    Check,
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

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "crd"
HOOKS = (
    "appointment-book",
    "encounter-start",
    "encounter-discharge",
    "order-dispatch",
    "order-select",
    "order-sign",
)
# Hooks on which coverage information SHALL be returned (CRD 2.2 hook-16, hook-26, hook-33).
PRIMARY_HOOKS = ("appointment-book", "order-dispatch", "order-sign")
# Context fields each hook's request carries (CDS Hooks library 1.0; order-dispatch 1.1).
REQUIRED_CONTEXT = {
    "appointment-book": ("userId", "patientId", "appointments"),
    "encounter-start": ("userId", "patientId", "encounterId"),
    "encounter-discharge": ("userId", "patientId", "encounterId"),
    "order-dispatch": ("patientId", "dispatchedOrders", "performer"),
    "order-select": ("userId", "patientId", "selections", "draftOrders"),
    "order-sign": ("userId", "patientId", "draftOrders"),
}
EXT_COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
# Resource types a coverage-information systemAction may update, per hook family.
COVERAGE_INFO_TARGETS = {
    "appointment-book": frozenset({"Appointment", "ServiceRequest", "DeviceRequest", "MedicationRequest"}),
    "order": frozenset(
        {
            "CommunicationRequest",
            "DeviceRequest",
            "MedicationRequest",
            "NutritionOrder",
            "ServiceRequest",
            "VisionPrescription",
        }
    ),
}
# ext-coverage-information covered (1..1), CRD 2.2 values (2.0.1 lacks indeterminate).
COVERED_CODES = frozenset({"covered", "not-covered", "conditional", "indeterminate"})
INDICATORS = frozenset({"info", "warning", "critical"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
SUMMARY_LIMIT = 140
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def payload(hook: str) -> Json:
    """The demo request body for ``hook`` (a fresh copy with a new hookInstance per call)."""
    body: Json = json.loads((PAYLOADS / f"{hook}.json").read_text(encoding="utf-8"))
    body["hookInstance"] = str(uuid.uuid4())
    return body


def _discovery(target: Target) -> list[Json]:
    response = target.get(target.cds_base)
    expect_status(response, 200)
    try:
        body = response.json()
    except ValueError as exc:
        raise CheckFailed(f"discovery is not JSON: {response.text[:200]!r}") from exc
    expect(isinstance(body, dict), "discovery is not a JSON object")
    services = body.get("services")
    expect(isinstance(services, list), "discovery has no services array")
    return [s for s in services if isinstance(s, dict)]


def _service_url(target: Target, hook: str) -> str:
    ids = [s.get("id") for s in _discovery(target) if s.get("hook") == hook]
    if not ids or not isinstance(ids[0], str):
        raise CheckSkipped(f"discovery lists no {hook} service")
    return f"{target.cds_base.rstrip('/')}/{ids[0]}"


def _call(target: Target, hook: str) -> tuple[Json, Json]:
    """POST the demo body for ``hook`` to its service; 200 with a JSON object, or the check fails."""
    request = payload(hook)
    response = target.post(_service_url(target, hook), json=request)
    expect_status(response, 200)
    try:
        body = response.json()
    except ValueError as exc:
        raise CheckFailed(f"{hook} answered non-JSON: {response.text[:200]!r}") from exc
    expect(isinstance(body, dict), f"{hook} answered a JSON {type(body).__name__}, not an object")
    return request, dict(body)


def _cards(body: Json) -> list[Json]:
    cards = body.get("cards")
    if not isinstance(cards, list):
        raise CheckFailed("the response has no cards array")
    return [c for c in cards if isinstance(c, dict)]


def _card_problems(card: Json) -> list[str]:
    """CDS Hooks 2.0 card attributes plus CRD's CRDHooksResponseBase constraints (resp-3, resp-5, resp-13)."""
    problems: list[str] = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary:
        problems.append("card has no summary")
    elif len(summary) >= SUMMARY_LIMIT:
        problems.append(f"summary is {len(summary)} characters, the limit is under {SUMMARY_LIMIT}")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"indicator {card.get('indicator')!r} is not info, warning or critical")
    if not isinstance(card.get("uuid"), str):
        problems.append("card has no uuid (resp-13)")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str) or not source["label"]:
        problems.append("card source has no label")
    else:
        topic = source.get("topic")
        if not isinstance(topic, dict) or not topic.get("code") or not topic.get("system"):
            problems.append("card source.topic needs code and system (resp-5)")
    for link in card.get("links") or []:
        if not isinstance(link, dict) or not link.get("label") or not link.get("url"):
            problems.append("link needs label and url")
        elif link.get("type") not in ("absolute", "smart"):
            problems.append(f"link type {link.get('type')!r} is not absolute or smart")
    suggestions = card.get("suggestions") or []
    for suggestion in suggestions:
        if not isinstance(suggestion, dict) or not suggestion.get("label"):
            problems.append("suggestion has no label")
            continue
        if not isinstance(suggestion.get("uuid"), str):
            problems.append("suggestion has no uuid (resp-3)")
        for action in suggestion.get("actions") or []:
            problems.extend(_action_problems(action))
    if suggestions and card.get("selectionBehavior") not in ("at-most-one", "any"):
        problems.append("a card with suggestions needs selectionBehavior at-most-one or any")
    return problems


def _action_problems(action: Any) -> list[str]:
    if not isinstance(action, dict):
        return ["action is not an object"]
    problems: list[str] = []
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        problems.append(f"action type {kind!r} is not create, update or delete")
    if not isinstance(action.get("description"), str) or not action["description"]:
        problems.append("action has no description")
    if kind in ("create", "update"):
        resource = action.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(f"{kind} action has no FHIR resource")
    if kind == "delete" and not action.get("resourceId"):
        problems.append("delete action has no resourceId")
    return problems


def _per_hook(
    prefix: str, title: str, *requirements: str, hooks: tuple[str, ...] = HOOKS
) -> Callable[[Callable[[Target, str], None]], tuple[Check, ...]]:
    def wrap(function: Callable[[Target, str], None]) -> tuple[Check, ...]:
        return tuple(
            check(f"{prefix}-{hook}", f"{title} ({hook})", *requirements)(
                lambda target, hook=hook: function(target, hook)  # type: ignore[misc]
            )
            for hook in hooks
        )

    return wrap


def _sub_extensions(extension: Json, url: str) -> list[Any]:
    return [
        sub for sub in extension.get("extension") or [] if isinstance(sub, dict) and sub.get("url") == url
    ]


def _request_resources(request: Json) -> Iterator[Json]:
    """Every FHIR resource the request carries in its context and prefetch."""
    for value in [*request.get("context", {}).values(), *(request.get("prefetch") or {}).values()]:
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            yield from (e["resource"] for e in value.get("entry", []) if isinstance(e.get("resource"), dict))
        elif isinstance(value, dict) and "resourceType" in value:
            yield value


def _coverage_information(hook: str, request: Json, body: Json) -> list[tuple[Json, list[Json]]]:
    """The systemActions carrying coverage information, with their coverage-information extensions."""
    found: list[tuple[Json, list[Json]]] = []
    for action in body.get("systemActions") or []:
        resource = action.get("resource") if isinstance(action, dict) else None
        if not isinstance(resource, dict):
            continue
        extensions = [
            e
            for e in resource.get("extension") or []
            if isinstance(e, dict) and e.get("url") == EXT_COVERAGE_INFORMATION
        ]
        if extensions:
            found.append((resource, extensions))
    expect(bool(found), f"{hook} returned no systemAction carrying coverage information")
    return found


# -- discovery -------------------------------------------------------------------------------------


@check(
    "crd_discovery_endpoint_test",
    "GET /cds-services answers 200 with a JSON object",
    "cds-hooks-2.0#discovery",
)
def discovery_endpoint(target: Target) -> None:
    _discovery(target)


@check(
    "crd_discovery_services_validation",
    "every service has hook, description and id strings, and there is one per CRD hook",
    "cds-hooks-2.0#discovery",
    "davinci-crd-2.2#hook-4",
)
def discovery_services(target: Target) -> None:
    services = _discovery(target)
    expect(bool(services), "discovery lists no services")
    for service in services:
        for name in ("hook", "description", "id"):
            expect(isinstance(service.get(name), str) and bool(service[name]), f"a service lacks {name}")
    ids = [s["id"] for s in services]
    expect(len(ids) == len(set(ids)), f"service ids repeat: {ids}")
    missing = sorted(set(HOOKS) - {s["hook"] for s in services})
    expect(not missing, f"no service for {missing} (hook-4)")


@check(
    "crd-discovery-version",
    "every CRD service declares the CRD versions it supports (davinci-crd.version)",
    "davinci-crd-2.2#dev-1",
)
def discovery_version(target: Target) -> None:
    for service in _discovery(target):
        versions = (service.get("extension") or {}).get("davinci-crd.version")
        if not isinstance(versions, list) or not versions or not all(isinstance(v, str) for v in versions):
            raise CheckFailed(
                f"service {service.get('id')!r} has no davinci-crd.version string array (dev-1)"
            )
        expect(
            all(re.fullmatch(r"\d+\.\d+", v) for v in versions),
            f"service {service.get('id')!r} versions {versions} are not major.minor",
        )


# -- the request bodies the suite sends -------------------------------------------------------------


@check(
    "crd_service_request_required_fields_validation",
    "the demo hook requests carry hook, a UUID hookInstance and each hook's context fields",
    "cds-hooks-2.0#http-request",
)
def request_required_fields(target: Target) -> None:
    for hook in HOOKS:
        body = payload(hook)
        expect(body.get("hook") == hook, f"{hook}.json names hook {body.get('hook')!r}")
        expect(bool(UUID.match(str(body.get("hookInstance")))), f"{hook}.json hookInstance is not a UUID")
        context = body.get("context")
        if not isinstance(context, dict):
            raise CheckFailed(f"{hook}.json has no context object")
        missing = [name for name in REQUIRED_CONTEXT[hook] if name not in context]
        expect(not missing, f"{hook}.json context lacks {missing}")
        if "fhirAuthorization" in body:
            expect("fhirServer" in body, f"{hook}.json has fhirAuthorization without fhirServer")


# -- per-hook calls ---------------------------------------------------------------------------------


@_per_hook(
    "crd_service_call_test",
    "the demo request answers 200 with JSON",
    "cds-hooks-2.0#calling-a-cds-service",
)
def service_call(target: Target, hook: str) -> None:
    _call(target, hook)


@_per_hook(
    "crd_service_response_validation",
    "cards and systemActions meet the CDS Hooks and CRD response rules",
    "cds-hooks-2.0#cds-service-response",
    "davinci-crd-2.2#resp-3",
    "davinci-crd-2.2#resp-5",
    "davinci-crd-2.2#resp-13",
)
def response_validation(target: Target, hook: str) -> None:
    _, body = _call(target, hook)
    problems = [f"card {n}: {p}" for n, card in enumerate(_cards(body)) for p in _card_problems(card)]
    actions = body.get("systemActions")
    if hook in PRIMARY_HOOKS:
        expect(isinstance(actions, list), f"{hook} response has no systemActions array")
    if actions is not None:
        expect(isinstance(actions, list), "systemActions is not an array")
        problems += [f"systemAction {n}: {p}" for n, a in enumerate(actions) for p in _action_problems(a)]
    expect(not problems, "; ".join(problems))


@_per_hook(
    "crd_coverage_info_system_action_validation",
    "coverage information arrives as an update systemAction on the request, one assertion id per coverage",
    "davinci-crd-2.2#resp-25",
    "davinci-crd-2.2#resp-26",
    "davinci-crd-2.2#resp-32",
    "davinci-crd-2.2#resp-37",
    "davinci-crd-2.2#hook-16",
    "davinci-crd-2.2#hook-26",
    "davinci-crd-2.2#hook-33",
    hooks=PRIMARY_HOOKS,
)
def coverage_info_system_action(target: Target, hook: str) -> None:
    request, body = _call(target, hook)
    originals = {(r.get("resourceType"), r.get("id")): r for r in _request_resources(request)}
    allowed = COVERAGE_INFO_TARGETS["appointment-book" if hook == "appointment-book" else "order"]
    ids_by_coverage: dict[str, set[str]] = {}
    for action in body.get("systemActions") or []:
        expect(isinstance(action, dict), "a systemAction is not an object")
    for resource, extensions in _coverage_information(hook, request, body):
        kind, rid = resource.get("resourceType"), resource.get("id")
        expect(kind in allowed, f"coverage information on a {kind}, not one of {sorted(allowed)}")
        action = next(a for a in body["systemActions"] if a.get("resource") is resource)
        expect(action.get("type") == "update", f"coverage information sent as {action.get('type')!r}")
        original = originals.get((kind, rid))
        expect(original is not None, f"{kind}/{rid} is not a resource of the request")
        assert original is not None
        expect(
            {k: v for k, v in resource.items() if k != "extension"}
            == {k: v for k, v in original.items() if k != "extension"},
            f"{kind}/{rid} came back changed beyond its extensions (resp-37)",
        )
        for extension in extensions:
            coverage = _sub_extensions(extension, "coverage")
            expect(len(coverage) == 1, f"{kind}/{rid}: coverage-information needs one coverage")
            reference = str((coverage[0].get("valueReference") or {}).get("reference"))
            covered = _sub_extensions(extension, "covered")
            expect(
                len(covered) == 1 and covered[0].get("valueCode") in COVERED_CODES,
                f"{kind}/{rid}: covered must be one of {sorted(COVERED_CODES)}",
            )
            expect(
                len(_sub_extensions(extension, "date")) == 1,
                f"{kind}/{rid}: coverage-information has no date",
            )
            assertion = _sub_extensions(extension, "coverage-assertion-id")
            expect(len(assertion) == 1, f"{kind}/{rid}: {len(assertion)} coverage-assertion-id values")
            expect(
                isinstance(assertion[0].get("valueString"), str) and bool(assertion[0]["valueString"]),
                f"{kind}/{rid}: coverage-assertion-id has no valueString",
            )
            expect(
                len(_sub_extensions(extension, "satisfied-pa-id")) <= 1,
                f"{kind}/{rid}: more than one satisfied-pa-id",
            )
            ids_by_coverage.setdefault(reference, set()).add(assertion[0]["valueString"])
    coverages = list(ids_by_coverage)
    for n, first in enumerate(coverages):
        for second in coverages[n + 1 :]:
            shared = ids_by_coverage[first] & ids_by_coverage[second]
            expect(not shared, f"{first} and {second} share coverage-assertion-id {shared} (resp-32)")


# -- response types demonstrated across hooks -------------------------------------------------------


def _all_cards(target: Target) -> list[Json]:
    cards: list[Json] = []
    for hook in HOOKS:
        try:
            _, body = _call(target, hook)
        except CheckSkipped:
            continue
        cards += [c for c in _cards(body) if not _card_problems(c)]
    return cards


@check(
    "crd_external_reference_card_across_hooks_validation",
    "some hook returns a valid External Reference card (all links absolute)",
    "davinci-crd-2.2#resp-14",
    "davinci-crd-2.2#resp-17",
)
def external_reference_card(target: Target) -> None:
    cards = _all_cards(target)
    expect(
        any(c.get("links") and all(link.get("type") == "absolute" for link in c["links"]) for c in cards),
        "no hook returned a valid card whose links are all absolute",
    )


@check(
    "crd_valid_instructions_card_received_across_hooks",
    "some hook returns a valid Instructions card (neither links nor suggestions)",
    "davinci-crd-2.2#resp-14",
    "davinci-crd-2.2#resp-23",
)
def instructions_card(target: Target) -> None:
    cards = _all_cards(target)
    expect(
        any(not c.get("links") and not c.get("suggestions") for c in cards),
        "no hook returned a valid card without links and suggestions",
    )


# -- error handling ---------------------------------------------------------------------------------


@check(
    "crd-malformed-body",
    "a body that is not JSON answers 400 with an OperationOutcome",
    "davinci-crd-2.2#hook-10",
    "davinci-crd-2.2#hook-13",
)
def malformed_body(target: Target) -> None:
    response = target.post(
        _service_url(target, "order-sign"),
        content=b'{"hook": "order-sign", ',
        headers={"Content-Type": "application/json"},
    )
    expect_status(response, 400)
    expect_operation_outcome(response)


@check(
    "crd-missing-required-fields",
    "a request without hookInstance and context answers 400 with an OperationOutcome",
    "davinci-crd-2.2#hook-10",
    "davinci-crd-2.2#hook-13",
)
def missing_fields(target: Target) -> None:
    response = target.post(_service_url(target, "order-sign"), json={"hook": "order-sign"})
    expect_status(response, 400)
    expect_operation_outcome(response)


@check(
    "crd-wrong-hook",
    "a request for another hook than the service's answers 400 with an OperationOutcome",
    "davinci-crd-2.2#hook-10",
    "davinci-crd-2.2#hook-13",
)
def wrong_hook(target: Target) -> None:
    response = target.post(_service_url(target, "order-sign"), json=payload("encounter-start"))
    expect_status(response, 400)
    expect_operation_outcome(response)


# -- client authentication --------------------------------------------------------------------------


def _b64(data: Json) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_jwt(audience: str, issuer: str = "https://conformance.invalid") -> str:
    """A CDS Hooks client JWT with ``alg: none`` and an empty signature."""
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT", "kid": "conformance"}
    claims = {"iss": issuer, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return f"{_b64(header)}.{_b64(claims)}."


@check(
    "crd-unsigned-jwt-refused",
    "outside development mode, a client JWT with alg none is refused",
    "cds-hooks-2.0#trusting-cds-clients",
)
def unsigned_jwt_refused(target: Target) -> None:
    url = _service_url(target, "order-sign")
    headers = {k: v for k, v in target.headers.items() if k.lower() != "authorization"}
    anonymous = target.client.post(url, json=payload("order-sign"), headers=headers)
    if anonymous.is_success:
        raise CheckSkipped("the server accepts anonymous calls (CDS development mode); nothing to refuse")
    audience = str(httpx.URL(str(target.client.base_url)).join(url))
    forged = target.client.post(
        url,
        json=payload("order-sign"),
        headers={**headers, "Authorization": f"Bearer {unsigned_jwt(audience)}"},
    )
    expect(
        forged.status_code in (401, 403),
        f"an alg=none JWT answered {forged.status_code}, expected 401 or 403",
    )


# The requirements this suite cites (id, ig, version, url, text, actor), for
# conformance/requirements/davinci-crd.csv; they stay here until the suite is registered.
_CRD = "https://hl7.org/fhir/us/davinci-crd/STU2.2/"
_HOOKS = "https://cds-hooks.hl7.org/2.0/"


def _crd(key: str, page: str, text: str) -> tuple[str, str, str, str, str, str]:
    return (f"davinci-crd-2.2#{key}", "hl7.fhir.us.davinci-crd", "2.2.0", _CRD + page, text, "server")


def _cds(key: str, text: str) -> tuple[str, str, str, str, str, str]:
    return (f"cds-hooks-2.0#{key}", "hl7.fhir.uv.cds-hooks", "2.0", f"{_HOOKS}#{key}", text, "server")


REQUIREMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    _cds("discovery", "A CDS Service provider exposes its services at {baseUrl}/cds-services as JSON"),
    _cds("http-request", "A hook request carries hook, hookInstance (a UUID) and the hook's context"),
    _cds("calling-a-cds-service", "A CDS Service is called by POSTing the hook request to its service URL"),
    _cds(
        "cds-service-response",
        "A response has a cards array; cards have summary (<140 characters), indicator and source",
    ),
    _cds("trusting-cds-clients", "A CDS Service verifies the client's signed JWT before trusting the call"),
    _crd("hook-4", "hooks.html", "Servers SHALL provide a service for every hook CRD requires of clients"),
    _crd(
        "hook-10", "hooks.html", "Errors in the FHIR-aware layer SHALL be returned with an OperationOutcome"
    ),
    _crd("hook-13", "hooks.html", "A request that is not valid JSON or CDS Hooks SHALL be answered with 400"),
    _crd("hook-16", "hooks.html", "Servers SHALL return coverage information on order-sign"),
    _crd("hook-26", "hooks.html", "Servers SHALL return coverage information on appointment-book"),
    _crd("hook-33", "hooks.html", "Servers SHALL return coverage information on order-dispatch"),
    _crd(
        "dev-1",
        "deviations.html",
        "Each service SHALL declare the CRD versions it supports in davinci-crd.version",
    ),
    _crd("resp-3", "cards.html", "Every suggestion SHALL have a uuid"),
    _crd("resp-5", "cards.html", "Card source.topic SHALL be present"),
    _crd("resp-13", "cards.html", "Responses SHALL conform to the CRDHooksResponseBase logical model"),
    _crd(
        "resp-14",
        "cards.html",
        "Servers SHALL support Coverage Information and SHOULD demonstrate the other response types",
    ),
    _crd("resp-17", "cards.html", "External Reference cards point to specific guidance, not to a portal"),
    _crd("resp-23", "cards.html", "Instructions cards carry guidance text, not a portal pointer"),
    _crd("resp-25", "cards.html", "Coverage information SHALL be returned as a systemAction, never a card"),
    _crd("resp-26", "cards.html", "Coverage information SHALL be returned on the primary hooks"),
    _crd(
        "resp-32",
        "cards.html",
        "Repetitions for different coverages SHALL have distinct coverage-assertion-id and satisfied-pa-id",
    ),
    _crd(
        "resp-37",
        "cards.html",
        "The coverage-information update SHALL only add or change the extension, no other element",
    ),
)


def requirements_csv() -> str:
    return rows_csv(REQUIREMENTS)


SUITE = Suite(
    name="crd-server",
    title="Da Vinci CRD 2.2 server (CDS Hooks 2.0)",
    checks=(
        discovery_endpoint,
        discovery_services,
        discovery_version,
        request_required_fields,
        *service_call,
        *response_validation,
        *coverage_info_system_action,
        external_reference_card,
        instructions_card,
        malformed_body,
        missing_fields,
        wrong_hook,
        unsigned_jwt_refused,
    ),
)
