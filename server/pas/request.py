"""Parse a PAS Request Bundle (``Claim/$submit`` input) into a typed :class:`PasRequest`.

Spec: PAS 2.0.1 / 2.2.1 PASRequestBundle, PASClaim, PASClaimUpdate (``profile-pas-request-bundle``,
``profile-claim``, ``profile-claim-update``); spec-11..spec-25 (Claim first, references traversed,
unique supportingInfo.sequence). This is the structural gate only: profile validation with the ``igs``
validator runs before it at the edge, and everything here that the business cannot act on raises
``OperationOutcomeError`` with FHIRPath expressions so a bad Bundle is a 4xx, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from igs.outcome import Failure, Issue, OperationOutcomeError

from . import urls
from .bundle import BundleIndex, Entry
from .codes import (
    EXPEDITED_LEVELS_OF_SERVICE,
    EXPEDITED_PRIORITIES,
    CertificationType,
    InfoChange,
    Urgency,
)
from .fhirdata import (
    Code,
    Ident,
    Period,
    as_list,
    as_map,
    codes,
    ext_value,
    extension,
    extensions,
    first_code,
    ident,
    idents,
    is_fhir_date,
    items_of,
    opt_str,
    period,
)
from .versions import PasVersion


@dataclass(frozen=True)
class Party:
    """A resource the Claim points at (patient, insurer, provider, practitioner...)."""

    full_url: str
    resource_type: str
    identifiers: tuple[Ident, ...]
    name: str | None = None


@dataclass(frozen=True)
class CoverageInfo:
    """PASCoverage: the member id is the key for inquiries (spec-52/53)."""

    full_url: str
    member_ids: tuple[Ident, ...]
    subscriber_id: str | None
    subscriber: Party | None
    payors: tuple[Party, ...]
    relationship: Code | None
    line_of_business: str | None  # Coverage.type code, the key for per-program review clocks


@dataclass(frozen=True)
class CareTeamMember:
    sequence: int
    provider: Party | None
    claim_scope: bool  # careTeamClaimScope: true = 2010EA (whole request), false = 2010F (items)
    role: Code | None


@dataclass(frozen=True)
class Diagnosis:
    sequence: int
    code: Code | None
    type: Code | None


@dataclass(frozen=True)
class SupportingInfo:
    """A supportingInfo entry; documentation linked to the decision (DTR responses, documents)."""

    sequence: int
    category: Code | None
    target: Party | None  # the resolved valueReference
    coverage_assertion_ids: tuple[str, ...]  # CRD coverage-information on the attached resource
    context_refs: tuple[str, ...]  # DTR qr-context: fullUrls of the orders / trace numbers it answers
    report_type: Code | None  # documentInformation.reportTypeCode (PWK01)
    cancelled: bool = False


@dataclass(frozen=True)
class RequestItem:
    """One Claim.item with the PAS extensions decisions and responses need."""

    sequence: int
    product: Code | None
    product_codes: tuple[Code, ...]
    product_code_end: Code | None
    modifiers: tuple[Code, ...]
    category: Code | None
    request_type: Code | None  # UM01
    certification_type: str | None  # UM02
    quantity: Decimal | None
    quantity_unit: str | None
    serviced: Period | None
    location: Code | None
    location_ref: str | None
    trace_numbers: tuple[Ident, ...]
    diagnosis_sequences: tuple[int, ...]
    care_team_sequences: tuple[int, ...]
    requested_services: tuple[Party, ...]
    coverage_assertion_ids: tuple[str, ...]  # from CRD coverage-information on the requested services
    authorization_number: str | None  # REF*BB
    administration_reference_number: str | None  # REF*NT
    info_changed: InfoChange | None
    cancelled: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def is_cancel(self) -> bool:
        return self.cancelled or self.certification_type == CertificationType.CANCEL


@dataclass(frozen=True)
class TransmissionIds:
    """extension-TransmissionIdentifiers (GS02, GS03, ISA06, ISA08)."""

    application_sender: str | None
    application_receiver: str | None
    interchange_sender: str | None
    interchange_receiver: str | None


@dataclass(frozen=True)
class PasRequest:
    """A parsed ``$submit`` request: what decisions, responses, idempotency and notifications read."""

    version: PasVersion
    bundle_identifier: Ident | None
    bundle_timestamp: str | None
    claim: Entry
    claim_identifiers: tuple[Ident, ...]
    claim_type: Code | None
    created: str | None
    is_update: bool
    prior_claim: Entry | None  # 2.2.1: the related prior Claim included in the Bundle
    prior_claim_identifiers: tuple[Ident, ...]
    certification_type: str | None  # Claim-level UM02: ``3`` cancels the whole request
    urgency: Urgency
    patient: Party
    insurer: Party
    provider: Party
    coverages: tuple[CoverageInfo, ...]
    care_team: tuple[CareTeamMember, ...]
    diagnoses: tuple[Diagnosis, ...]
    items: tuple[RequestItem, ...]
    supporting_info: tuple[SupportingInfo, ...]
    transmission: TransmissionIds | None
    authorization_number: str | None  # Claim-level REF*BB (2.2): the authorization updated
    administration_reference_number: str | None  # Claim-level REF*NT (2.2)
    index: BundleIndex = field(repr=False, compare=False, hash=False)

    @property
    def is_whole_cancel(self) -> bool:
        return self.certification_type == CertificationType.CANCEL

    @property
    def member_ids(self) -> tuple[Ident, ...]:
        return tuple(i for c in self.coverages for i in c.member_ids)

    @property
    def submitter_identifiers(self) -> tuple[Ident, ...]:
        """Who sent this: ISA06 (2.2 filter, spec-58) and the requesting provider's identifiers (2.0.1)."""
        out: list[Ident] = []
        if self.transmission and self.transmission.interchange_sender:
            out.append(Ident(None, self.transmission.interchange_sender))
        out.extend(self.provider.identifiers)
        return tuple(out)

    def item(self, sequence: int) -> RequestItem | None:
        return next((i for i in self.items if i.sequence == sequence), None)


