"""The 278 body codec: :class:`x12.model.Authorization` to segments and back (005010X217 and 005010X215).

Segment order inside each loop follows the TR3 transaction set listing (section 2.3 of each TR3).
"""

from __future__ import annotations

from collections.abc import Sequence

from x12.codec import Segment, seg
from x12.errors import X12Error
from x12.loops import Loop, Transaction278, parse_loops
from x12.model import (
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
    Rejection,
    Review,
    Service,
    ServiceLine,
    Trace,
    UtilizationManagement,
)

# ---------------------------------------------------------------------------------------------- writing


def _aaa(rejections: Sequence[Rejection]) -> list[Segment]:
    return [seg("AAA", r.valid, None, r.reason, r.followup) for r in rejections]


def _entity(entity: Entity) -> list[Segment]:
    out = [
        seg(
            "NM1",
            entity.entity_code,
            entity.entity_type,
            entity.last,
            entity.first,
            entity.middle,
            None,
            entity.suffix,
            entity.id_qualifier if entity.id else None,
            entity.id,
        )
    ]
    out.extend(seg("REF", q, v) for q, v in entity.refs)
    if entity.address is not None:
        a = entity.address
        if a.lines:
            out.append(seg("N3", *a.lines[:2]))
        out.append(
            seg("N4", a.city, a.state, a.postal_code, a.country if a.country not in ("", "US") else None)
        )
    if entity.phone or entity.contact_name:
        out.append(seg("PER", "IC", entity.contact_name, "TE" if entity.phone else None, entity.phone))
    out.extend(_aaa(entity.rejections))
    if entity.provider_code:
        out.append(seg("PRV", entity.provider_code, "PXC" if entity.taxonomy else None, entity.taxonomy))
    if entity.birth_date:  # DMG01/DMG02 are required when DMG is sent; gender alone does not travel
        out.append(seg("DMG", "D8", entity.birth_date, entity.gender))
    if entity.relationship or entity.employment_status:
        ins_01 = "Y" if entity.relationship in ("", "18") else "N"
        out.append(
            seg(
                "INS",
                ins_01,
                entity.relationship or "18",
                None,
                None,
                None,
                None,
                None,
                entity.employment_status,
            )
        )
    return out


def _um(um: UtilizationManagement | None) -> list[Segment]:
    if um is None:
        return []
    facility = (um.facility_code, um.facility_qualifier) if um.facility_code else None
    causes = None
    if um.related_causes:  # UM05-1..3 related causes, UM05-4 state
        first_three = um.related_causes[:3]
        causes = (*first_three, *([""] * (3 - len(first_three))), um.related_state)
    return [
        seg(
            "UM",
            um.request_category,
            um.certification_type,
            um.service_type,
            facility,
            causes,
            um.level_of_service,
        )
    ]


def _hcr(review: Review | None) -> list[Segment]:
    return (
        []
        if review is None
        else [seg("HCR", review.action, review.number, review.reason, review.second_opinion)]
    )


def _dtp(dates: Sequence[DateValue]) -> list[Segment]:
    return [
        seg("DTP", d.qualifier, "RD8", f"{d.start}-{d.end}")
        if d.end
        else seg("DTP", d.qualifier, "D8", d.start)
        for d in dates
    ]


def _hsd(delivery: Delivery | None) -> list[Segment]:
    if delivery is None:
        return []
    d = delivery
    return [
        seg(
            "HSD",
            d.quantity_qualifier,
            d.quantity,
            d.unit,
            d.sample_modulus,
            d.period_qualifier,
            d.periods,
            d.calendar_pattern,
            d.delivery_time,
        )
    ]


def _pwk(attachments: Sequence[Attachment]) -> list[Segment]:
    return [
        seg(
            "PWK",
            a.report_type,
            a.transmission,
            None,
            None,
            "AC" if a.control_number else None,
            a.control_number,
            a.description,
        )
        for a in attachments
    ]


def _trn(traces: Sequence[Trace]) -> list[Segment]:
    return [seg("TRN", t.type, t.number, t.originator, t.sub_department) for t in traces]


