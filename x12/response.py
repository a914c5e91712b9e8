"""A 278 response (005010X217, or the X215 inquiry response) to a PAS response Bundle (2.0.1 or 2.2.1).

Spec: PAS IG ClaimResponse profile and extensions (reviewAction, itemPreAuthPeriod, itemAuthorizedProvider,
errorElement/errorPath/errorFollowupAction, CommunicationRequest for PWK); 005010X217 section 2.3 (response).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from types import MappingProxyType
from typing import Any

from x12 import urls
from x12.codes import display
from x12.envelope import Interchange, parse_interchange
from x12.errors import X12Error, bundle_shape
from x12.fhir import BundleIndex, Json, as_list, ext_value, fhir_date, sequence_key, text
from x12.model import X215, X217, Authorization, DateValue, Entity, Rejection, Review, Service, ServiceLine
from x12.request import PROCEDURE_QUALIFIERS
from x12.x217 import read_authorization

X12 = urls.x12_system
_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes
QUESTIONNAIRE_LOINC = "102089-0"  # PAS ainfo-2: "payer questionnaire"
PROCEDURE_SYSTEMS = MappingProxyType({"HC": urls.HCPCS, "N4": urls.NDC})
PAS_VERSIONS = ("2.0.1", "2.2.1")
# Where an AAA in each loop points in the request Bundle (errorPath), when we know it.
LOOP_TARGETS = MappingProxyType(
    {
        "2000A": "insurer",
        "2010A": "insurer",
        "2000B": "provider",
        "2010B": "provider",
        "2000C": "subscriber",
        "2010C": "subscriber",
        "2000D": "patient",
        "2010D": "patient",
        "2000E": "claim",
        "2010EA": "claim",
    }
)


def _coding(element: str, code: str) -> Json:
    coding: Json = {"system": X12(element), "code": code}
    meaning = display(element, code)
    if meaning is not None:
        coding["display"] = meaning
    return coding


def _concept(element: str, code: str) -> Json:
    return {"coding": [_coding(element, code)]}


def _period(start: str, end: str) -> Json:
    out = {"start": fhir_date(start)}
    if end:
        out["end"] = fhir_date(end)
    return out


def _date(dates: tuple[DateValue, ...], qualifier: str) -> DateValue | None:
    return next((d for d in dates if d.qualifier == qualifier), None)


def _review_extension(review: Review) -> Json:
    parts: list[Json] = []
    if review.number:
        parts.append({"url": "number", "valueString": review.number})
    if review.reason:
        parts.append(
            {
                "url": "reasonCode",
                "valueCodeableConcept": {
                    "coding": [{"system": urls.X12_REVIEW_DECISION_REASON, "code": review.reason}]
                },
            }
        )
    if review.second_opinion in ("Y", "N"):
        parts.append({"url": "secondSurgicalOpinionFlag", "valueBoolean": review.second_opinion == "Y"})
    parts.append({"url": urls.EXT_REVIEW_ACTION_CODE, "valueCodeableConcept": _concept("306", review.action)})
    return {"extension": parts, "url": urls.EXT_REVIEW_ACTION}


def _adjudication(review: Review) -> list[Json]:
    return [
        {
            "extension": [_review_extension(review)],
            "category": {"coding": [{"system": urls.ADJUDICATION, "code": "submitted"}]},
        }
    ]


def _provider_reference(entity: Entity) -> Json:
    ref: Json = {}
    if entity.id:
        system = urls.NPI if entity.id_qualifier == "XX" else None
        ref["identifier"] = {"system": system, "value": entity.id} if system else {"value": entity.id}
    name = " ".join(x for x in (entity.first, entity.middle, entity.last) if x)
    if name:
        ref["display"] = name
    return ref


def _authorized_provider(entity: Entity, version: str) -> Json:
    parts: list[Json] = [{"url": "provider", "valueReference": _provider_reference(entity)}]
    if entity.entity_code:
        key = "providerType" if version == "2.0.1" else "role"
        parts.append({"url": key, "valueCodeableConcept": _concept("98", entity.entity_code)})
    return {"extension": parts, "url": urls.EXT_ITEM_AUTHORIZED_PROVIDER}


class _Builder:
    def __init__(
        self, auth: Authorization, request_bundle: Json, interchange: Interchange, now: datetime, version: str
    ):
        if version not in PAS_VERSIONS:
            raise X12Error.mapping(f"PAS version {version!r} is not one of {', '.join(PAS_VERSIONS)}")
        self.auth = auth
        self.index = BundleIndex(request_bundle)
        self.bundle = request_bundle
        claim = self.index.first("Claim")
        if claim is None:
            raise X12Error.mapping("the request Bundle has no Claim", "Bundle.entry")
        self.claim = claim
        self.interchange = interchange
        self.now = now
        self.version = version
        entries = as_list(request_bundle.get("entry"))
        self.claim_full_url = next(
            (text(e.get("fullUrl")) for e in entries if isinstance(e, dict) and e.get("resource") is claim),
            "",
        )
        self.items = sorted(
            [it for it in as_list(claim.get("item")) if isinstance(it, dict)],
            key=sequence_key,
        )
        self.errors: list[Json] = []

    # -- identities ----------------------------------------------------------------------------------
    def claim_reference(self) -> Json:
        if self.claim_full_url and not self.claim_full_url.startswith("urn:"):
            parts = self.claim_full_url.rstrip("/").split("/")
            return {"reference": f"{parts[-2]}/{parts[-1]}"}
        if self.claim_full_url:
            return {"reference": self.claim_full_url}
        return {"reference": f"Claim/{text(self.claim.get('id'))}"}

    def new_id(self, kind: str, n: int = 0) -> str:
        seed = f"{self.claim_full_url or self.claim.get('id')}|{self.auth.reference}|{kind}|{n}"
        return _uuid5(seed)

    def full_url(self, resource_type: str, resource_id: str) -> str:
        base = self.claim_full_url
        if base.startswith("http") and "/Claim/" in base:
            return base[: base.rindex("/Claim/")] + f"/{resource_type}/{resource_id}"
        return f"urn:uuid:{resource_id}"

    # -- errors --------------------------------------------------------------------------------------
    def error_path(self, loop: str, item_index: int | None) -> str:
        claim_path = self.index.path(self.claim)
        if item_index is not None:
            return f"{claim_path}.item[{item_index}]"
        target = LOOP_TARGETS.get(loop)
        if target == "claim" or target is None:
            return claim_path
        if target in ("insurer", "provider", "patient"):
            resource = self.index.resolve(self.claim.get(target))
            return self.index.path(resource) if resource is not None else f"Claim.{target}"
        coverage = None
        for insurance in as_list(self.claim.get("insurance")):
            coverage = self.index.resolve(insurance.get("coverage")) if isinstance(insurance, dict) else None
            if coverage:
                break
        return self.index.path(coverage) + ".subscriberId" if coverage is not None else "Claim.insurance"

    def add_error(self, rejection: Rejection, item_index: int | None = None) -> None:
        element: Json
        if self.version == "2.0.1":
            element = {"url": urls.EXT_ERROR_ELEMENT, "valueString": rejection.loop}
        else:
            element = {
                "extension": [{"url": "error", "valueString": rejection.loop}],
                "url": urls.EXT_ERROR_ELEMENT,
            }
        extensions = [
            element,
            {"url": urls.EXT_ERROR_PATH, "valueString": self.error_path(rejection.loop, item_index)},
        ]
        if rejection.followup:
            extensions.append(
                {"url": urls.EXT_ERROR_FOLLOWUP, "valueCodeableConcept": _concept("889", rejection.followup)}
            )
        self.errors.append({"extension": extensions, "code": _concept("901", rejection.reason)})

    # -- items ---------------------------------------------------------------------------------------
    def match_services(self) -> list[tuple[int, Json, Service | None]]:
        """Pair each request item with its 2000F by the echoed trace number (TRN01=2), else by position.

        A 2000F whose trace names another item is never taken by position.
        """
        event_trace = next((t.number for t in self.auth.event.traces if t.type == "2"), "")
        numbers: list[str] = []
        for item in self.items:
            trace = ext_value(item, urls.EXT_ITEM_TRACE_NUMBER)
            numbers.append(
                text(trace.get("value"))
                if isinstance(trace, dict)
                else f"{event_trace}-{item.get('sequence')}"
            )
        by_trace: dict[str, int] = {}
        for position, candidate in enumerate(self.auth.services):
            for trace in candidate.traces:
                by_trace.setdefault(trace.number, position)
        claimed = {by_trace[number] for number in numbers if number in by_trace}
        out: list[tuple[int, Json, Service | None]] = []
        for n, (item, number) in enumerate(zip(self.items, numbers, strict=True)):
            index: int | None = by_trace.get(number)
            if index is None and n < len(self.auth.services) and n not in claimed:
                traced = {t.number for t in self.auth.services[n].traces}
                index = None if traced & set(numbers) else n
            out.append((n, item, self.auth.services[index] if index is not None else None))
        return out

    def item(self, n: int, item: Json, service: Service | None) -> tuple[Json | None, Json | None]:
        review = (
            service.review if service is not None and service.review is not None else self.auth.event.review
        )
        for rejection in service.rejections if service is not None else ():
            self.add_error(rejection, n)
        if review is None:
            return None, None
        extensions: list[Json] = []
        source = service or Service()
        trace = ext_value(item, urls.EXT_ITEM_TRACE_NUMBER)
        if isinstance(trace, dict):
            extensions.append({"url": urls.EXT_ITEM_TRACE_NUMBER, "valueIdentifier": trace})
        refs = dict(source.refs)
        if "BB" in refs:
            extensions.append({"url": urls.EXT_AUTHORIZATION_NUMBER, "valueString": refs["BB"]})
        if "NT" in refs:
            extensions.append({"url": urls.EXT_ADMIN_REFERENCE_NUMBER, "valueString": refs["NT"]})
        served = _date(source.dates, "472")
        if served is not None:
            extensions.append(
                {
                    "url": urls.EXT_ITEM_REQUESTED_SERVICE_DATE,
                    "valuePeriod": _period(served.start, served.end or served.start),
                }
            )
        issued = _date(source.dates, "102")
        if issued is not None:
            extensions.append({"url": urls.EXT_ITEM_PREAUTH_ISSUE_DATE, "valueDate": fhir_date(issued.start)})
        effective, expires = _date(source.dates, "007"), _date(source.dates, "036")
        if effective is not None:
            end = effective.end or (expires.start if expires is not None else "")
            extensions.append(
                {"url": urls.EXT_ITEM_PREAUTH_PERIOD, "valuePeriod": _period(effective.start, end)}
            )
        authorized = source.providers
        if not authorized and review.action in ("A1", "A2", "A6"):
            authorized = self.auth.event.providers  # 2010EA authorizes the whole event
        for provider in authorized:
            extensions.append(_authorized_provider(provider, self.version))
        out: Json = {}
        if extensions:
            out["extension"] = extensions
        out["itemSequence"] = item.get("sequence", n + 1)
        out["adjudication"] = _adjudication(review)
        add_item = None
        if review.action == "A6" and source.line is not None:
            add_item = self.add_item(out["itemSequence"], source.line, review)
        return out, add_item

    def add_item(self, sequence: Any, line: ServiceLine, review: Review) -> Json:
        out: Json = {"itemSequence": [sequence]}
        if line.procedure is not None:
            system = PROCEDURE_SYSTEMS.get(line.procedure.qualifier)
            coding: Json = (
                {"system": system, "code": line.procedure.code} if system else {"code": line.procedure.code}
            )
            out["productOrService"] = {"coding": [coding]}
            if line.procedure.modifiers:
                out["modifier"] = [
                    {"coding": [{"system": urls.CPT, "code": m}]} for m in line.procedure.modifiers
                ]
        elif line.revenue_code:
            out["productOrService"] = {"coding": [{"system": urls.NUBC_REVENUE, "code": line.revenue_code}]}
        if line.quantity:
            out["quantity"] = {"value": _json_number(line.quantity)}
        if line.amount and line.amount != "0":
            out["net"] = {"value": _json_number(line.amount), "currency": "USD"}
        out["adjudication"] = _adjudication(review)
        return out

    # -- communication requests (PWK in the response: documentation the UMO wants) -------------------
    def communication_requests(self, claim_response_ref: Json) -> list[Json]:
        out: list[Json] = []
        sources: list[tuple[int | None, Service | None]] = [(None, None)]
        sources += [(n + 1, s) for n, s in enumerate(self.auth.services)]
        for line_number, service in sources:
            attachments = service.attachments if service is not None else self.auth.event.attachments
            for attachment in attachments:
                resource_id = self.new_id("CommunicationRequest", len(out))
                payload: Json = {
                    "contentString": attachment.description
                    or display("755", attachment.report_type)
                    or attachment.report_type
                }
                if line_number is not None:
                    payload = {
                        "extension": [
                            {
                                "url": urls.PAS_SD + "extension-serviceLineNumber",
                                "valuePositiveInt": line_number,
                            }
                        ],
                        **payload,
                    }
                resource: Json = {
                    "resourceType": "CommunicationRequest",
                    "id": resource_id,
                    "meta": {"profile": [urls.PROFILE_COMMUNICATION_REQUEST]},
                }
                if attachment.control_number:
                    resource["identifier"] = [{"value": attachment.control_number}]
                resource.update(
                    {
                        "status": "active",
                        "category": [_concept("755", attachment.report_type)],
                        "medium": [_concept("756", attachment.transmission)]
                        if attachment.transmission
                        else [],
                        "subject": self.claim.get("patient"),
                        "about": [claim_response_ref],
                        "payload": [payload],
                        "authoredOn": self.now.isoformat(timespec="seconds"),
                        "requester": self.claim.get("insurer"),
                        "recipient": [self.claim.get("provider")],
                    }
                )
                if not resource["medium"]:
                    del resource["medium"]
                out.append(resource)
        out.extend(self.loinc_requests(claim_response_ref, len(out)))
        return out

    def loinc_requests(self, claim_response_ref: Json, start: int) -> list[Json]:
        """HI composites with LOINC codes (qualifier LOI) in a response: documentation the UMO asks for.

        PAS ainfo-2/ainfo-3: LOINC 102089-0 means "payer questionnaire", and the UMO's TRN is then the DTR
        context id, carried as the CommunicationRequest identifier.
        """
        out: list[Json] = []
        payer_trace = next((t for t in self.auth.event.traces if t.type == "1"), None)
        for diagnosis in self.auth.event.diagnoses:
            if diagnosis.qualifier != "LOI":
                continue
            resource: Json = {
                "resourceType": "CommunicationRequest",
                "id": self.new_id("CommunicationRequest", start + len(out)),
                "meta": {"profile": [urls.PROFILE_COMMUNICATION_REQUEST]},
            }
            if diagnosis.code == QUESTIONNAIRE_LOINC and payer_trace is not None:
                resource["identifier"] = [
                    {"system": urls.TRN_ORG_PREFIX + payer_trace.originator, "value": payer_trace.number}
                ]
            resource.update(
                {
                    "status": "active",
                    "subject": self.claim.get("patient"),
                    "about": [claim_response_ref],
                    "payload": [{"contentString": diagnosis.code}],
                    "authoredOn": self.now.isoformat(timespec="seconds"),
                    "requester": self.claim.get("insurer"),
                    "recipient": [self.claim.get("provider")],
                }
            )
            out.append(resource)
        return out

    # -- the bundle ----------------------------------------------------------------------------------
    def claim_response(self, inquiry: bool) -> tuple[Json, list[Json]]:
        auth = self.auth
        for rejection in auth.level_rejections:
            self.add_error(rejection)
        for entity in (auth.umo, auth.requester, auth.subscriber, auth.dependent):
            for rejection in entity.rejections if entity is not None else ():
                self.add_error(rejection)
        for rejection in auth.event.rejections:
            self.add_error(rejection)
        for provider in auth.event.providers:
            for rejection in provider.rejections:
                self.add_error(rejection)
        items: list[Json] = []
        add_items: list[Json] = []
        for n, item, service in self.match_services():
            rendered, added = self.item(n, item, service)
            if rendered is not None:
                items.append(rendered)
            if added is not None:
                add_items.append(added)
        resource_id = self.new_id("ClaimResponse")
        extensions: list[Json] = [self.transmission_identifiers()]
        out: Json = {
            "resourceType": "ClaimResponse",
            "id": resource_id,
            "meta": {
                "profile": [urls.PROFILE_INQUIRY_CLAIM_RESPONSE if inquiry else urls.PROFILE_CLAIM_RESPONSE]
            },
            "extension": extensions,
        }
        identifiers = [
            {"system": urls.TRN_ORG_PREFIX + t.originator, "value": t.number}
            for t in auth.event.traces
            if t.type == "1"
        ]
        if identifiers:
            out["identifier"] = identifiers
        out.update(
            {
                "status": "active",
                "type": self.claim.get("type")
                or {"coding": [{"system": urls.CLAIM_TYPE, "code": "professional"}]},
                "use": "preauthorization",
                "patient": self.claim.get("patient"),
                "created": self.now.isoformat(timespec="seconds"),
                "insurer": self.claim.get("insurer"),
                "requestor": self.claim.get("provider"),
                "request": self.claim_reference(),
                "outcome": self.outcome(items),
            }
        )
        if auth.event.review is not None and auth.event.review.number:
            out["preAuthRef"] = auth.event.review.number
        effective, expires = _date(auth.event.dates, "007"), _date(auth.event.dates, "036")
        if effective is not None:
            out["preAuthPeriod"] = _period(
                effective.start, effective.end or (expires.start if expires else "")
            )
        if items:
            out["item"] = items
        if add_items:
            out["addItem"] = add_items
        notes = [auth.event.message] + [s.message for s in auth.services]
        notes = [n for n in notes if n]
        if notes:
            out["processNote"] = [
                {"number": i + 1, "type": "display", "text": note} for i, note in enumerate(notes)
            ]
        if self.errors:
            out["error"] = self.errors
        return out, self.communication_requests({"reference": f"ClaimResponse/{resource_id}"})

    def outcome(self, items: list[Json]) -> str:
        if self.errors and not items:
            return "error"
        if self.errors:
            return "partial"
        return "complete"

    def transmission_identifiers(self) -> Json:
        interchange = self.interchange
        group = interchange.groups[0] if interchange.groups else None
        parts = [
            ("applicationSenderCode", group.sender if group else ""),
            ("applicationReceiverCode", group.receiver if group else ""),
            ("interchangeSenderID", interchange.sender.id),
            ("interchangeReceiverID", interchange.receiver.id),
        ]
        return {
            "extension": [{"url": name, "valueString": value} for name, value in parts if value],
            "url": urls.EXT_TRANSMISSION_IDS,
        }

    def bundle_out(self, inquiry: bool = False) -> Json:
        claim_response, requests = self.claim_response(inquiry)
        raw_identifier = self.bundle.get("identifier")
        identifier: Json = raw_identifier if isinstance(raw_identifier, dict) else {}
        bundle_identifier = {k: v for k, v in identifier.items() if k == "system"}
        bundle_identifier["value"] = self.auth.reference
        entries: list[Json] = [
            {"fullUrl": self.full_url("ClaimResponse", claim_response["id"]), "resource": claim_response}
        ]
        entries += [
            {"fullUrl": self.full_url("CommunicationRequest", r["id"]), "resource": r} for r in requests
        ]
        entries += [e for e in as_list(self.bundle.get("entry")) if isinstance(e, dict)]
        return {
            "resourceType": "Bundle",
            "id": self.new_id("Bundle"),
            "meta": {
                "profile": [urls.PROFILE_INQUIRY_RESPONSE_BUNDLE if inquiry else urls.PROFILE_RESPONSE_BUNDLE]
            },
            "identifier": bundle_identifier,
            "type": "collection",
            "timestamp": self.now.isoformat(timespec="seconds"),
            "entry": entries,
        }


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, name))`` without building UUID objects (RFC 4122 section 4.3)."""
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _json_number(value: str) -> int | float:
    # Quantities and amounts from X12 are short decimals; int when whole keeps the JSON exact.
    return int(value) if value.lstrip("-").isdigit() else float(value)