class Problems:
    """Collects structural issues so a client sees all of them in one OperationOutcome (spec-35)."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, diagnostics: str, expression: str, code: str = "required") -> None:
        self.issues.append(Issue(diagnostics=diagnostics, code=code, expression=(expression,)))

    def raise_if_any(self, failure: Failure = Failure.UNPROCESSABLE) -> None:
        if self.issues:
            raise OperationOutcomeError(failure, tuple(self.issues))


def check_envelope(bundle: Any, expected_first: str = "Claim") -> BundleIndex:
    """Bundle-level checks shared by ``$submit`` and ``$inquire`` (the test kit's empty-Bundle check)."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise OperationOutcomeError.of(
            Failure.INVALID, "The operation input must be a PAS Bundle", expression=("Bundle",)
        )
    problems = Problems()
    if bundle.get("type") != "collection":
        problems.add("Bundle.type must be 'collection'", "Bundle.type", "value")
    if not isinstance(bundle.get("entry"), list) or not bundle["entry"]:
        problems.add(f"The Bundle has no entries; the first entry must be a {expected_first}", "Bundle.entry")
        raise OperationOutcomeError(Failure.INVALID, tuple(problems.issues))
    index = BundleIndex.of(bundle)
    if index.entries[0].resource_type != expected_first:
        problems.add(
            f"The first entry must be a {expected_first}, found {index.entries[0].resource_type}",
            "Bundle.entry[0].resource",
            "structure",
        )
    problems.raise_if_any(Failure.INVALID)
    return index