def _line(line: ServiceLine | None) -> list[Segment]:
    if line is None:
        return []
    proc = None
    if line.procedure is not None:
        p = line.procedure
        proc = (p.qualifier, p.code, *p.modifiers[:4], *([""] * (4 - len(p.modifiers[:4]))), "", p.end_code)
    if line.kind == "SV1":
        return [
            seg(
                "SV1",
                proc,
                line.amount,
                line.unit_basis,
                line.quantity,
                None,
                None,
                None,
                None,
                None,
                None,
                line.epsdt,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                line.level_of_care,
            )
        ]
    return [
        seg(
            "SV2",
            line.revenue_code,
            proc,
            line.amount,
            line.unit_basis,
            line.quantity,
            line.unit_rate,
            None,
            None,
            line.residential_status,
            line.level_of_care,
        )
    ]


def _event(event: PatientEvent) -> list[Segment]:
    out = _trn(event.traces) + _aaa(event.rejections) + _um(event.um) + _hcr(event.review)
    out.extend(seg("REF", q, v) for q, v in event.refs)
    out.extend(_dtp(event.dates))
    if event.diagnoses:
        out.append(
            seg("HI", *[(d.qualifier, d.code, "D8" if d.date else "", d.date) for d in event.diagnoses[:12]])
        )
    out.extend(_hsd(event.delivery))
    if event.condition is not None:
        c = event.condition
        out.append(seg("CRC", c.category, c.indicator, *c.codes))
    if event.institutional is not None:
        i = event.institutional
        out.append(seg("CL1", i.admission_type, i.admission_source, i.patient_status, i.residential_status))
    if event.home_health is not None:
        h = event.home_health
        out.append(seg("CR6", h.prognosis, h.date))
    out.extend(_pwk(event.attachments))
    if event.message:
        out.append(seg("MSG", event.message))
    for provider in event.providers:
        out.extend(_entity(provider))
    return out


def _service(service: Service) -> list[Segment]:
    out = _trn(service.traces) + _aaa(service.rejections) + _um(service.um) + _hcr(service.review)
    out.extend(seg("REF", q, v) for q, v in service.refs)
    out.extend(_dtp(service.dates))
    out.extend(_line(service.line))
    out.extend(_hsd(service.delivery))
    out.extend(_pwk(service.attachments))
    if service.message:
        out.append(seg("MSG", service.message))
    for provider in service.providers:
        out.extend(_entity(provider))
    return out


def to_segments(auth: Authorization) -> list[Segment]:
    """The transaction body (BHT .. last loop, without ST/SE) for ``auth``."""
    out: list[Segment] = [
        seg("BHT", "0007", auth.purpose, auth.reference, auth.date, auth.time, auth.transaction_type)
    ]
    level_aaa: dict[str, list[Rejection]] = {}
    for r in auth.level_rejections:
        level_aaa.setdefault(r.loop, []).append(r)
    has_event = auth.event != PatientEvent() or bool(auth.services)

    def hl(n: int, parent: int | None, code: str, children: bool) -> Segment:
        return seg("HL", str(n), str(parent) if parent else None, code, "1" if children else "0")

    out.append(hl(1, None, "20", True))
    out.extend(_aaa(level_aaa.get("2000A", ())))
    out.extend(_entity(auth.umo))
    out.append(hl(2, 1, "21", True))
    out.extend(_aaa(level_aaa.get("2000B", ())))
    out.extend(_entity(auth.requester))
    out.append(hl(3, 2, "22", has_event or auth.dependent is not None))
    out.extend(_aaa(level_aaa.get("2000C", ())))
    out.extend(_entity(auth.subscriber))
    parent = 3
    n = 4
    if auth.dependent is not None:
        out.append(hl(n, 3, "23", has_event))
        out.extend(_aaa(level_aaa.get("2000D", ())))
        out.extend(_entity(auth.dependent))
        parent = n
        n += 1
    if has_event:
        event_hl = n
        out.append(hl(n, parent, "EV", bool(auth.services)))
        out.extend(_event(auth.event))
        for service in auth.services:
            n += 1
            out.append(hl(n, event_hl, "SS", False))
            out.extend(_service(service))
    return out


# ---------------------------------------------------------------------------------------------- reading


def _rejections(loop: Loop) -> tuple[Rejection, ...]:
    return tuple(Rejection(loop.id, s.get(1), s.get(3), s.get(4)) for s in loop.all("AAA"))


_EMPTY = ("",) * 10


def _padded(segment: Segment | None, n: int) -> tuple[str, ...]:
    """Elements 1..n of ``segment`` as a tuple indexed from 0, padded with ""; all "" when absent."""
    if segment is None:
        return _EMPTY[:n]
    elements = segment.elements
    return elements[:n] if len(elements) >= n else elements + _EMPTY[: n - len(elements)]


