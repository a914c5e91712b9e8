"""PAS Claim Inquiry Bundle to a 005010X215 278 inquiry, and the X215 response back to PAS.

Spec: PAS IG Claim/$inquire and the Claim Inquiry profile (certification dates, reviewActionCode and
productOrServiceCodeEnd as search keys); 005010X215 section 2.3. The inquiry shares the X217 loop model;
what it asks is carried by REF*BB/NT, DTP 102/007/036, HCR01 and the SV1/SV2 procedure (range).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from x12 import urls
from x12.codec import DEFAULT_DELIMITERS, Delimiters
from x12.envelope import ControlNumbers, build_interchange, serialize
from x12.errors import bundle_shape
from x12.fhir import code_in, ext_value, x12_date
from x12.model import X215, Authorization, DateValue, Review, Service
from x12.request import _Mapper
from x12.response import inquiry_response_278_to_bundle
from x12.x217 import to_segments

CERTIFICATION_DATES = (
    (urls.EXT_ITEM_CERT_ISSUE_DATE, "102"),
    (urls.EXT_ITEM_CERT_EFFECTIVE_DATE, "007"),
    (urls.EXT_ITEM_CERT_EXPIRATION_DATE, "036"),
)


def inquiry_authorization(bundle: dict[str, Any]) -> Authorization:
    """The X215 content of a PAS Claim Inquiry Bundle (the inquiry's search keys, no clinical detail)."""
    with bundle_shape():
        return _inquiry_authorization(bundle)


def _inquiry_authorization(bundle: dict[str, Any]) -> Authorization:
    mapper = _Mapper(bundle)
    auth = mapper.authorization()
    services: list[Service] = []
    for item, service in zip(mapper.items, auth.services, strict=True):
        dates = list(service.dates)
        for url, qualifier in CERTIFICATION_DATES:
            value = x12_date(ext_value(item, url))
            if value:
                dates.append(DateValue(qualifier, value))
        action = code_in(ext_value(item, urls.EXT_REVIEW_ACTION_CODE), urls.x12_system("306"))
        line = service.line
        if line is not None:
            line = replace(line, amount="")
        services.append(
            replace(
                service,
                dates=tuple(dates),
                review=Review(action) if action else None,
                line=line,
                delivery=None,
                attachments=(),
                message="",
            )
        )
    event = replace(
        auth.event,
        delivery=None,
        condition=None,
        institutional=None,
        home_health=None,
        attachments=(),
        message="",
    )
    return replace(auth, implementation=X215, event=event, services=tuple(services))


def inquiry_bundle_to_278_request(
    bundle: dict[str, Any],
    *,
    control: ControlNumbers,
    now: datetime,
    usage: str = "P",
    delimiters: Delimiters = DEFAULT_DELIMITERS,
) -> str:
    """Translate a PAS Claim Inquiry Bundle into a 005010X215 278 inquiry interchange (PAS $inquire)."""
    with bundle_shape():
        mapper = _Mapper(bundle)
        auth = _inquiry_authorization(bundle)
        sender, receiver = mapper.parties(auth.umo, auth.requester)
    interchange = build_interchange(
        [("278", X215, to_segments(auth))],
        sender=sender,
        receiver=receiver,
        control=control,
        now=now,
        usage=usage,
        delimiters=delimiters,
    )
    return serialize(interchange)


__all__ = ["inquiry_authorization", "inquiry_bundle_to_278_request", "inquiry_response_278_to_bundle"]