def parse_pas_request(bundle: Any, version: PasVersion) -> PasRequest:
    """Parse a PASRequestBundle; raise ``OperationOutcomeError`` (INVALID/UNPROCESSABLE) when unusable.

    An empty Bundle, a non-collection Bundle or a Bundle not starting with a Claim is INVALID (400),
    as the PAS test kit's error-handling group requires for both operations.
    """
    index = check_envelope(bundle)
    claim = index.entries[0]
    c = claim.resource
    path = claim.path
    problems = Problems()
    if c.get("use") != "preauthorization":
        problems.add("Claim.use must be 'preauthorization'", f"{path}.use", "value")
    claim_identifiers = idents(c.get("identifier"))
    if not claim_identifiers:
        problems.add("Claim.identifier (the patient event trace number) is required", f"{path}.identifier")
    patient = party_ref(index, claim, c.get("patient"), f"{path}.patient", problems)
    insurer = party_ref(index, claim, c.get("insurer"), f"{path}.insurer", problems)
    provider = party_ref(index, claim, c.get("provider"), f"{path}.provider", problems)
    certification_type = _code_value(ext_value(c, urls.EXT_CERTIFICATION_TYPE))
    items = tuple(_items(index, claim, problems))
    is_whole_cancel = certification_type == CertificationType.CANCEL
    if not items and not is_whole_cancel:
        problems.add("Claim.item is required unless the whole request is cancelled", f"{path}.item")
    _check_unique([i.sequence for i in items], f"{path}.item", "item.sequence", problems)
    supporting = tuple(_supporting_info(index, claim, problems))
    _check_unique(
        [s.sequence for s in supporting], f"{path}.supportingInfo", "supportingInfo.sequence", problems
    )
    prior_claim, prior_identifiers, related = _prior(index, claim, problems)
    profiles = as_list(as_map(c.get("meta")).get("profile"))
    is_update = (
        related
        or any(str(p).split("|")[0] == urls.PROFILE_CLAIM_UPDATE for p in profiles)
        or any(i.info_changed is not None or i.cancelled for i in items)
        or is_whole_cancel
    )
    problems.raise_if_any()
    assert patient is not None and insurer is not None and provider is not None  # raise_if_any above
    bundle_map: Mapping[str, Any] = bundle
    return PasRequest(
        version=version,
        bundle_identifier=next(iter(idents(bundle_map.get("identifier"))), None),
        bundle_timestamp=opt_str(bundle_map.get("timestamp")),
        claim=claim,
        claim_identifiers=claim_identifiers,
        claim_type=first_code(c.get("type")),
        created=opt_str(c.get("created")),
        is_update=is_update,
        prior_claim=prior_claim,
        prior_claim_identifiers=prior_identifiers,
        certification_type=certification_type,
        urgency=_urgency(c),
        patient=patient,
        insurer=insurer,
        provider=provider,
        coverages=tuple(_coverages(index, claim)),
        care_team=tuple(_care_team(index, claim)),
        diagnoses=tuple(_diagnoses(c)),
        items=items,
        supporting_info=supporting,
        transmission=_transmission(c),
        authorization_number=_str(ext_value(c, urls.EXT_AUTHORIZATION_NUMBER)),
        administration_reference_number=_str(ext_value(c, urls.EXT_ADMINISTRATION_REFERENCE_NUMBER)),
        index=index,
    )


def party_ref(
    index: BundleIndex, source: Entry, ref: Any, expression: str, problems: Problems | None
) -> Party | None:
    if not isinstance(ref, Mapping) or not (ref.get("reference") or ref.get("identifier")):
        if problems is not None:
            problems.add(f"{expression.rsplit('.', 1)[-1]} is required", expression)
        return None
    target = index.resolve_ref(ref, source)
    if target is None:
        if isinstance(ref.get("reference"), str) and problems is not None:
            problems.add(
                f"Reference {ref['reference']!r} does not resolve to an entry of the Bundle (spec-13)",
                f"{expression}.reference",
                "not-found",
            )
            return None
        identifier = idents(ref.get("identifier"))
        return Party("", opt_str(ref.get("type")) or "", identifier, opt_str(ref.get("display")))
    return _party_of(target)


def _party_of(entry: Entry) -> Party:
    r = entry.resource
    return Party(entry.full_url, entry.resource_type, idents(r.get("identifier")), _name(r))


def _name(resource: Mapping[str, Any]) -> str | None:
    name = resource.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, list) and name and isinstance(name[0], Mapping):
        first = name[0]
        if isinstance(first.get("text"), str):
            return str(first["text"])
        given = " ".join(g for g in as_list(first.get("given")) if isinstance(g, str))
        return " ".join(p for p in (given, first.get("family")) if isinstance(p, str) and p) or None
    return None


