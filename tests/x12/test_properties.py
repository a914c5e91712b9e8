"""Property tests: model -> 278 -> model round trip, and a fuzzed parser that only ever raises X12Error."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from x12 import (
    ControlNumbers,
    X12Error,
    build_interchange,
    parse_interchange,
    read_authorization,
    response_278_to_bundle,
    serialize,
    simulate_payer_response,
    to_segments,
    validate_278,
)
from x12.acks import generate_999, generate_ta1
from x12.envelope import Party
from x12.model import (
    X217,
    Address,
    Attachment,
    Authorization,
    DateValue,
    Diagnosis,
    Entity,
    PatientEvent,
    Procedure,
    Review,
    Service,
    ServiceLine,
    Trace,
    UtilizationManagement,
)

NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden"
# Element text: printable, without the delimiters in use (X12 data cannot contain them).
word = (
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-", min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)
code = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=1, max_size=3)
d8 = st.dates(min_value=datetime(1990, 1, 1).date(), max_value=datetime(2040, 1, 1).date()).map(
    lambda d: d.strftime("%Y%m%d")
)
amount = st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False).map(
    lambda d: format(d.normalize(), "f")
)

entity = st.builds(
    Entity,
    entity_code=st.sampled_from(["1P", "FA", "SJ", "X3"]),
    entity_type=st.sampled_from(["1", "2"]),
    last=word,
    first=st.one_of(st.just(""), word),
    id_qualifier=st.just("XX"),
    id=st.text(alphabet="0123456789", min_size=10, max_size=10),
    address=st.one_of(
        st.none(),
        st.builds(
            Address, lines=st.tuples(word), city=word, state=st.just("OH"), postal_code=st.just("43215")
        ),
    ),
    phone=st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=10, max_size=10)),
)
um = st.builds(
    UtilizationManagement,
    request_category=st.sampled_from(["HS", "SC", "AR"]),
    certification_type=st.sampled_from(["I", "3", "4"]),
    service_type=st.sampled_from(["", "1", "2", "42"]),
    facility_code=st.sampled_from(["", "11", "21"]),
).map(
    lambda u: UtilizationManagement(
        u.request_category,
        u.certification_type,
        u.service_type,
        u.facility_code,
        "B" if u.facility_code else "",
    )
)
line = st.builds(
    ServiceLine,
    kind=st.just("SV1"),
    procedure=st.builds(
        Procedure,
        qualifier=st.just("HC"),
        code=st.text(alphabet="0123456789", min_size=5, max_size=5),
        modifiers=st.lists(code, max_size=2).map(tuple),
    ),
    amount=amount,
    unit_basis=st.just("UN"),
    quantity=st.integers(1, 99).map(str),
)
date_value = st.one_of(
    st.builds(DateValue, qualifier=st.just("472"), start=d8),
    st.tuples(d8, d8).map(
        lambda p: DateValue("472", min(p), max(p)) if p[0] != p[1] else DateValue("472", p[0])
    ),
)
service = st.builds(
    Service,
    traces=st.tuples(
        st.builds(
            Trace,
            type=st.just("1"),
            number=word.map(lambda w: w.replace(" ", "")).filter(bool),
            originator=st.just("1311234567"),
        )
    ),
    um=um,
    review=st.one_of(
        st.none(),
        st.builds(
            Review, action=st.sampled_from(["A1", "A3", "A4", "A6"]), number=st.one_of(st.just(""), code)
        ),
    ),
    refs=st.lists(st.tuples(st.sampled_from(["BB", "NT"]), code), max_size=2).map(tuple),
    dates=st.lists(date_value, max_size=1).map(tuple),
    line=st.one_of(st.none(), line),
    attachments=st.lists(
        st.builds(Attachment, report_type=st.just("PY"), transmission=st.just("EL"), control_number=code),
        max_size=2,
    ).map(tuple),
    message=st.one_of(st.just(""), word),
    providers=st.lists(entity, max_size=2).map(tuple),
)
event = st.builds(
    PatientEvent,
    traces=st.tuples(st.builds(Trace, type=st.just("1"), number=code, originator=st.just("1311234567"))),
    um=um,
    dates=st.lists(st.builds(DateValue, qualifier=st.sampled_from(["AAH", "439"]), start=d8), max_size=2).map(
        tuple
    ),
    diagnoses=st.lists(
        st.builds(
            Diagnosis, qualifier=st.sampled_from(["ABK", "ABF"]), code=code, date=st.one_of(st.just(""), d8)
        ),
        max_size=12,
    ).map(tuple),
    providers=st.lists(entity, max_size=2).map(tuple),
)
authorization = st.builds(
    Authorization,
    implementation=st.just(X217),
    purpose=st.just("13"),
    reference=code,
    date=d8,
    time=st.just("1005"),
    umo=entity,
    requester=entity,
    subscriber=st.builds(
        Entity,
        entity_code=st.just("IL"),
        entity_type=st.just("1"),
        last=word,
        id_qualifier=st.just("MI"),
        id=code,
        birth_date=st.one_of(st.just(""), d8),
    ),
    dependent=st.one_of(
        st.none(),
        st.builds(
            Entity,
            entity_code=st.just("QC"),
            entity_type=st.just("1"),
            last=word,
            relationship=st.sampled_from(["01", "19"]),
        ),
    ),
    event=event,
    services=st.lists(service, min_size=1, max_size=4).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(authorization)
def test_model_to_278_and_back_is_identity(auth: Authorization) -> None:
    interchange = build_interchange(
        [("278", X217, to_segments(auth))],
        sender=Party("ZZ", "A"),
        receiver=Party("ZZ", "B"),
        control=ControlNumbers(1, 1, 1),
        now=NOW,
    )
    text = serialize(interchange)
    tx = parse_interchange(text).transactions[0]
    assert read_authorization(tx.segments, tx.implementation) == auth


def _golden_requests() -> list[str]:
    return [p.read_text("utf-8") for p in sorted(GOLDEN.glob("*/request.x12"))]


def _only_x12_errors(text: str) -> None:
    for call in (
        lambda: parse_interchange(text),
        lambda: simulate_payer_response(text, now=NOW),
        lambda: response_278_to_bundle(text, {"resourceType": "Bundle", "entry": []}, now=NOW),
        lambda: generate_999(text, now=NOW, control=ControlNumbers()),
    ):
        try:
            call()
        except X12Error:
            pass
    assert isinstance(validate_278(text), list)  # never raises
    generate_ta1(text, now=NOW, control=ControlNumbers())  # never raises


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_garbage_only_raises_x12_error(text: str) -> None:
    _only_x12_errors(text)
    _only_x12_errors(
        "ISA*00*          *00*          *ZZ*A              *ZZ*B              "
        "*260101*0101*^*00501*000000001*0*P*:~" + text
    )


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_278s_only_raise_x12_error(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(_golden_requests()))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 6))):
        op = rng.choice(("delete", "insert", "replace", "truncate"))
        pos = rng.randrange(len(chars)) if chars else 0
        if op == "delete" and chars:
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, rng.choice("*~:^\n0A|"))
        elif op == "replace" and chars:
            chars[pos] = rng.choice("*~:^\n0A|Z")
        elif op == "truncate":
            chars = chars[:pos]
    _only_x12_errors("".join(chars))


delimiter_sets = st.sampled_from(
    [("*", ":", "^", "~"), ("|", ">", "!", "\n"), ("+", "}", "^", "'"), ("^", "\\", "&", "~")]
)
element_text = st.text(alphabet="ABCXYZ0129 .-/", max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    delimiter_sets,
    st.lists(
        st.tuples(
            st.sampled_from(["NM1", "REF", "DTP", "MSG", "N3", "PRV"]),
            st.lists(st.one_of(element_text, st.lists(element_text, min_size=2, max_size=3)), max_size=6),
        ),
        max_size=8,
    ),
)
def test_segments_round_trip_under_any_delimiters(
    delims: tuple[str, str, str, str], body: list[tuple[str, list[str | list[str]]]]
) -> None:
    from x12.codec import Delimiters, seg

    delimiters = Delimiters(*delims)
    segments = tuple(seg(segment_id, *elements) for segment_id, elements in body)
    segments = tuple(s for s in segments if s.elements)  # an element-less segment is not valid X12
    interchange = build_interchange(
        [("278", X217, segments)],
        sender=Party("ZZ", "A"),
        receiver=Party("ZZ", "B"),
        control=ControlNumbers(3, 3, 1),
        now=NOW,
        delimiters=delimiters,
    )
    text = serialize(interchange, newline=delimiters.segment != "\n")
    parsed = parse_interchange(text)
    assert parsed.delimiters == delimiters
    assert tuple((s.id, s.elements) for s in parsed.transactions[0].segments) == tuple(
        (s.id, s.elements) for s in segments
    )
