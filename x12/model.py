"""The typed 278 content: one model for the request, the response and the inquiry (same loops, different use).

Field comments give the TR3 element each value travels in (005010X217 / 005010X215). Dates are X12 text
(CCYYMMDD); amounts and quantities are kept as their exact decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...] = ()  # N301, N302
    city: str = ""  # N401
    state: str = ""  # N402
    postal_code: str = ""  # N403
    country: str = ""  # N404 (only outside the US)


@dataclass(frozen=True)
class Rejection:
    """AAA: request validation. ``loop`` is where the AAA sat (2000A, 2010A, ..., 2000F, 2010F)."""

    loop: str
    valid: str  # AAA01 Y/N
    reason: str  # AAA03 (901)
    followup: str = ""  # AAA04 (889)


@dataclass(frozen=True)
class Entity:
    """A 2010 name loop: NM1 with its REF, N3/N4, PER, PRV, DMG and INS."""

    entity_code: str  # NM101 (98)
    entity_type: str  # NM102: 1 person, 2 non-person
    last: str = ""  # NM103 (last name or organisation name)
    first: str = ""  # NM104
    middle: str = ""  # NM105
    suffix: str = ""  # NM107
    id_qualifier: str = ""  # NM108: PI, XX (NPI), MI (member), 24, 34, 46
    id: str = ""  # NM109
    refs: tuple[tuple[str, str], ...] = ()  # REF01, REF02
    address: Address | None = None  # N3/N4
    phone: str = ""  # PER03 TE / PER04
    contact_name: str = ""  # PER02
    provider_code: str = ""  # PRV01: AD, AT, OP, PE, RF, ...
    taxonomy: str = ""  # PRV03 (PRV02 = PXC)
    birth_date: str = ""  # DMG02 (DMG01 = D8)
    gender: str = ""  # DMG03: F, M, U
    relationship: str = ""  # INS02 (1069); INS01 = Y for the subscriber, N for a dependent
    employment_status: str = ""  # INS08 (584), PAS militaryStatus
    rejections: tuple[Rejection, ...] = ()


@dataclass(frozen=True)
class Trace:
    """TRN: 1 = current transaction trace number (assigned by the sender), 2 = referenced (echoed)."""

    type: str  # TRN01
    number: str  # TRN02
    originator: str = ""  # TRN03 (10 characters, 1 + EIN or an assigned id)
    sub_department: str = ""  # TRN04


@dataclass(frozen=True)
class UtilizationManagement:
    """UM: what kind of review is asked for."""

    request_category: str  # UM01 (1525): AR, HS, SC, IN
    certification_type: str  # UM02 (1322): I initial, 1/2 appeal, 3 cancel, 4 extension, S revised
    service_type: str = ""  # UM03 (1365)
    facility_code: str = ""  # UM04-1 place of service or bill type
    facility_qualifier: str = ""  # UM04-2: A bill type (NUBC), B place of service
    related_causes: tuple[str, ...] = ()  # UM05-1..3 (1362): AA auto accident, EM employment, OA other
    related_state: str = ""  # UM05-4
    level_of_service: str = ""  # UM06 (1338): E elective, U urgent, 03 emergency


@dataclass(frozen=True)
class Review:
    """HCR: the UMO's decision."""

    action: str  # HCR01 (306): A1, A2, A3, A4, A6, C, CT, NA
    number: str = ""  # HCR02 review identification (the authorization number)
    reason: str = ""  # HCR03 (886)
    second_opinion: str = ""  # HCR04 Y/N


@dataclass(frozen=True)
class DateValue:
    """DTP: D8 for one date, RD8 for a range."""

    qualifier: str  # DTP01 (374): 439 accident, AAH event, 435 admission, 096 discharge, 472 service, ...
    start: str
    end: str = ""


@dataclass(frozen=True)
class Diagnosis:
    """One HI composite: qualifier (ABK principal, ABF other, ABJ admitting, APR visit reason), code, date."""

    qualifier: str
    code: str  # ICD-10-CM without the dot
    date: str = ""  # HIxx-4 (HIxx-3 = D8)


@dataclass(frozen=True)
class Delivery:
    """HSD: health care services delivery pattern."""

    quantity_qualifier: str = (
        ""  # HSD01 (673): VS visits, DY days, HS hours, MN minutes? (see codes), FL units
    )
    quantity: str = ""  # HSD02
    unit: str = ""  # HSD03 (355)
    sample_modulus: str = ""  # HSD04
    period_qualifier: str = ""  # HSD05 (615): 7 day, 35 week? (see codes), 34 month
    periods: str = ""  # HSD06
    calendar_pattern: str = ""  # HSD07 (678)
    delivery_time: str = ""  # HSD08 (679)