def _code_value(concept: Any) -> str | None:
    code = first_code(concept)
    return code.code if code else None


def _urgency(claim: Mapping[str, Any]) -> Urgency:
    priority = first_code(claim.get("priority"))
    level = first_code(ext_value(claim, urls.EXT_LEVEL_OF_SERVICE))
    if (priority and priority.code in EXPEDITED_PRIORITIES) or (
        level and level.code in EXPEDITED_LEVELS_OF_SERVICE
    ):
        return Urgency.EXPEDITED
    return Urgency.STANDARD


def _check_unique(values: Sequence[int], expression: str, what: str, problems: Problems) -> None:
    seen: set[int] = set()
    for v in values:
        if v in seen:
            problems.add(f"{what} {v} is repeated; sequences must be unique", expression, "duplicate")
        seen.add(v)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(v for v in (_int(x) for x in as_list(values)) if v is not None)


def _items(index: BundleIndex, claim: Entry, problems: Problems) -> list[RequestItem]:
    out: list[RequestItem] = []
    for n, item in enumerate(as_list(claim.resource.get("item"))):
        path = f"{claim.path}.item[{n}]"
        if not isinstance(item, Mapping):
            problems.add("Claim.item must be an object", path, "structure")
            continue
        sequence = _int(item.get("sequence"))
        if sequence is None or sequence < 1:
            problems.add("Claim.item.sequence must be a positive integer", f"{path}.sequence")
            continue
        product = item.get("productOrService")
        if not isinstance(product, Mapping):
            problems.add("Claim.item.productOrService is required", f"{path}.productOrService")
            continue
        services: list[Party] = []
        assertion_ids: list[str] = []
        for k, service_ext in enumerate(extensions(item, urls.EXT_REQUESTED_SERVICE)):
            target = index.resolve_ref(service_ext.get("valueReference"), claim)
            if target is None:
                problems.add(
                    "item.extension:requestedService does not resolve to an entry of the Bundle (spec-13)",
                    f"{path}.extension[{k}]",
                    "not-found",
                )
                continue
            services.append(_party_of(target))
            assertion_ids.extend(_assertion_ids(target.resource))
        raw_quantity = item.get("quantity")
        quantity: Mapping[str, Any] = raw_quantity if isinstance(raw_quantity, Mapping) else {}
        qty_value = quantity.get("value")
        location_ref = item.get("locationReference")
        location_entry = index.resolve_ref(location_ref, claim) if location_ref else None
        info_changed = ext_value(item, urls.EXT_INFO_CHANGED)
        serviced = period(item.get("servicedPeriod") or item.get("servicedDate"))
        if serviced is not None and not all(is_fhir_date(v) for v in (serviced.start, serviced.end) if v):
            element = "servicedPeriod" if "servicedPeriod" in item else "servicedDate"
            problems.add("Claim.item.serviced[x] is not a valid FHIR date", f"{path}.{element}", "value")
            serviced = None
        out.append(
            RequestItem(
                sequence=sequence,
                product=first_code(product),
                product_codes=codes(product),
                product_code_end=first_code(ext_value(item, urls.EXT_PRODUCT_OR_SERVICE_CODE_END)),
                modifiers=tuple(c for m in as_list(item.get("modifier")) for c in codes(m)[:1]),
                category=first_code(item.get("category")),
                request_type=first_code(ext_value(item, urls.EXT_SERVICE_ITEM_REQUEST_TYPE)),
                certification_type=_code_value(ext_value(item, urls.EXT_CERTIFICATION_TYPE)),
                quantity=Decimal(str(qty_value)) if isinstance(qty_value, int | float | Decimal) else None,
                quantity_unit=opt_str(quantity.get("code")) or opt_str(quantity.get("unit")),
                serviced=serviced,
                location=first_code(item.get("locationCodeableConcept")),
                location_ref=location_entry.full_url if location_entry else None,
                trace_numbers=tuple(
                    i
                    for e in extensions(item, urls.EXT_ITEM_TRACE_NUMBER)
                    for i in idents(e.get("valueIdentifier"))
                ),
                diagnosis_sequences=_ints(item.get("diagnosisSequence")),
                care_team_sequences=_ints(item.get("careTeamSequence")),
                requested_services=tuple(services),
                coverage_assertion_ids=tuple(assertion_ids),
                authorization_number=_str(ext_value(item, urls.EXT_AUTHORIZATION_NUMBER)),
                administration_reference_number=_str(
                    ext_value(item, urls.EXT_ADMINISTRATION_REFERENCE_NUMBER)
                ),
                info_changed=InfoChange(info_changed) if info_changed in ("added", "changed") else None,
                cancelled=ext_value(item, urls.EXT_INFO_CANCELLED, modifier=True) is True,
                raw=item,
            )
        )
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _assertion_ids(resource: Mapping[str, Any]) -> list[str]:
    """coverage-assertion-id values of CRD ``ext-coverage-information`` extensions on a resource."""
    out: list[str] = []
    for info in extensions(resource, urls.EXT_CRD_COVERAGE_INFORMATION):
        value = ext_value(info, "coverage-assertion-id")
        if isinstance(value, str):
            out.append(value)
    return out


