"""PAS request Bundle (2.0.1 and 2.2.1) to a 005010X217 278 request.

Spec: PAS IG "Mapping to X12" and the extension definitions listed in the PAS research digest section 1.9;
005010X217 section 2.3. Elements that do not travel are listed in x12/README.md ("Not mapped").
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any

from igs.outcome import Failure, OperationOutcomeError
from x12 import urls
from x12.codec import DEFAULT_DELIMITERS, Delimiters
from x12.envelope import ControlNumbers, Party, build_interchange, serialize
from x12.errors import X12Error, bundle_shape
from x12.fhir import (
    BundleIndex,
    Json,
    as_dict,
    as_list,
    code_in,
    codings,
    ext,
    ext_all,
    ext_value,
    number,
    sequence_key,
    text,
    x12_date,
)
from x12.model import (
    X217,
    Address,
    Attachment,
    Authorization,
    Condition,
    DateValue,
    Delivery,
    Diagnosis,
    Entity,
    HomeHealth,
    Institutional,
    PatientEvent,
    Procedure,
    Service,
    ServiceLine,
    Trace,
    UtilizationManagement,
)
from x12.validate import validate_278
from x12.x217 import to_segments

X12 = urls.x12_system
PROCEDURE_QUALIFIERS = MappingProxyType(
    {urls.CPT: "HC", urls.HCPCS: "HC", urls.HCPCS_HTTPS: "HC", urls.NDC: "N4"}
)
UMO_ENTITY_CODES = frozenset({"X3", "PR", "2B", "36", "FA", "P5"})
GENDER = MappingProxyType({"male": "M", "female": "F", "unknown": "U", "other": "U"})
RELATIONSHIP = MappingProxyType(
    {"spouse": "01", "child": "19", "parent": "32", "common": "53", "other": "G8", "injured": "G8"}
)
# FHIR diagnosis type -> HI qualifier (ICD-10-CM, ICD-9-CM): principal, admitting, reason for visit, other.
DIAGNOSIS_QUALIFIERS = MappingProxyType(
    {
        "principal": ("ABK", "BK"),
        "admitting": ("ABJ", "BJ"),
        "patientreasonforvisit": ("APR", "PR"),
        "other": ("ABF", "BF"),
    }
)
SUPPORTING_DATE_QUALIFIERS = MappingProxyType(
    {"patientEvent": "AAH", "admissionDates": "435", "dischargeDates": "096"}
)
UNIT_BASIS = MappingProxyType(
    {"d": "DA", "day": "DA", "days": "DA", "min": "MJ", "minute": "MJ", "minutes": "MJ"}
)
HSD_QUANTITY = MappingProxyType(
    {
        "visit": "VS",
        "visits": "VS",
        "d": "DY",
        "day": "DY",
        "days": "DY",
        "h": "HS",
        "hour": "HS",
        "hours": "HS",
        "mo": "MN",
        "month": "MN",
        "months": "MN",
        "unit": "FL",
        "units": "FL",
        "1": "FL",
    }
)
HSD_PERIOD = MappingProxyType({"h": "6", "d": "7", "wk": "35", "mo": "34", "a": "21"})
ACCIDENT_CAUSES = MappingProxyType({"MVA": "AA", "WPA": "EM"})


def _identifier_value(resource: Json, system: str | None = None) -> str:
    for identifier in as_list(resource.get("identifier")):
        if isinstance(identifier, dict) and (system is None or identifier.get("system") == system):
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return value
    return ""


def _address(resource: Json | None) -> Address | None:
    if not resource:
        return None
    raw = resource.get("address")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, dict):
        return None
    lines = tuple(x for x in as_list(raw.get("line")) if isinstance(x, str))[:2]
    country = text(raw.get("country"))
    return Address(
        lines,
        text(raw.get("city")),
        text(raw.get("state")),
        text(raw.get("postalCode")).replace("-", ""),
        "" if country in ("US", "USA") else country,
    )


def _phone(*resources: Json | None) -> str:
    for resource in resources:
        for telecom in as_list(as_dict(resource).get("telecom")):
            if (
                isinstance(telecom, dict)
                and telecom.get("system") == "phone"
                and isinstance(telecom.get("value"), str)
            ):
                return "".join(ch for ch in telecom["value"] if ch.isdigit())
    return ""


def _person_name(resource: Json) -> tuple[str, str, str, str]:
    names = [n for n in as_list(resource.get("name")) if isinstance(n, dict)]
    if not names:
        return "", "", "", ""
    name = names[0]
    given = [g for g in as_list(name.get("given")) if isinstance(g, str)]
    suffix = [s for s in as_list(name.get("suffix")) if isinstance(s, str)]
    return (
        text(name.get("family")),
        given[0] if given else "",
        given[1] if len(given) > 1 else "",
        suffix[0] if suffix else "",
    )


def _npi_or_id(resource: Json, fallback_qualifier: str) -> tuple[str, str]:
    npi = _identifier_value(resource, urls.NPI)
    if npi:
        return "XX", npi
    other = _identifier_value(resource)
    return (fallback_qualifier, other) if other else ("", "")


class _Mapper:
    """One translation: the Bundle index plus the Claim, so helpers can name FHIRPaths in errors."""

    def __init__(self, bundle: Json) -> None:
        self.index = BundleIndex(bundle)
        claim = self.index.resources[0] if self.index.resources else None
        if claim is None or claim["resourceType"] != "Claim":
            claim = self.index.first("Claim")
        if claim is None:
            raise X12Error.mapping(
                "the PAS request Bundle has no Claim (it must be the first entry)", "Bundle.entry[0]"
            )
        self.claim = claim
        self.bundle = bundle
        self.care_team = {
            ct.get("sequence"): ct for ct in as_list(claim.get("careTeam")) if isinstance(ct, dict)
        }
        self.supporting = [si for si in as_list(claim.get("supportingInfo")) if isinstance(si, dict)]
        items = [it for it in as_list(claim.get("item")) if isinstance(it, dict)]
        self.items = sorted(items, key=sequence_key)
        self.item_info = {seq for it in self.items for seq in as_list(it.get("informationSequence"))}

    # -- parties ---------------------------------------------------------------------------------------
    def umo(self) -> Entity:
        insurer = self.index.resolve(self.claim.get("insurer"))
        if insurer is None:
            raise X12Error.mapping("Claim.insurer must resolve inside the Bundle (2010A)", "Claim.insurer")
        code = next((c for c in (code_in(t, X12("98")) for t in as_list(insurer.get("type"))) if c), "")
        qualifier, value = _npi_or_id(insurer, "PI")
        if not value:
            raise X12Error.mapping(
                "the insurer needs an identifier for NM109 (2010A)", self.index.path(insurer) + ".identifier"
            )
        return Entity(
            code if code in UMO_ENTITY_CODES else "X3",
            "2",
            text(insurer.get("name")),
            id_qualifier=qualifier,
            id=value,
        )

    def provider_entity(
        self, resource: Json, entity_code: str, provider_code: str, taxonomy: str = ""
    ) -> Entity:
        kind = resource["resourceType"]
        role = resource if kind == "PractitionerRole" else None
        person = (
            self.index.resolve(role.get("practitioner"))
            if role
            else (resource if kind == "Practitioner" else None)
        )
        org = (
            self.index.resolve(role.get("organization"))
            if role
            else (resource if kind == "Organization" else None)
        )
        location = None
        if role:
            locations = as_list(role.get("location"))
            location = self.index.resolve(locations[0]) if locations else None
        if role and not taxonomy:
            taxonomy = next(
                (c for c in (code_in(s, urls.NUCC_TAXONOMY) for s in as_list(role.get("specialty"))) if c),
                "",
            )
        if person is not None:
            last, first, middle, suffix = _person_name(person)
            qualifier, value = _npi_or_id(person, "")
            entity_type = "1"
        else:
            target = org or location or resource
            last, first, middle, suffix = text(target.get("name")), "", "", ""
            qualifier, value = _npi_or_id(target, "")
            entity_type = "2"
        if qualifier == "" and value:
            qualifier = "XX"
        address = _address(location) or _address(person) or _address(org)
        return Entity(
            entity_code,
            entity_type,
            last,
            first,
            middle,
            suffix,
            qualifier,
            value,
            address=address,
            phone=_phone(role, person, org, location),
            provider_code=provider_code if taxonomy else "",
            taxonomy=taxonomy,
        )

    def requester(self) -> Entity:
        provider = self.index.resolve(self.claim.get("provider"))
        if provider is None:
            raise X12Error.mapping("Claim.provider must resolve inside the Bundle (2010B)", "Claim.provider")
        org_type = next((c for c in (code_in(t, X12("98")) for t in as_list(provider.get("type"))) if c), "")
        entity_code = "FA" if org_type == "FA" else "1P"
        entity = self.provider_entity(provider, entity_code, "RF")
        if not (entity.last and entity.id):
            raise X12Error.mapping(
                "the requester needs a name and an NPI or other identifier (2010B NM103/NM109)",
                "Claim.provider",
            )
        return entity

    def coverage(self) -> Json:
        insurances = [i for i in as_list(self.claim.get("insurance")) if isinstance(i, dict)]
        chosen = next(
            (i for i in insurances if i.get("focal") is True), insurances[0] if insurances else None
        )
        coverage = self.index.resolve(chosen.get("coverage")) if chosen else None
        if coverage is None:
            raise X12Error.mapping(
                "Claim.insurance.coverage must resolve inside the Bundle (2010C)", "Claim.insurance"
            )
        return coverage

    def member(self, coverage: Json, subscriber: Json) -> str:
        member = text(coverage.get("subscriberId"))
        if not member:
            for identifier in as_list(coverage.get("identifier")):
                if (
                    isinstance(identifier, dict)
                    and code_in(identifier.get("type")) in ("MB", "SN")
                    and identifier.get("value")
                ):
                    member = text(identifier["value"])
                    break
        return member or _identifier_value(subscriber)

    def person(self, patient: Json, entity_code: str) -> Entity:
        last, first, middle, suffix = _person_name(patient)
        return Entity(
            entity_code,
            "1",
            last,
            first,
            middle,
            suffix,
            address=_address(patient),
            birth_date=x12_date(patient.get("birthDate")),
            gender=GENDER.get(text(patient.get("gender")), "") if x12_date(patient.get("birthDate")) else "",
            employment_status=code_in(ext_value(patient, urls.EXT_MILITARY_STATUS), X12("584")),
        )

    def members(self) -> tuple[Entity, Entity | None]:
        coverage = self.coverage()
        patient = self.index.resolve(self.claim.get("patient"))
        if patient is None:
            raise X12Error.mapping(
                "Claim.patient must resolve inside the Bundle (2010C/2010D)", "Claim.patient"
            )
        subscriber = (
            self.index.resolve(coverage.get("subscriber"))
            or self.index.resolve(coverage.get("beneficiary"))
            or patient
        )
        member = self.member(coverage, subscriber)
        if not member:
            raise X12Error.mapping(
                "no member id (NM109): Coverage.subscriberId, an MB identifier or a Patient.identifier",
                self.index.path(coverage) + ".subscriberId",
            )
        sub = self.person(subscriber, "IL")
        sub = Entity(**{**sub.__dict__, "id_qualifier": "MI", "id": member})
        if subscriber is patient:
            return sub, None
        relationship = code_in(coverage.get("relationship"), X12("1069")) or RELATIONSHIP.get(
            code_in(coverage.get("relationship"), urls.SUBSCRIBER_RELATIONSHIP), "G8"
        )
        dependent = self.person(patient, "QC")
        return sub, Entity(**{**dependent.__dict__, "relationship": relationship})

    # -- event -----------------------------------------------------------------------------------------
    def originator(self) -> str:
        identifiers = [i for i in as_list(self.claim.get("identifier")) if isinstance(i, dict)]
        for identifier in identifiers:
            assigner = identifier.get("assigner")
            if isinstance(assigner, dict) and isinstance(assigner.get("identifier"), dict):
                value = text(assigner["identifier"].get("value"))
                if value:
                    return value
            system = text(identifier.get("system"))
            if system.startswith(urls.TRN_ORG_PREFIX):
                return system[len(urls.TRN_ORG_PREFIX) :]
        return ""

    def event_trace(self, requester: Entity) -> Trace:
        identifiers = [
            i for i in as_list(self.claim.get("identifier")) if isinstance(i, dict) and i.get("value")
        ]
        number_ = text(identifiers[0]["value"]) if identifiers else text(self.claim.get("id"))
        if not number_:
            raise X12Error.mapping(
                "Claim.identifier (the patient event trace number, 2000E TRN02) is missing",
                "Claim.identifier",
            )
        sub = text(ext_value(identifiers[0], urls.EXT_SUB_DEPARTMENT)) if identifiers else ""
        return Trace("1", number_, self.originator() or requester.id, sub)

    def um(self, item: Json | None, *, event: bool) -> UtilizationManagement:
        category = code_in(ext_value(item, urls.EXT_SERVICE_ITEM_REQUEST_TYPE), X12("1525")) or "HS"
        if event:
            types = [
                code_in(ext_value(it, urls.EXT_CERTIFICATION_TYPE), X12("1322")) or "I" for it in self.items
            ]
            cert = "3" if types and all(t == "3" for t in types) else (types[0] if types else "I")
        else:
            cert = code_in(ext_value(item, urls.EXT_CERTIFICATION_TYPE), X12("1322")) or "I"
        service_type = code_in(as_dict(item).get("category"), X12("1365"))
        location = as_dict(item).get("locationCodeableConcept")
        facility, qualifier = code_in(location, urls.PLACE_OF_SERVICE), "B"
        if not facility:
            facility, qualifier = code_in(location, urls.NUBC_BILL_TYPE), "A"
        causes: tuple[str, ...] = ()
        state = ""
        accident = self.claim.get("accident")
        if event and isinstance(accident, dict):
            causes = (ACCIDENT_CAUSES.get(code_in(accident.get("type")), "OA"),)
            state = text(as_dict(accident.get("locationAddress")).get("state"))
        return UtilizationManagement(
            category,
            cert,
            service_type,
            facility,
            qualifier if facility else "",
            causes,
            state,
            code_in(ext_value(self.claim, urls.EXT_LEVEL_OF_SERVICE), X12("1338")) if event else "",
        )

    def refs(self, element: Json | None) -> tuple[tuple[str, str], ...]:
        out = []
        auth = text(ext_value(element, urls.EXT_AUTHORIZATION_NUMBER))
        admin = text(ext_value(element, urls.EXT_ADMIN_REFERENCE_NUMBER))
        if auth:
            out.append(("BB", auth))
        if admin:
            out.append(("NT", admin))
        return tuple(out)

    def event_dates(self) -> tuple[DateValue, ...]:
        out: list[DateValue] = []
        accident = self.claim.get("accident")
        if isinstance(accident, dict) and x12_date(accident.get("date")):
            out.append(DateValue("439", x12_date(accident.get("date"))))
        for info in self.supporting:
            qualifier = SUPPORTING_DATE_QUALIFIERS.get(code_in(info.get("category"), urls.PAS_TEMP_CODES))
            if qualifier is None:
                continue
            date = _date_value(qualifier, info.get("timingDate"), info.get("timingPeriod"))
            if date is not None:
                out.append(date)
        return tuple(out)

    def diagnoses(self) -> tuple[Diagnosis, ...]:
        raw = [d for d in as_list(self.claim.get("diagnosis")) if isinstance(d, dict)]
        raw.sort(key=sequence_key)
        out: list[Diagnosis] = []
        for n, diagnosis in enumerate(raw):
            concept = diagnosis.get("diagnosisCodeableConcept")
            code, icd9 = code_in(concept, urls.ICD10_CM), False
            if not code:
                code, icd9 = code_in(concept, urls.ICD9_CM), True
            if not code:
                continue
            kinds = [code_in(t) for t in as_list(diagnosis.get("type"))]
            kind = next((k for k in kinds if k in DIAGNOSIS_QUALIFIERS), "principal" if n == 0 else "other")
            if kind == "principal" and any(d.qualifier in ("ABK", "BK") for d in out):
                kind = "other"
            qualifier = DIAGNOSIS_QUALIFIERS[kind][1 if icd9 else 0]
            date = x12_date(ext_value(diagnosis, urls.EXT_DIAGNOSIS_RECORDED_DATE))
            out.append(Diagnosis(qualifier, code.replace(".", ""), date))
        return tuple(out[:12])

    def attachments(self, sequences: set[Any] | None) -> tuple[Attachment, ...]:
        out: list[Attachment] = []
        for info in self.supporting:
            seq = info.get("sequence")
            if sequences is None and seq in self.item_info:
                continue
            if sequences is not None and seq not in sequences:
                continue
            doc = ext(info, urls.EXT_DOCUMENT_INFORMATION)
            if doc is None:
                continue
            out.append(
                Attachment(
                    code_in(ext_value(doc, "reportTypeCode"), X12("755")),
                    code_in(ext_value(doc, "transmissionMethod"), X12("756")),
                    text(ext_value(doc, "controlNumber")),
                    text(ext_value(doc, "description"))[:80],
                )
            )
        return tuple(out)

    def message(self) -> str:
        texts = [
            text(info.get("valueString"))
            for info in self.supporting
            if code_in(info.get("category"), urls.PAS_TEMP_CODES)
            in ("freeFormMessage", "additionalInformation")
            and info.get("valueString")
        ]
        return " ".join(texts)[:264]

    def encounter(self) -> Json | None:
        return self.index.resolve(ext_value(self.claim, urls.EXT_CLAIM_ENCOUNTER))

    def event(self, requester: Entity) -> PatientEvent:
        condition = None
        crc = ext(self.claim, urls.EXT_CONDITION_CODE)
        if crc is not None:
            indicator = ext_value(crc, "indicator")
            codes = tuple(code_in(e.get("valueCodeableConcept"), X12("1321")) for e in ext_all(crc, "code"))
            condition = Condition(
                code_in(ext_value(crc, "category"), X12("1136")),
                "Y" if indicator is True else "N",
                tuple(c for c in codes if c),
            )
        institutional = None
        encounter = self.encounter()
        if encounter is not None:
            institutional = Institutional(
                next((c for c in (code_in(t) for t in as_list(encounter.get("type"))) if c), ""),
                code_in(as_dict(encounter.get("hospitalization")).get("admitSource")),
                code_in(ext_value(encounter, urls.EXT_PATIENT_STATUS)),
                code_in(ext_value(encounter, urls.EXT_RESIDENTIAL_STATUS)),
            )
        home = ext(self.claim, urls.EXT_HOME_HEALTH)
        home_health = (
            HomeHealth(code_in(ext_value(home, "prognosis"), X12("923")), x12_date(ext_value(home, "date")))
            if home is not None
            else None
        )
        providers = tuple(
            self.care_team_entity(ct, "2010EA")
            for ct in self.care_team.values()
            if ext_value(ct, urls.EXT_CARE_TEAM_CLAIM_SCOPE) is True
        )
        return PatientEvent(
            traces=(self.event_trace(requester),),
            um=self.um(self.items[0] if self.items else None, event=True),
            refs=self.refs(self.claim),
            dates=self.event_dates(),
            diagnoses=self.diagnoses(),
            condition=condition,
            institutional=institutional,
            home_health=home_health,
            attachments=self.attachments(None),
            message=self.message(),
            providers=tuple(p for p in providers if p is not None),
        )

    def care_team_entity(self, care_team: Json, loop: str) -> Entity | None:
        resource = self.index.resolve(care_team.get("provider"))
        if resource is None:
            return None
        role = code_in(care_team.get("role"), X12("98"))
        if not role:
            role = "SJ" if resource["resourceType"] in ("Practitioner", "PractitionerRole") else "FA"
        taxonomy = code_in(care_team.get("qualification"), urls.NUCC_TAXONOMY)
        entity = self.provider_entity(resource, role, "PE", taxonomy)
        # A provider whose practitioner or organisation is not in the Bundle has no NM103/NM109 to send.
        return entity if entity.last or entity.id else None

    # -- services --------------------------------------------------------------------------------------
    def service(self, item: Json, event_trace: Trace, professional: bool) -> Service:
        seq = item.get("sequence")
        trace_id = ext_value(item, urls.EXT_ITEM_TRACE_NUMBER)
        trace_number = text(trace_id.get("value")) if isinstance(trace_id, dict) else ""
        trace = Trace("1", trace_number or f"{event_trace.number}-{seq}", event_trace.originator)
        dates: list[DateValue] = []
        served = _date_value("472", item.get("servicedDate"), item.get("servicedPeriod"))
        if served is not None:
            dates.append(served)
        providers = tuple(
            self.care_team_entity(self.care_team[s], "2010F")
            for s in as_list(item.get("careTeamSequence"))
            if s in self.care_team
            and ext_value(self.care_team[s], urls.EXT_CARE_TEAM_CLAIM_SCOPE) is not True
        )
        requested = self.index.resolve(ext_value(item, urls.EXT_REQUESTED_SERVICE))
        return Service(
            traces=(trace,),
            um=self.um(item, event=False),
            refs=self.refs(item),
            dates=tuple(dates),
            line=_service_line(item, professional),
            delivery=_delivery(requested),
            attachments=self.attachments(set(as_list(item.get("informationSequence")))),
            providers=tuple(p for p in providers if p is not None),
        )

    def authorization(self) -> Authorization:
        requester = self.requester()
        subscriber, dependent = self.members()
        event = self.event(requester)
        professional = code_in(self.claim.get("type"), urls.CLAIM_TYPE) != "institutional"
        services = tuple(self.service(item, event.traces[0], professional) for item in self.items)
        identifier = self.bundle.get("identifier")
        reference = text(identifier.get("value")) if isinstance(identifier, dict) else ""
        stamp = text(self.bundle.get("timestamp")) or text(self.claim.get("created"))
        return Authorization(
            implementation=X217,
            purpose="13",
            reference=reference or event.traces[0].number,
            date=x12_date(stamp),
            time=stamp[11:16].replace(":", "") if len(stamp) >= 16 else "0000",
            umo=self.umo(),
            requester=requester,
            subscriber=subscriber,
            dependent=dependent,
            event=event,
            services=services,
        )

    def parties(self, umo: Entity, requester: Entity) -> tuple[Party, Party]:
        ids = ext(self.claim, urls.EXT_TRANSMISSION_IDS)
        sender_id = text(ext_value(ids, "interchangeSenderID")) or requester.id
        receiver_id = text(ext_value(ids, "interchangeReceiverID")) or umo.id
        return (
            Party("ZZ", sender_id[:15], text(ext_value(ids, "applicationSenderCode")) or sender_id),
            Party("ZZ", receiver_id[:15], text(ext_value(ids, "applicationReceiverCode")) or receiver_id),
        )


def _date_value(qualifier: str, date: Any, period: Any) -> DateValue | None:
    if x12_date(date):
        return DateValue(qualifier, x12_date(date))
    if isinstance(period, dict) and x12_date(period.get("start")):
        start, end = x12_date(period.get("start")), x12_date(period.get("end"))
        return DateValue(qualifier, start, end if end and end != start else "")
    return None


def _service_line(item: Json, professional: bool) -> ServiceLine | None:
    product = item.get("productOrService")
    procedure = None
    for coding in codings(product):
        qualifier = PROCEDURE_QUALIFIERS.get(text(coding.get("system")))
        if qualifier and coding.get("code"):
            modifiers = tuple(code_in(m) for m in as_list(item.get("modifier")) if code_in(m))
            end = code_in(ext_value(item, urls.EXT_PRODUCT_CODE_END)) or code_in(
                ext_value(product, urls.EXT_PRODUCT_CODE_END)
            )
            procedure = Procedure(qualifier, text(coding["code"]), modifiers[:4], end)
            break
    revenue = code_in(item.get("revenue"), urls.NUBC_REVENUE)
    if procedure is None and not revenue:
        return None  # the service is a UM03 service type only; SV1/SV2 need a procedure or revenue code
    raw_quantity = item.get("quantity")
    quantity: Json = raw_quantity if isinstance(raw_quantity, dict) else {}
    unit = text(quantity.get("code")) or text(quantity.get("unit"))
    amount = number(as_dict(item.get("net")).get("value")) or number(
        as_dict(item.get("unitPrice")).get("value")
    )
    count = number(quantity.get("value"))
    level_of_care = code_in(ext_value(item, urls.EXT_LEVEL_OF_CARE), X12("1337"))
    if professional or not revenue:
        epsdt = ext_value(item, urls.EXT_EPSDT)
        return ServiceLine(
            "SV1",
            procedure,
            amount=amount or "0",
            unit_basis=UNIT_BASIS.get(unit, "UN") if count else "",
            quantity=count,
            epsdt="Y" if epsdt is True else ("N" if epsdt is False else ""),
            level_of_care=level_of_care,
        )
    return ServiceLine(
        "SV2",
        procedure,
        revenue,
        amount=amount,
        unit_basis=UNIT_BASIS.get(unit, "UN") if count else "",
        quantity=count,
        unit_rate=number(ext_value(item, urls.EXT_UNIT_RATE_LIMIT)),
        residential_status=code_in(ext_value(item, urls.EXT_RESIDENTIAL_STATUS), X12("1345")),
        level_of_care=level_of_care,
    )


def _delivery(requested: Json | None) -> Delivery | None:
    if requested is None:
        return None
    quantity = requested.get("quantityQuantity") or requested.get("quantity")
    timing = requested.get("occurrenceTiming")
    qualifier = value = period_qualifier = periods = ""
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        unit = (
            text(quantity.get("code"))
            if quantity.get("code") not in (None, "1")
            else text(quantity.get("unit"))
        )
        qualifier = HSD_QUANTITY.get(unit, HSD_QUANTITY.get(text(quantity.get("unit")), "FL"))
        value = number(quantity.get("value"))
    calendar = delivery = ""
    if isinstance(timing, dict):
        raw_repeat = timing.get("repeat")
        repeat: Json = raw_repeat if isinstance(raw_repeat, dict) else {}
        if repeat.get("period") is not None and text(repeat.get("periodUnit")) in HSD_PERIOD:
            period_qualifier = HSD_PERIOD[text(repeat.get("periodUnit"))]
            periods = number(repeat.get("period"))
        calendar = code_in(ext_value(timing, urls.EXT_CALENDAR_PATTERN), X12("678"))
        delivery = code_in(ext_value(timing, urls.EXT_DELIVERY_PATTERN), X12("679"))
    if not (value or periods or calendar or delivery):
        return None
    return Delivery(qualifier, value, "", "", period_qualifier, periods, calendar, delivery)


def authorization_from_bundle(bundle: Json) -> Authorization:
    """The 278 content of a PAS request Bundle (2.0.1 or 2.2.1), without the envelope."""
    with bundle_shape():
        return _Mapper(bundle).authorization()


def bundle_to_278_request(
    bundle: dict[str, Any],
    *,
    control: ControlNumbers,
    now: datetime,
    usage: str = "P",
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    check: bool = False,
) -> str:
    """Translate a PAS request Bundle into a complete 005010X217 278 request interchange.

    Spec: PAS IG (Claim/$submit) and 005010X217 section 2.3. ISA06/ISA08 and GS02/GS03 come from the
    Claim's transmissionIdentifiers extension (else the requester NPI and the payer id); ``now`` dates the
    envelope; BHT04/BHT05 come from ``Bundle.timestamp``. With ``check=True`` the result is held to the
    TR3 rules (:func:`x12.validate.validate_278`) and a violation raises ``Failure.UNPROCESSABLE``.
    """
    with bundle_shape():
        mapper = _Mapper(bundle)
        auth = mapper.authorization()
        sender, receiver = mapper.parties(auth.umo, auth.requester)
    interchange = build_interchange(
        [("278", X217, to_segments(auth))],
        sender=sender,
        receiver=receiver,
        control=control,
        now=now,
        usage=usage,
        delimiters=delimiters,
    )
    text_ = serialize(interchange)
    if check:
        issues = validate_278(text_)
        if issues:
            # The Bundle was readable but yields a 278 the TR3 rules reject (e.g. a short TRN03).
            raise OperationOutcomeError(Failure.UNPROCESSABLE, tuple(issues))
    return text_
