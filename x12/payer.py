"""A simulated X12 payer: answers a 278 request with a 278 response, for the demo and the tests.

Decisions come from ``decide`` when given, else from :func:`default_decision`: a marker in the request
MSG text (``X12-DECISION:A3``, ``:A4``, ``:A6`` or ``:AAA``), then the procedure code table below, else
approval (A1). A subscriber whose member id is missing or starts with ``INVALID`` gets an AAA at 2010C,
a requester NPI that is not 10 digits an AAA at 2010B.
Spec: 005010X217 response (HCR, AAA, REF, DTP, SV1/SV2, PWK, MSG), decision codes in rules/codes.toml.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from x12.envelope import ControlNumbers, Party, build_interchange, parse_interchange, serialize
from x12.errors import X12Error
from x12.model import (
    X217,
    Attachment,
    Authorization,
    DateValue,
    Entity,
    PatientEvent,
    Rejection,
    Review,
    Service,
    Trace,
)
from x12.x217 import read_authorization, to_segments


@dataclass(frozen=True)
class Decision:
    """What the simulated UMO decides for one 2000F service."""

    action: str  # HCR01: A1, A3, A4, A6, C; or "AAA" for a service-level rejection
    reason: str = ""  # HCR03 (886) or, for AAA, AAA03 (901)
    message: str = ""  # MSG01 (PAS processNote)
    quantity: str = ""  # A6: the authorized quantity (SV104 / SV205)
    followup: str = "C"  # AAA04 (889) for AAA


Decide = Callable[[Authorization, Service], Decision]

# Procedure or service-type codes with a fixed simulated decision (everything else is approved).
CODE_DECISIONS = MappingProxyType(
    {
        "33510": Decision("A4", message="Pended for clinical review - send the operative plan"),
        "B4185": Decision(
            "A3", message="Denied - not medically necessary under the plan's enteral nutrition policy"
        ),
        "97110": Decision("A6", quantity="6", message="Modified - 6 therapy units authorized"),
        "99499": Decision("AAA", reason="AG"),
    }
)
MARKER = "X12-DECISION:"
PAYER_TRACE_ORIGINATOR = "9PRIORGATE"


def default_decision(auth: Authorization, service: Service) -> Decision:
    """Marker in MSG, then :data:`CODE_DECISIONS`, then A1; a cancel (UM02 = 3) is answered with C."""
    for message in (service.message, auth.event.message):
        if MARKER in message:
            code = message.split(MARKER, 1)[1].split()[0].strip(".,;")
            if code == "AAA":
                return Decision("AAA", reason="33")
            if code == "A6":
                return Decision("A6", quantity="1", message="Modified - quantity reduced")
            if code == "A3":
                return Decision("A3", message="Denied - documentation does not support medical necessity")
            return Decision(code)
    certification = service.um or auth.event.um
    if certification is not None and certification.certification_type == "3":
        return Decision("C")
    code = ""
    if service.line is not None and service.line.procedure is not None:
        code = service.line.procedure.code
    elif service.um is not None:
        code = service.um.service_type
    return CODE_DECISIONS.get(code, Decision("A1"))


def _d8(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def _auth_number(auth: Authorization, trace: str) -> str:
    return f"PG{zlib.crc32(f'{auth.reference}|{trace}'.encode()):08X}"


def _echo(entity: Entity, *, keep_demographics: bool = False) -> Entity:
    return Entity(
        entity.entity_code,
        entity.entity_type,
        entity.last,
        entity.first,
        entity.middle,
        entity.suffix,
        entity.id_qualifier,
        entity.id,
        birth_date=entity.birth_date if keep_demographics else "",
        gender=entity.gender if keep_demographics else "",
    )


def _service_response(
    auth: Authorization,
    service: Service,
    decision: Decision,
    now: datetime,
    event_providers: tuple[Entity, ...],
) -> Service:
    traces = tuple(
        Trace("2", t.number, t.originator, t.sub_department) for t in service.traces if t.type == "1"
    )
    if decision.action == "AAA":
        return Service(
            traces=traces,
            rejections=(Rejection("2000F", "N", decision.reason, decision.followup),),
            um=service.um,
        )
    trace_number = traces[0].number if traces else str(auth.services.index(service) + 1)
    number = _auth_number(auth, trace_number)
    review = Review(decision.action, number if decision.action in ("A1", "A2", "A6") else "", decision.reason)
    refs: tuple[tuple[str, str], ...] = ()
    dates: list[DateValue] = [d for d in service.dates if d.qualifier == "472"]
    attachments: tuple[Attachment, ...] = ()
    line = None
    if decision.action in ("A1", "A2", "A6"):
        served = next((d for d in service.dates if d.qualifier == "472"), None)
        start = served.start if served else _d8(now)
        end = served.end if served and served.end else _d8(now + timedelta(days=90))
        dates += [DateValue("102", _d8(now)), DateValue("007", start), DateValue("036", end)]
    if decision.action == "A4":
        refs = (("NT", f"PEND{number[2:]}"),)
        attachments = (
            Attachment("03", "EL", f"DOC{number[2:]}", "Additional clinical documentation requested"),
        )
    if decision.action == "A6" and service.line is not None:
        line = replace(
            service.line,
            quantity=decision.quantity or service.line.quantity,
            unit_basis=service.line.unit_basis or "UN",
        )
    return Service(
        traces=traces,
        um=service.um,
        review=review,
        refs=refs,
        dates=tuple(dates),
        line=line,
        attachments=attachments,
        message=decision.message,
        providers=tuple(_echo(p) for p in (service.providers or event_providers))
        if decision.action in ("A1", "A2", "A6")
        else (),
    )


def _event_action(actions: list[str]) -> str:
    if not actions:
        return "A1"
    if len(set(actions)) == 1:
        return actions[0]
    if "A4" in actions:
        return "A4"
    return "A2"


def respond(auth: Authorization, *, now: datetime, decide: Decide | None = None) -> Authorization:
    """The simulated 278 response content for a parsed 278 request."""
    decide = decide or default_decision
    event_trace = next((t for t in auth.event.traces if t.type == "1"), None)
    echoed = (
        (Trace("2", event_trace.number, event_trace.originator, event_trace.sub_department),)
        if event_trace
        else ()
    )
    payer_trace = Trace("1", _auth_number(auth, "event"), PAYER_TRACE_ORIGINATOR)
    subscriber = _echo(auth.subscriber, keep_demographics=True)
    requester = _echo(auth.requester)
    bad_member = not auth.subscriber.id or auth.subscriber.id.upper().startswith("INVALID")
    bad_npi = auth.requester.id_qualifier == "XX" and not (
        auth.requester.id.isdigit() and len(auth.requester.id) == 10
    )
    if bad_member or bad_npi:
        if bad_member:
            subscriber = replace(subscriber, rejections=(Rejection("2010C", "N", "72", "C"),))
        if bad_npi:
            requester = replace(requester, rejections=(Rejection("2010B", "N", "43", "C"),))
        return Authorization(
            implementation=auth.implementation,
            purpose="11",
            reference=auth.reference,
            date=_d8(now),
            time=now.strftime("%H%M"),
            umo=_echo(auth.umo),
            requester=requester,
            subscriber=subscriber,
            dependent=_echo(auth.dependent) if auth.dependent else None,
        )
    services = tuple(
        _service_response(auth, s, decide(auth, s), now, auth.event.providers) for s in auth.services
    )
    actions = [s.review.action for s in services if s.review is not None]
    event_review = Review(
        _event_action(actions),
        _auth_number(auth, "event") if set(actions) <= {"A1", "A2", "A6"} and actions else "",
    )
    event = PatientEvent(
        traces=echoed + (payer_trace,),
        um=auth.event.um,
        review=event_review,
        dates=tuple(d for d in auth.event.dates if d.qualifier in ("AAH", "435", "096")),
        providers=tuple(_echo(p) for p in auth.event.providers),
    )
    return Authorization(
        implementation=auth.implementation,
        purpose="11",
        reference=auth.reference,
        date=_d8(now),
        time=now.strftime("%H%M"),
        umo=_echo(auth.umo),
        requester=_echo(auth.requester),
        subscriber=subscriber,
        dependent=_echo(auth.dependent, keep_demographics=True) if auth.dependent else None,
        event=event,
        services=services,
    )


def simulate_payer_response(
    request_278: str,
    *,
    now: datetime,
    decide: Decide | None = None,
    control: ControlNumbers | None = None,
) -> str:
    """Answer a 278 request interchange (X217 or X215) with a 278 response interchange.

    Spec: 005010X217 / 005010X215 response. Sender and receiver are swapped; control numbers default to
    the request's own so a test can pair them.
    """
    interchange = parse_interchange(request_278)
    bodies = []
    for tx in interchange.transactions:
        if tx.set_id != "278":
            raise X12Error.at(
                f"transaction set {tx.set_id!r} is not a 278",
                position=tx.position,
                segment_id="ST",
                element=1,
            )
        auth = read_authorization(tx.segments, tx.implementation or X217)
        if auth.purpose == "11":
            raise X12Error.at(
                "this is already a response (BHT02 = 11)",
                position=tx.segments[0].position,
                segment_id="BHT",
                element=2,
            )
        bodies.append(("278", tx.implementation or X217, to_segments(respond(auth, now=now, decide=decide))))
    if not bodies:
        raise X12Error.at("the interchange holds no 278 request", position=1, segment_id="ISA")
    group = interchange.groups[0]
    if control is None:
        control = ControlNumbers(
            int(interchange.control_number),
            int(group.control_number) if group.control_number.isdigit() else 1,
        )
    response = build_interchange(
        bodies,
        sender=Party(interchange.receiver.qualifier, interchange.receiver.id, group.receiver),
        receiver=Party(interchange.sender.qualifier, interchange.sender.id, group.sender),
        control=control,
        now=now,
        usage=interchange.usage,
        delimiters=interchange.delimiters,
    )
    return serialize(response)