def _supporting_info(index: BundleIndex, claim: Entry, problems: Problems) -> list[SupportingInfo]:
    out: list[SupportingInfo] = []
    for n, info in enumerate(as_list(claim.resource.get("supportingInfo"))):
        path = f"{claim.path}.supportingInfo[{n}]"
        if not isinstance(info, Mapping):
            continue
        sequence = _int(info.get("sequence"))
        if sequence is None:
            problems.add("supportingInfo.sequence is required", f"{path}.sequence")
            continue
        target: Party | None = None
        assertion_ids: tuple[str, ...] = ()
        context: list[str] = []
        ref = info.get("valueReference")
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
            entry = index.resolve_ref(ref, claim)
            if entry is None:
                problems.add(
                    "supportingInfo.valueReference does not resolve to an entry of the Bundle (spec-13)",
                    f"{path}.valueReference",
                    "not-found",
                )
                continue
            target = _party_of(entry)
            is_qr = entry.resource_type == "QuestionnaireResponse"
            collected = [] if is_qr else _assertion_ids(entry.resource)
            for qr in _questionnaire_responses(index, entry):
                collected.extend(_assertion_ids(qr.resource))
                context.extend(_qr_context(index, qr))
            assertion_ids = tuple(collected)
        doc_info = extension(info, urls.EXT_DOCUMENT_INFORMATION)
        out.append(
            SupportingInfo(
                sequence=sequence,
                category=first_code(info.get("category")),
                target=target,
                coverage_assertion_ids=assertion_ids,
                context_refs=tuple(context),
                report_type=first_code(ext_value(doc_info, "reportTypeCode")),
                cancelled=ext_value(info, urls.EXT_INFO_CANCELLED, modifier=True) is True,
            )
        )
    return out