def _read_entity(loop: Loop) -> Entity:
    found: dict[str, Segment] = {}
    refs: list[tuple[str, str]] = []
    for segment in loop.segments[1:]:
        if segment.id == "REF":
            refs.append((segment.get(1), segment.get(2)))
        else:
            found.setdefault(segment.id, segment)
    nm1 = _padded(loop.segments[0], 9)
    n3, n4, per = found.get("N3"), found.get("N4"), _padded(found.get("PER"), 8)
    prv, dmg, ins = _padded(found.get("PRV"), 3), _padded(found.get("DMG"), 3), _padded(found.get("INS"), 8)
    address = None
    if n3 is not None or n4 is not None:
        street, place = _padded(n3, 2), _padded(n4, 4)
        address = Address(tuple(x for x in street if x), *place)
    phone = ""
    for q in (2, 4, 6):
        if per[q] == "TE":
            phone = per[q + 1]
            break
    return Entity(
        entity_code=nm1[0],
        entity_type=nm1[1],
        last=nm1[2],
        first=nm1[3],
        middle=nm1[4],
        suffix=nm1[6],
        id_qualifier=nm1[7],
        id=nm1[8],
        refs=tuple(refs),
        address=address,
        phone=phone,
        contact_name=per[1],
        provider_code=prv[0],
        taxonomy=prv[2],
        birth_date=dmg[1],
        gender=dmg[2],
        relationship=ins[1] if ins[0] == "N" or (ins[1] and ins[1] != "18") else "",
        employment_status=ins[7],
        rejections=_rejections(loop) if "AAA" in found else (),
    )


def _name(level: Loop, required: bool = True) -> Entity:
    names = [loop for loop in level.loops if loop.id.startswith("2010")]
    if not names:
        if not required:
            return Entity("", "")
        hl = level.segments[0]
        raise X12Error.at(
            f"loop {level.id} needs its 2010 NM1 name loop", position=hl.position, segment_id="HL"
        )
    return _read_entity(names[0])


def _composite(segment: Segment, n: int) -> tuple[str, ...]:
    return segment.composite(n)


def _read_um(s: Segment | None) -> UtilizationManagement | None:
    if s is None:
        return None
    facility = _composite(s, 4)
    causes = _composite(s, 5)
    return UtilizationManagement(
        request_category=s.get(1),
        certification_type=s.get(2),
        service_type=s.get(3),
        facility_code=facility[0] if facility else "",
        facility_qualifier=facility[1] if len(facility) > 1 else "",
        related_causes=tuple(c for c in causes[:3] if c),
        related_state=causes[3] if len(causes) > 3 else "",
        level_of_service=s.get(6),
    )


def _read_dates(loop: Loop) -> tuple[DateValue, ...]:
    out: list[DateValue] = []
    for s in loop.all("DTP"):
        fmt, value = s.get(2), s.get(3)
        if fmt == "RD8":
            start, _, end = value.partition("-")
            if not (start and end):
                raise X12Error.at(
                    "RD8 must be CCYYMMDD-CCYYMMDD", position=s.position, segment_id="DTP", element=3
                )
            out.append(DateValue(s.get(1), start, end))
        elif fmt == "D8":
            out.append(DateValue(s.get(1), value))
        else:
            raise X12Error.at(
                f"date format {fmt!r} is not D8 or RD8", position=s.position, segment_id="DTP", element=2
            )
    return tuple(out)


def _read_hsd(s: Segment | None) -> Delivery | None:
    if s is None:
        return None
    return Delivery(*(s.get(n) for n in range(1, 9)))


def _read_pwk(loop: Loop) -> tuple[Attachment, ...]:
    return tuple(Attachment(s.get(1), s.get(2), s.get(6), s.get(7)) for s in loop.all("PWK"))


def _read_traces(loop: Loop) -> tuple[Trace, ...]:
    return tuple(Trace(s.get(1), s.get(2), s.get(3), s.get(4)) for s in loop.all("TRN"))


def _read_hcr(s: Segment | None) -> Review | None:
    return None if s is None else Review(s.get(1), s.get(2), s.get(3), s.get(4))