def read_response(text_: str, *, implementation: str = X217) -> tuple[Interchange, Authorization]:
    """Parse a 278 response interchange into its envelope and typed content (first 278 transaction)."""
    interchange = parse_interchange(text_)
    for tx in interchange.transactions:
        if tx.set_id == "278":
            auth = read_authorization(tx.segments, tx.implementation or implementation)
            if auth.purpose != "11":
                bht = tx.segments[0]
                raise X12Error.at(
                    f"BHT02 {auth.purpose!r} is not 11 (response)",
                    position=bht.position,
                    segment_id="BHT",
                    element=2,
                )
            return interchange, auth
    raise X12Error.at("the interchange holds no 278 transaction set", position=1, segment_id="ISA")


def response_278_to_bundle(
    text_: str, request_bundle: dict[str, Any], *, now: datetime, pas_version: str = "2.2.1"
) -> dict[str, Any]:
    """Translate a 005010X217 278 response into a PAS response Bundle answering ``request_bundle``.

    Spec: PAS IG ClaimResponse (reviewAction from HCR, errors from AAA, addItem for A6, processNote from
    MSG, CommunicationRequest from response PWK); the request Bundle's entries are carried along so every
    reference resolves.
    """
    interchange, auth = read_response(text_)
    with bundle_shape():
        return _Builder(auth, request_bundle, interchange, now, pas_version).bundle_out()


def inquiry_response_278_to_bundle(
    text_: str, request_bundle: dict[str, Any], *, now: datetime, pas_version: str = "2.2.1"
) -> dict[str, Any]:
    """Translate a 005010X215 278 inquiry response into a PAS Inquiry Response Bundle (one ClaimResponse)."""
    interchange, auth = read_response(text_, implementation=X215)
    with bundle_shape():
        return _Builder(auth, request_bundle, interchange, now, pas_version).bundle_out(inquiry=True)


__all__ = [
    "response_278_to_bundle",
    "inquiry_response_278_to_bundle",
    "read_response",
    "PROCEDURE_QUALIFIERS",
]