def _questionnaire_responses(index: BundleIndex, entry: Entry) -> list[Entry]:
    """The QuestionnaireResponse itself, or those inside a DTR QR Bundle attached as supporting info."""
    if entry.resource_type == "QuestionnaireResponse":
        return [entry]
    if entry.resource_type == "Bundle":
        inner = as_list(entry.resource.get("entry"))
        return [
            Entry(n, str(e.get("fullUrl", "")), e["resource"])
            for n, e in enumerate(inner)
            if isinstance(e, Mapping)
            and isinstance(e.get("resource"), Mapping)
            and e["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
    return []


def _qr_context(index: BundleIndex, qr: Entry) -> list[str]:
    """What a DTR QuestionnaireResponse was filled in for: order fullUrls or trace-number values."""
    out: list[str] = []
    for ctx in extensions(qr.resource, "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context"):
        ref = ctx.get("valueReference")
        if not isinstance(ref, Mapping):
            continue
        target = index.resolve_ref(ref)
        if target is not None:
            out.append(target.full_url)
        elif isinstance(ref.get("reference"), str):
            out.append(ref["reference"])
        for i in idents(ref.get("identifier")):
            out.append(i.value)
    return out


def _prior(
    index: BundleIndex, claim: Entry, problems: Problems
) -> tuple[Entry | None, tuple[Ident, ...], bool]:
    related = items_of(claim.resource.get("related"))
    if not related:
        return None, (), False
    rel = related[0]
    ref = rel.get("claim")
    target = index.resolve_ref(ref, claim)
    if target is not None and target.resource_type == "Claim":
        return target, idents(target.resource.get("identifier")), True
    if isinstance(ref, Mapping) and ref.get("identifier"):
        return None, idents(ref.get("identifier")), True
    problems.add(
        "Claim.related.claim must reference the prior Claim included in the Bundle (PASClaimUpdate)",
        f"{claim.path}.related[0].claim",
        "not-found",
    )
    return None, (), True


def _coverages(index: BundleIndex, claim: Entry) -> list[CoverageInfo]:
    out: list[CoverageInfo] = []
    for ins in items_of(claim.resource.get("insurance")):
        entry = index.resolve_ref(ins.get("coverage"), claim)
        if entry is None:
            continue
        cov = entry.resource
        member = _member_ids(cov)
        subscriber_entry = index.resolve_ref(cov.get("subscriber"), entry)
        payors = tuple(
            _party_of(p) for p in (index.resolve_ref(r, entry) for r in as_list(cov.get("payor"))) if p
        )
        out.append(
            CoverageInfo(
                full_url=entry.full_url,
                member_ids=member,
                subscriber_id=_str(cov.get("subscriberId")),
                subscriber=_party_of(subscriber_entry) if subscriber_entry else None,
                payors=payors,
                relationship=first_code(cov.get("relationship")),
                line_of_business=_code_value(cov.get("type")),
            )
        )
    return out


def _member_ids(coverage: Mapping[str, Any]) -> tuple[Ident, ...]:
    """Coverage.identifier:memberid (type MB) when valued, else every identifier, else subscriberId."""
    typed: list[Ident] = []
    others: list[Ident] = []
    for raw in items_of(coverage.get("identifier")):
        value = ident(raw)
        if value is None:
            continue
        kind = _code_value(raw.get("type"))
        (typed if kind in ("MB", "memberid") else others).append(value)
    subscriber = _str(coverage.get("subscriberId"))
    fallback = [Ident(None, subscriber)] if subscriber else []
    return tuple(typed or others or fallback)


def _care_team(index: BundleIndex, claim: Entry) -> list[CareTeamMember]:
    out: list[CareTeamMember] = []
    for member in items_of(claim.resource.get("careTeam")):
        if _int(member.get("sequence")) is None:
            continue
        target = index.resolve_ref(member.get("provider"), claim)
        out.append(
            CareTeamMember(
                sequence=member["sequence"],
                provider=_party_of(target) if target else None,
                claim_scope=ext_value(member, urls.EXT_CARE_TEAM_CLAIM_SCOPE) is True,
                role=first_code(member.get("role")),
            )
        )
    return out


def _diagnoses(claim: Mapping[str, Any]) -> list[Diagnosis]:
    return [
        Diagnosis(
            d["sequence"],
            first_code(d.get("diagnosisCodeableConcept")),
            first_code(next(iter(as_list(d.get("type"))), None)),
        )
        for d in items_of(claim.get("diagnosis"))
        if _int(d.get("sequence")) is not None
    ]


def _transmission(claim: Mapping[str, Any]) -> TransmissionIds | None:
    ext = extension(claim, urls.EXT_TRANSMISSION_IDENTIFIERS)
    if ext is None:
        return None
    return TransmissionIds(
        application_sender=_str(ext_value(ext, "applicationSenderCode")),
        application_receiver=_str(ext_value(ext, "applicationReceiverCode")),
        interchange_sender=_str(ext_value(ext, "interchangeSenderID")),
        interchange_receiver=_str(ext_value(ext, "interchangeReceiverID")),
    )