def _read_line(loop: Loop) -> ServiceLine | None:
    for kind in ("SV1", "SV2"):
        s = loop.first(kind)
        if s is None:
            continue
        comp = _composite(s, 1 if kind == "SV1" else 2)
        proc = None
        if comp:
            proc = Procedure(
                comp[0],
                comp[1] if len(comp) > 1 else "",
                tuple(m for m in comp[2:6] if m),
                comp[7] if len(comp) > 7 else "",
            )
        if kind == "SV1":
            return ServiceLine("SV1", proc, "", s.get(2), s.get(3), s.get(4), "", s.get(11), "", s.get(20))
        return ServiceLine(
            "SV2", proc, s.get(1), s.get(3), s.get(4), s.get(5), s.get(6), "", s.get(9), s.get(10)
        )
    return None


def _read_event(loop: Loop) -> PatientEvent:
    hi = loop.first("HI")
    diagnoses: list[Diagnosis] = []
    if hi is not None:
        for n in range(1, len(hi.elements) + 1):
            c = _composite(hi, n)
            if c:
                diagnoses.append(Diagnosis(c[0], c[1] if len(c) > 1 else "", c[3] if len(c) > 3 else ""))
    crc, cl1, cr6, msg = (loop.first(x) for x in ("CRC", "CL1", "CR6", "MSG"))
    return PatientEvent(
        traces=_read_traces(loop),
        rejections=_rejections(loop),
        um=_read_um(loop.first("UM")),
        review=_read_hcr(loop.first("HCR")),
        refs=tuple((s.get(1), s.get(2)) for s in loop.all("REF")),
        dates=_read_dates(loop),
        diagnoses=tuple(diagnoses),
        delivery=_read_hsd(loop.first("HSD")),
        condition=Condition(crc.get(1), crc.get(2), tuple(x for x in crc.elements[2:] if x)) if crc else None,
        institutional=Institutional(cl1.get(1), cl1.get(2), cl1.get(3), cl1.get(4)) if cl1 else None,
        home_health=HomeHealth(cr6.get(1), cr6.get(2)) if cr6 else None,
        attachments=_read_pwk(loop),
        message=msg.get(1) if msg else "",
        providers=tuple(_read_entity(x) for x in loop.loops if x.id.startswith("2010")),
    )


def _read_service(loop: Loop) -> Service:
    msg = loop.first("MSG")
    return Service(
        traces=_read_traces(loop),
        rejections=_rejections(loop),
        um=_read_um(loop.first("UM")),
        review=_read_hcr(loop.first("HCR")),
        refs=tuple((s.get(1), s.get(2)) for s in loop.all("REF")),
        dates=_read_dates(loop),
        line=_read_line(loop),
        delivery=_read_hsd(loop.first("HSD")),
        attachments=_read_pwk(loop),
        message=msg.get(1) if msg else "",
        providers=tuple(_read_entity(x) for x in loop.loops if x.id == "2010F"),
    )


def _one(loops: list[Loop], loop_id: str, where: Segment) -> Loop:
    if not loops:
        raise X12Error.at(f"missing loop {loop_id}", position=where.position, segment_id=where.id)
    return loops[0]


def from_transaction(tree: Transaction278, implementation: str) -> Authorization:
    """Read a parsed 278 body into the typed model."""
    bht = tree.bht
    umo_level = _one(list(tree.loops), "2000A", bht)
    requester_level = _one(umo_level.children("2000B"), "2000B", umo_level.segments[0])
    subscriber_level = _one(requester_level.children("2000C"), "2000C", requester_level.segments[0])
    dependents = subscriber_level.children("2000D")
    holder = dependents[0] if dependents else subscriber_level
    events = holder.children("2000E")
    level_rejections = tuple(
        r
        for level in (umo_level, requester_level, subscriber_level, *dependents[:1])
        for r in _rejections(level)
    )
    response = bht.get(2) == "11"
    event = _read_event(events[0]) if events else PatientEvent()
    services = tuple(_read_service(x) for x in events[0].children("2000F")) if events else ()
    return Authorization(
        implementation=implementation,
        purpose=bht.get(2),
        reference=bht.get(3),
        date=bht.get(4),
        time=bht.get(5),
        umo=_name(umo_level, required=not response),
        requester=_name(requester_level, required=not response),
        subscriber=_name(subscriber_level, required=not response),
        dependent=_name(dependents[0]) if dependents else None,
        event=event,
        services=services,
        transaction_type=bht.get(6),
        level_rejections=level_rejections,
    )


def read_authorization(segments: Sequence[Segment], implementation: str) -> Authorization:
    """Segments between ST and SE to the model."""
    return from_transaction(parse_loops(segments), implementation)
