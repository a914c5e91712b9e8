"""The CRD CDS services: one registry for discovery and invocation (CDS Hooks 2.0, CRD 2.0.1 / 2.2).

``CdsServices`` is framework-free: the HTTP router passes it raw bodies and the verified caller and
gets back a ``HookResult`` (the response JSON plus the coverage assertions to store for DTR and PAS).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from igs.outcome import Failure, Issue, OperationOutcomeError, invalid, not_found, unprocessable

from .cards import (
    PRIORITY,
    CardContext,
    additional_orders_card,
    alternate_request_card,
    external_reference_card,
    instructions_card,
)
from .configuration import Configuration, configuration_options, read_configuration
from .coverage import (
    CoverageDecision,
    EvaluationContext,
    OrderFacts,
    PatientFacts,
    evaluate_coverage,
    technical_failure,
)
from .coverage_information import render_coverage_information, with_coverage_information
from .facts import REQUEST_TYPES, order_facts_from_request, patient_facts, request_codes
from .hooks import HOOK_SPECS, HookSpec
from .models import Feedback, FeedbackItem, HookRequest
from .policy import PolicySet
from .prefetch import FhirSource, PrefetchHydrator, index_resources, usable, walk_resources
from .urls import CRD_PROFILE_BASE, SID_PAYER_ID
from .versions import SUPPORTED_VERSIONS, CrdVersion, negotiate_version

log = logging.getLogger("priorgate.cds_hooks")

_ASSERTION_NAMESPACE = uuid.UUID("6f1f8d0e-8a43-4c1e-9a51-5e0c8b1f2a77")


def uuid5_text(seed: str, namespace: uuid.UUID = _ASSERTION_NAMESPACE) -> str:
    """``str(uuid.uuid5(namespace, seed))`` without building UUID objects (RFC 4122 §4.3; hot path)."""
    digest = bytearray(
        hashlib.sha1(namespace.bytes + seed.encode("utf-8"), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Data fetched only when a rule needs it (CRD found-28: conditional data by query, not prefetch).
_LAZY_QUERIES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "prior therapy": (
            "medications",
            "MedicationRequest?patient={patient}&status=active,completed,stopped",
        ),
        "diagnosis": ("conditions", "Condition?patient={patient}&clinical-status=active"),
    }
)


class ResourceValidator(Protocol):
    """Profile validation (to come from ``igs``): error issues for ``resource`` against ``profile``."""

    def __call__(self, resource: Mapping[str, Any], profile: str) -> Sequence[Issue]: ...


class FeedbackSink(Protocol):
    """Where CDS Hooks feedback goes (storage is the server's business)."""

    async def store(self, service_id: str, items: Sequence[FeedbackItem], received: datetime) -> None: ...


class InMemoryFeedbackSink:
    """Keeps feedback in a list (tests, single-process demos)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, FeedbackItem, datetime]] = []

    async def store(self, service_id: str, items: Sequence[FeedbackItem], received: datetime) -> None:
        self.items.extend((service_id, item, received) for item in items)


@dataclass(frozen=True)
class CoverageAssertion:
    """One coverage-information repetition handed out; stored by server/ for DTR, PAS and claims (resp-31)."""

    id: str
    service_id: str
    hook_instance: str
    order_reference: str
    coverage_reference: str
    payer_id: str
    version: CrdVersion
    decision: CoverageDecision
    extension: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class HookResult:
    """One answered call: the response body, the assertions to store, and stale rules used."""

    response: dict[str, Any]
    assertions: tuple[CoverageAssertion, ...]
    version: CrdVersion
    stale_rules: tuple[str, ...]  # rule ids past their review date that answered this call


@dataclass(frozen=True)
class _Coverage:
    resource: Mapping[str, Any]
    reference: str
    payer_id: str
    plan: str | None


@dataclass(frozen=True)
class _Order:
    """An in-scope request resource and the resource the coverage information is attached to."""

    resource: Mapping[str, Any]
    reference: str
    target: Mapping[str, Any]  # usually the order itself; an Appointment without a resolvable order


def _integer(text: str) -> int | Decimal:
    """Integers beyond 64 bits stay exact as Decimal: the response writer (orjson) cannot write them."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else Decimal(text)


def parse_json(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Decode a JSON body keeping decimals exact; 400 when it is not a JSON object."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        value = json.loads(body, parse_float=Decimal, parse_int=_integer)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise invalid(f"Request body is not valid JSON: {exc}", code="structure") from exc
    if not isinstance(value, dict):
        raise invalid("Request body must be a JSON object", code="structure")
    return value


def _validation_error(exc: ValidationError) -> OperationOutcomeError:
    issues = tuple(
        Issue(
            diagnostics=f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}",
            code="structure",
            expression=(".".join(str(p) for p in err["loc"]),),
        )
        for err in exc.errors()
    )
    return OperationOutcomeError(Failure.INVALID, issues)


def _ref_key(reference: str) -> str:
    parts = [p for p in reference.split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


class CdsServices:
    """Discovery, invocation and feedback for the six CRD services."""

    def __init__(
        self,
        policies: PolicySet,
        *,
        http_client: httpx.AsyncClient,
        now: Callable[[], datetime],
        feedback_sink: FeedbackSink | None = None,
        assertion_id: Callable[[str], str] | None = None,
        validator: ResourceValidator | None = None,
        fetch_timeout: float = 1.0,
        specs: Sequence[HookSpec] = HOOK_SPECS,
    ) -> None:
        self._policies = policies
        self._now = now
        self._feedback = feedback_sink or InMemoryFeedbackSink()
        self._assertion_id = assertion_id or uuid5_text
        self._validator = validator
        self._hydrator = PrefetchHydrator(http_client, timeout=fetch_timeout)
        self._specs = {spec.id: spec for spec in specs}
        for payer_id, rule_id in policies.stale_rules(now().date()):
            log.warning("coverage rule %s/%s is past its review date; it still answers", payer_id, rule_id)

    @property
    def specs(self) -> tuple[HookSpec, ...]:
        return tuple(self._specs.values())

    def discovery(self) -> dict[str, Any]:
        """The ``GET {base}/cds-services`` document (CDS Hooks §Discovery; CRD dev-1, dev-4, dev-5)."""
        return {
            "services": [
                {
                    "hook": spec.hook,
                    "title": spec.title,
                    "description": spec.description,
                    "id": spec.id,
                    "prefetch": dict(spec.prefetch),
                    "extension": {
                        "davinci-crd.version": [v.value for v in SUPPORTED_VERSIONS],
                        "davinci-crd.configuration-options": configuration_options(),
                    },
                }
                for spec in self._specs.values()
            ]
        }

    def spec(self, service_id: str) -> HookSpec:
        spec = self._specs.get(service_id)
        if spec is None:
            raise not_found(f"No CDS service {service_id!r}")
        return spec

    async def feedback(self, service_id: str, body: bytes | str | Mapping[str, Any]) -> int:
        """Store ``POST {base}/cds-services/{id}/feedback`` (CDS Hooks §Feedback); returns the item count."""
        self.spec(service_id)
        try:
            parsed = Feedback.model_validate(parse_json(body))
        except ValidationError as exc:
            raise _validation_error(exc) from exc
        await self._feedback.store(service_id, parsed.feedback, self._now())
        return len(parsed.feedback)

    async def call(self, service_id: str, body: bytes | str | Mapping[str, Any]) -> HookResult:
        """Answer one hook call (CDS Hooks §Calling a CDS Service; CRD §Hooks and §Response types)."""
        spec = self.spec(service_id)
        try:
            return await self._call(spec, body)
        except (TypeError, AttributeError, KeyError, IndexError) as exc:
            # FHIR content below the validated top level is untrusted JSON of any shape: a shape we
            # cannot read is the client's 400, not our 500. Logged with the trace to fix real bugs.
            log.warning("unreadable %s request structure", spec.id, exc_info=exc)
            raise invalid(f"Request content has an unexpected structure ({type(exc).__name__})") from exc

    async def _call(self, spec: HookSpec, body: bytes | str | Mapping[str, Any]) -> HookResult:
        try:
            request = HookRequest.model_validate(parse_json(body))
        except ValidationError as exc:
            raise _validation_error(exc) from exc
        if request.hook != spec.hook:
            raise invalid(f"Service {spec.id} serves hook {spec.hook}, not {request.hook}", "hook")
        if request.fhir_authorization is not None and request.fhir_server is None:
            raise invalid("fhirServer is required with fhirAuthorization", "fhirServer")
        extension = request.extension or {}
        version = negotiate_version(extension.get("davinci-crd.requestedVersion"))
        configuration = read_configuration(extension.get("davinci-crd.configuration"))
        context = request.context
        self._check_context(spec, context)
        now = self._now()
        today = now.date()
        source = (
            FhirSource(
                request.fhir_server,
                request.fhir_authorization.access_token if request.fhir_authorization else None,
            )
            if request.fhir_server
            else None
        )
        prefetch = await self._hydrator.hydrate(
            spec.prefetch, context, request.prefetch, source, today, required=spec.required_prefetch
        )
        given = request.prefetch or {}
        for key in spec.required_prefetch:
            # A key sent as null means "the EHR has no such data": answered from what we have, not 412.
            if key not in prefetch and not (key in given and given[key] is None):
                raise OperationOutcomeError.of(
                    Failure.PRECONDITION_FAILED,
                    f"Prefetch {key!r} is absent and cannot be queried",
                    code="incomplete",
                )
        known = index_resources(list(context.values()), list(prefetch.values()))
        coverage = await self._primary_coverage(prefetch, known, source)
        orders = await self._orders(spec, context, known, source)
        patient = patient_facts(prefetch.get("patient") if usable(prefetch.get("patient")) else None)
        evaluation = EvaluationContext(coverage.payer_id, coverage.plan, today)
        decisions = [
            evaluate_coverage(
                self._policies,
                order_facts_from_request(o.resource, o.reference, known=known),
                patient,
                evaluation,
            )
            for o in orders
        ]
        decisions = await self._with_lazy_data(decisions, orders, known, patient, evaluation, context, source)
        return self._respond(spec, request, version, configuration, coverage, orders, decisions, today)

    # -- request checks ---------------------------------------------------------------------------

    def _check_context(self, spec: HookSpec, context: Mapping[str, Any]) -> None:
        for name in ("patientId", "encounterId", "userId", "performer"):
            if name in context and not isinstance(context[name], str):
                raise invalid(f"context.{name} must be a string", f"context.{name}")
        missing = [name for name in spec.required_context if context.get(name) in (None, "", [])]
        if spec.hook == "order-dispatch" and not context.get("dispatchedOrders") and not context.get("order"):
            missing.append("dispatchedOrders")
        if missing:
            raise invalid(
                f"{spec.hook} context lacks {', '.join(missing)}", *(f"context.{name}" for name in missing)
            )
        for name in ("draftOrders", "appointments"):
            if name in spec.required_context:
                bundle = context.get(name)
                if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                    raise invalid(f"context.{name} must be a FHIR Bundle", f"context.{name}")
                if bundle.get("type") != "collection":
                    raise unprocessable(
                        f"context.{name} must be a collection Bundle (CRD profile-bundle-request)",
                        f"context.{name}.type",
                    )
                entries = bundle.get("entry") or []
                if not isinstance(entries, list):
                    raise invalid(f"context.{name}.entry must be an array", f"context.{name}.entry")
                for i, entry in enumerate(entries):
                    resource = entry.get("resource") if isinstance(entry, dict) else None
                    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                        raise invalid(
                            f"context.{name}.entry[{i}] has no resource", f"context.{name}.entry[{i}]"
                        )
                    if resource["resourceType"] in REQUEST_TYPES and not resource.get("status"):
                        raise unprocessable(
                            f"{resource['resourceType']} in context.{name} lacks status (CRD profiles: 1..1)",
                            f"context.{name}.entry[{i}].resource.status",
                        )
                    self._validate_incoming(resource, f"context.{name}.entry[{i}].resource")
        if spec.hook == "order-select":
            selections = context.get("selections")
            drafts = {self._reference(r, None) for r in walk_resources(context.get("draftOrders"))}
            if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
                raise invalid("context.selections must be an array of references", "context.selections")
            outside = [s for s in selections if _ref_key(s) not in drafts]
            if outside:
                raise unprocessable(
                    f"selections not in draftOrders: {', '.join(outside)}",
                    "context.selections",
                    code="business-rule",
                )

    def _validate_incoming(self, resource: Mapping[str, Any], where: str) -> None:
        """Draft orders must meet their CRD request profile (CRD hook-20/21); a violation is 422 (hook-14)."""
        if self._validator is None or resource.get("resourceType") not in REQUEST_TYPES:
            return
        profile = CRD_PROFILE_BASE + f"profile-{str(resource.get('resourceType')).lower()}"
        errors = [
            Issue(f"{where}: {i.diagnostics}", i.code, i.severity, i.expression, i.details)
            for i in self._validator(resource, profile)
            if i.severity in ("error", "fatal")
        ]
        if errors:
            raise OperationOutcomeError(Failure.UNPROCESSABLE, tuple(errors))

    def _validate_outgoing(self, resource: Mapping[str, Any]) -> None:
        """Our own output failing its CRD profile is our bug: log it loudly, still answer (CRD found-2)."""
        if self._validator is None:
            return
        profile = CRD_PROFILE_BASE + f"profile-{str(resource.get('resourceType')).lower()}"
        for issue in self._validator(resource, profile):
            if issue.severity in ("error", "fatal"):
                log.error(
                    "returned %s fails %s: %s", resource.get("resourceType"), profile, issue.diagnostics
                )

    @staticmethod
    def _reference(resource: Mapping[str, Any], full_url: str | None) -> str:
        if resource.get("id"):
            return f"{resource['resourceType']}/{resource['id']}"
        return full_url or str(resource.get("resourceType"))

    # -- coverage ---------------------------------------------------------------------------------

    async def _primary_coverage(
        self, prefetch: Mapping[str, Any], known: Mapping[str, Mapping[str, Any]], source: FhirSource | None
    ) -> _Coverage:
        """The single primary Coverage and its payer (CRD hook-13: 400 when wrong, absent or several).

        The payer identifier is read from ``payor.identifier`` or from the referenced Organization
        (prefetched, contained, or read from the client's FHIR server only when needed).
        """
        found = [r for r in walk_resources(prefetch.get("coverage")) if r.get("resourceType") == "Coverage"]
        active = [r for r in found if r.get("status") in (None, "active")]
        if not active:
            raise invalid("No active Coverage for the patient", "prefetch.coverage")
        if len(active) > 1:
            raise invalid(
                f"{len(active)} active Coverages supplied; CRD expects the single primary one",
                "prefetch.coverage",
            )
        coverage = active[0]
        contained = coverage.get("contained")
        if contained:
            known = {**known, **index_resources(contained)}
        payer_ids: list[str] = []
        any_identifier = False
        for payor in coverage.get("payor") or ():
            if not isinstance(payor, dict):
                continue
            identifiers = [payor.get("identifier")]
            ref = payor.get("reference")
            if isinstance(ref, str):
                target = known.get(_ref_key(ref)) or known.get(f"Organization/{ref.lstrip('#')}")
                if target is None and not payor.get("identifier") and source is not None and "#" not in ref:
                    try:
                        target = await self._hydrator.fetch(source, _ref_key(ref))
                    except (httpx.HTTPError, ValueError) as exc:
                        log.info("payer %s could not be read: %s", ref, exc)
                identifiers += list((target or {}).get("identifier") or ())
            for ident in identifiers:
                if isinstance(ident, dict) and ident.get("value"):
                    any_identifier = True
                    if ident.get("system") == SID_PAYER_ID and ident["value"] in self._policies.payers:
                        payer_ids.append(ident["value"])
        if not any_identifier:
            raise invalid("Coverage.payor has no payer identifier", "Coverage.payor.identifier")
        if not payer_ids:
            raise invalid("Coverage is for a payer this service does not handle", "Coverage.payor.identifier")
        if len(set(payer_ids)) > 1:
            raise invalid("Coverage names several payers handled here", "Coverage.payor")
        plan = None
        for klass in coverage.get("class") or ():
            codes = [
                c.get("code") for c in ((klass.get("type") or {}).get("coding") or ()) if isinstance(c, dict)
            ]
            if "plan" in codes and isinstance(klass.get("value"), str):
                plan = klass["value"]
        reference = f"Coverage/{coverage['id']}" if coverage.get("id") else "Coverage"
        return _Coverage(coverage, reference, payer_ids[0], plan)

    # -- orders -----------------------------------------------------------------------------------

    async def _orders(
        self,
        spec: HookSpec,
        context: Mapping[str, Any],
        known: Mapping[str, Mapping[str, Any]],
        source: FhirSource | None,
    ) -> list[_Order]:
        if spec.hook in ("order-sign", "order-select"):
            bundle = context.get("draftOrders") or {}
            wanted = (
                {_ref_key(s) for s in context.get("selections") or ()}
                if spec.hook == "order-select"
                else None
            )
            out = []
            for entry in bundle.get("entry") or ():
                resource = entry["resource"]
                if resource.get("resourceType") not in REQUEST_TYPES:
                    continue
                reference = self._reference(resource, entry.get("fullUrl"))
                if wanted is None or reference in wanted:
                    out.append(_Order(resource, reference, resource))
            return out
        if spec.hook == "order-dispatch":
            refs = context.get("dispatchedOrders") or [context.get("order")]
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise invalid(
                    "context.dispatchedOrders must be an array of references", "context.dispatchedOrders"
                )
            keys = [_ref_key(ref) for ref in refs]
            missing = [key for key in keys if key not in known]
            read = await asyncio.gather(*(self._read(source, key) for key in missing))
            found = {**known, **dict(zip(missing, read, strict=True))}
            return [_Order(found[key], key, found[key]) for key in keys]
        if spec.hook == "appointment-book":
            out = []
            for appointment in walk_resources(context.get("appointments")):
                if appointment.get("resourceType") != "Appointment":
                    continue
                based_on = [
                    b["reference"]
                    for b in appointment.get("basedOn") or ()
                    if isinstance(b, dict) and isinstance(b.get("reference"), str)
                ]
                orders = [known.get(_ref_key(ref)) for ref in based_on]
                if based_on and all(orders):
                    out += [_Order(o, self._reference(o, None), o) for o in orders if o is not None]
                elif request_codes(appointment):  # CRD 2.2: coverage information on the Appointment itself
                    out.append(_Order(appointment, self._reference(appointment, None), appointment))
            return out
        return []  # encounter-start / encounter-discharge: no orders in scope

    async def _read(self, source: FhirSource | None, reference: str) -> Mapping[str, Any]:
        if source is None:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                f"{reference} was not prefetched and no fhirServer was given",
                code="incomplete",
            )
        try:
            return await self._hydrator.fetch(source, reference)
        except (httpx.HTTPError, ValueError) as exc:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                f"{reference} was not prefetched and could not be read: {exc}",
                code="incomplete",
            ) from exc

    async def _with_lazy_data(
        self,
        decisions: list[CoverageDecision],
        orders: Sequence[_Order],
        known: Mapping[str, Mapping[str, Any]],
        patient: PatientFacts,
        evaluation: EvaluationContext,
        context: Mapping[str, Any],
        source: FhirSource | None,
    ) -> list[CoverageDecision]:
        """Query history the rules need only when a decision hinges on it (CRD resp-39, found-28)."""
        wanted = {name for d in decisions for name in d.undetermined if name in _LAZY_QUERIES}
        if not wanted or source is None or not isinstance(context.get("patientId"), str):
            return decisions
        fetched: dict[str, list[Mapping[str, Any]]] = {}
        names = sorted(wanted)
        queries = [_LAZY_QUERIES[name][1].format(patient=context["patientId"]) for name in names]
        bundles = await asyncio.gather(
            *(self._hydrator.fetch(source, q) for q in queries), return_exceptions=True
        )
        failed: set[str] = set()
        for name, bundle in zip(names, bundles, strict=True):
            if isinstance(bundle, BaseException):
                log.info("history for %s unavailable: %s", name, bundle)
                failed.add(name)
                continue
            fetched[_LAZY_QUERIES[name][0]] = [
                r for r in walk_resources(bundle) if r.get("resourceType") != "Bundle"
            ]
        if not fetched:
            return [technical_failure(d, [n for n in d.undetermined if n in failed]) for d in decisions]
        enriched = patient_facts(patient.resource, fetched.get("conditions", ()), fetched.get("medications"))
        facts = PatientFacts(
            birth_date=patient.birth_date,
            gender=patient.gender,
            diagnoses=patient.diagnoses + enriched.diagnoses,
            prior_therapies=enriched.prior_therapies,
            resource=patient.resource,
        )
        redone = [
            evaluate_coverage(self._policies, self._facts(o, known), facts, evaluation)
            if d.undetermined
            else d
            for o, d in zip(orders, decisions, strict=True)
        ]
        return [technical_failure(d, [n for n in d.undetermined if n in failed]) for d in redone]

    @staticmethod
    def _facts(order: _Order, known: Mapping[str, Mapping[str, Any]]) -> OrderFacts:
        return order_facts_from_request(order.resource, order.reference, known=known)

    # -- response ---------------------------------------------------------------------------------

    def _respond(
        self,
        spec: HookSpec,
        request: HookRequest,
        version: CrdVersion,
        configuration: Configuration,
        coverage: _Coverage,
        orders: Sequence[_Order],
        decisions: Sequence[CoverageDecision],
        today: date,
    ) -> HookResult:
        insurer = self._policies.payers[coverage.payer_id].name
        hook_instance = request.hook_instance

        def card_id(seed: str) -> str:
            return uuid5_text(f"card|{hook_instance}|{seed}")

        ctx = CardContext(version, insurer, card_id)
        system_actions: list[dict[str, Any]] = []
        assertions: list[CoverageAssertion] = []
        cards: list[dict[str, Any]] = []
        proposals_allowed = spec.hook in ("order-select", "order-sign")
        stale: list[str] = []
        for order, decision in zip(orders, decisions, strict=True):
            if decision.stale and decision.rule_id:
                stale.append(decision.rule_id)
                log.warning(
                    "stale coverage rule %s/%s answered %s", decision.payer_id, decision.rule_id, spec.id
                )
            if configuration.allows("coverage-info"):
                seed = "|".join(
                    (
                        request.fhir_server or "",
                        str(request.context.get("patientId")),
                        coverage.reference,
                        order.reference,
                        decision.rule_id or "unlisted",
                        decision.covered,
                        decision.pa_needed or "",
                        ",".join(decision.doc_needed),
                        today.isoformat(),
                    )
                )
                assertion_id = self._assertion_id(seed)
                extension = render_coverage_information(
                    decision,
                    version=version,
                    coverage_reference=coverage.reference,
                    assertion_id=assertion_id,
                    on=today,
                    satisfied_pa_id=assertion_id if configuration.unsolicited_determinations else None,
                )
                updated = with_coverage_information(order.target, extension)
                self._validate_outgoing(updated)
                system_actions.append(
                    {
                        "type": "update",
                        "description": f"Add {insurer} coverage information to {order.reference}",
                        "resource": updated,
                    }
                )
                assertions.append(
                    CoverageAssertion(
                        assertion_id,
                        spec.id,
                        hook_instance,
                        order.reference,
                        coverage.reference,
                        coverage.payer_id,
                        version,
                        decision,
                        extension,
                    )
                )
            candidates = [
                external_reference_card(ctx, decision, order.reference)
                if configuration.allows("guideline")
                else None,
                instructions_card(ctx, decision, order.reference) if configuration.allows("claim") else None,
            ]
            if proposals_allowed and decision.alternate and configuration.allows("therapy-alternatives-opt"):
                candidates.append(
                    alternate_request_card(ctx, decision.alternate, order.resource, order.reference)
                )
            if proposals_allowed and decision.companions and configuration.allows("clinical-reminder"):
                candidates.append(
                    additional_orders_card(
                        ctx, decision, decision.companions, order.resource, order.reference
                    )
                )
            cards += [c for c in candidates if c is not None]
        cards.sort(key=lambda c: PRIORITY.get(c["source"]["topic"]["code"], 9))
        response: dict[str, Any] = {"cards": cards[: configuration.max_cards]}
        if spec.primary or system_actions:
            response["systemActions"] = system_actions
        return HookResult(response, tuple(assertions), version, tuple(dict.fromkeys(stale)))