@dataclass(frozen=True)
class Condition:
    """CRC: condition indicator (PAS conditionCode)."""

    category: str  # CRC01 (1136)
    indicator: str  # CRC02 Y/N
    codes: tuple[str, ...] = ()  # CRC03.. (1321)


@dataclass(frozen=True)
class Institutional:
    """CL1: institutional claim code (PAS Encounter)."""

    admission_type: str = ""  # CL101 (1315)
    admission_source: str = ""  # CL102 (1314)
    patient_status: str = ""  # CL103 (1352)
    residential_status: str = ""  # CL104 (1345)


@dataclass(frozen=True)
class HomeHealth:
    """CR6: home health care information (prognosis and start of care)."""

    prognosis: str  # CR601 (923)
    date: str = ""  # CR602 (D8)


@dataclass(frozen=True)
class Attachment:
    """PWK: additional documentation sent (request) or requested (response)."""

    report_type: str  # PWK01 (755)
    transmission: str  # PWK02 (756)
    control_number: str = ""  # PWK06 (PWK05 = AC)
    description: str = ""  # PWK07


@dataclass(frozen=True)
class Procedure:
    qualifier: str  # HC (CPT/HCPCS), IV (HIEC), N4 (NDC), ID (ICD-9-CM), ZZ (ICD-10-PCS)? see codes
    code: str
    modifiers: tuple[str, ...] = ()
    end_code: str = ""  # range end (X215 SV101-8 / PAS productOrServiceCodeEnd)


@dataclass(frozen=True)
class ServiceLine:
    """SV1 (professional) or SV2 (institutional)."""

    kind: str  # "SV1" or "SV2"
    procedure: Procedure | None = None  # SV101 / SV202
    revenue_code: str = ""  # SV201
    amount: str = ""  # SV102 / SV203
    unit_basis: str = ""  # SV103 / SV204 (355): UN units, DA days, MJ minutes
    quantity: str = ""  # SV104 / SV205
    unit_rate: str = ""  # SV206
    epsdt: str = ""  # SV111 Y/N
    residential_status: str = ""  # SV209 (1345)
    level_of_care: str = ""  # SV120 / SV210 (1337)


@dataclass(frozen=True)
class Service:
    """Loop 2000F: one requested service and, in a response, its decision."""

    traces: tuple[Trace, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    um: UtilizationManagement | None = None
    review: Review | None = None
    refs: tuple[tuple[str, str], ...] = ()  # REF*BB previous authorization, REF*NT administrative reference
    dates: tuple[DateValue, ...] = ()
    line: ServiceLine | None = None
    delivery: Delivery | None = None
    attachments: tuple[Attachment, ...] = ()
    message: str = ""
    providers: tuple[Entity, ...] = ()  # 2010F


@dataclass(frozen=True)
class PatientEvent:
    """Loop 2000E: the patient event (request) and the event-level decision (response)."""

    traces: tuple[Trace, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    um: UtilizationManagement | None = None
    review: Review | None = None
    refs: tuple[tuple[str, str], ...] = ()
    dates: tuple[DateValue, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()
    delivery: Delivery | None = None
    condition: Condition | None = None
    institutional: Institutional | None = None
    home_health: HomeHealth | None = None
    attachments: tuple[Attachment, ...] = ()
    message: str = ""
    providers: tuple[Entity, ...] = ()  # 2010EA


@dataclass(frozen=True)
class Authorization:
    """One 278 transaction set body, request or response, X217 or X215."""

    implementation: str  # ST03: 005010X217 or 005010X215
    purpose: str  # BHT02: 13 request, 11 response, 01 cancellation
    reference: str  # BHT03 submitter transaction identifier
    date: str  # BHT04 CCYYMMDD
    time: str  # BHT05 HHMM[SS]
    umo: Entity  # 2010A
    requester: Entity  # 2010B
    subscriber: Entity  # 2010C
    dependent: Entity | None = None  # 2010D
    event: PatientEvent = field(default_factory=PatientEvent)
    services: tuple[Service, ...] = ()
    transaction_type: str = ""  # BHT06 (response: 18 ... see codes)
    level_rejections: tuple[Rejection, ...] = ()  # AAA directly in 2000A..2000D


X217 = "005010X217"
X215 = "005010X215"
