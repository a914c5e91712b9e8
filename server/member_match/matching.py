"""The member ``$member-match`` finds, and what a match records.

The rule (deterministic; HRex: "a match on member id or subscriber id at a minimum", never demographics
alone). A stored Patient, in any tenant, is a candidate when one of the CoverageToMatch member ids
(``identifier.value``, ``subscriberId``) is

* the value of its PriorGate member identifier (``https://priorgate.org/fhir/sid/member``), or
* the ``identifier`` value of a stored Coverage whose ``beneficiary`` is that Patient (and, when both
  Coverages name their payor by identifier, the two share one);

and a candidate matches when its demographics agree with MemberPatient: the same ``birthDate``, a name
with the same family name and first given name (case and surrounding spaces ignored), and the same
``gender`` when both have one. Exactly one matching Patient is the member; none, or more than one, is
422 (HRex: the requester learns nothing about near misses).

On a match the Consent is stored exactly as received except ``patient`` = the matched Patient,
``status`` = ``active`` and, when the requesting payer is known, the literal ``Organization/<id>``
reference on the IRCP actor naming it (``recipient.py``), in the matched Patient's tenant: the
payer-to-payer opt-in the bulk export honours (``provision.type`` kept as received, ``permit`` or absent).
The member also joins the requesting payer's Payer-to-Payer Group (``payer_group.py``), which that payer
exports.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from igs.outcome import unprocessable
from server.patient_access.members import escape_value, members_named
from server.patient_access.urls import CS_V2_IDENTIFIER_TYPE, MEMBER_SYSTEM
from server.security.access import READ_EVERYWHERE
from server.storage.repository import Repository, StoredResource, Transaction

from .payer_group import record_matched_member
from .recipient import naming_requester, requester
from .request import MemberMatchRequest, member_ids

Json = dict[str, Any]


@dataclass(frozen=True)
class MemberMatch:
    """A matched member: its Patient, the identifier returned, the Consent stored, and the requesting
    payer's Payer-to-Payer Group holding the member (none when the requester is not known)."""

    patient: StoredResource
    member_identifier: Json
    consent: StoredResource
    group: StoredResource | None = None

    def output(self) -> Json:
        """The operation's output Parameters (HRex ``hrex-parameters-member-match-out``)."""
        return {
            "resourceType": "Parameters",
            "parameter": [{"name": "MemberIdentifier", "valueIdentifier": self.member_identifier}],
        }


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold() if isinstance(text, str) else ""


def _names(patient: Mapping[str, Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for name in patient.get("name") or ():
        if not isinstance(name, dict):
            continue
        given = [g for g in name.get("given") or () if isinstance(g, str)]
        out.add((_norm(name.get("family")), _norm(given[0]) if given else ""))
    return out


def demographics_agree(stored: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    if stored.get("birthDate") != given.get("birthDate"):
        return False
    genders = (stored.get("gender"), given.get("gender"))
    if all(genders) and genders[0] != genders[1]:
        return False
    wanted = {n for n in _names(given) if n[0]}
    return any(n in wanted for n in _names(stored))


def _payor_ids(coverage: Mapping[str, Any]) -> set[tuple[str | None, str | None]]:
    out = set()
    for payor in coverage.get("payor") or ():
        ident = payor.get("identifier") if isinstance(payor, dict) else None
        if isinstance(ident, dict) and ident.get("value"):
            out.add((ident.get("system"), ident.get("value")))
    return out


def candidates(tx: Transaction, everywhere: Repository, request: MemberMatchRequest) -> list[StoredResource]:
    """Stored Patients (any tenant) the CoverageToMatch member ids name, directly or by a Coverage."""
    ids = member_ids(request.coverage_to_match)
    found: dict[str, StoredResource] = {p.id: p for p in members_named(tx, everywhere, ids)}
    values = ",".join(escape_value(v) for v in ids)
    query = everywhere.parse_search("Coverage", [("identifier", values), ("_count", "50")])
    wanted_payors = _payor_ids(request.coverage_to_match)
    for coverage in tx.search(query).matches:
        body = coverage.resource()
        stored_payors = _payor_ids(body)
        if wanted_payors and stored_payors and not wanted_payors & stored_payors:
            continue
        ref = (body.get("beneficiary") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            patient = tx.find("Patient", ref.removeprefix("Patient/"))
            if patient is not None and not patient.deleted:
                found.setdefault(patient.id, patient)
    return list(found.values())


def member_identifier(patient: Mapping[str, Any], fallback: Iterable[str]) -> Json:
    """The member identifier to return: the Patient's PriorGate member identifier, typed MB."""
    mb = {"coding": [{"system": CS_V2_IDENTIFIER_TYPE, "code": "MB"}]}
    for ident in patient.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") == MEMBER_SYSTEM and ident.get("value"):
            return {"type": mb, "system": MEMBER_SYSTEM, "value": ident["value"]}
    value = next(iter(fallback))
    return {"type": mb, "system": MEMBER_SYSTEM, "value": value}


def stored_consent(consent: Mapping[str, Any], patient_reference: str) -> Json:
    """The Consent as received, about the matched Patient and active (its id is the server's)."""
    out = copy.deepcopy(dict(consent))
    out.pop("id", None)
    out["status"] = "active"
    out["patient"] = {"reference": patient_reference}
    return out


def match_member(
    tx: Transaction,
    repository: Repository,
    request: MemberMatchRequest,
    organization: str | None = None,
    group_tenant: str | None = None,
) -> MemberMatch:
    """Find the one member and record the Consent in its tenant, in ``tx``; 422 for none or several.

    ``organization``: the requesting payer (the caller's tenant). When known, the Consent's recipient
    must identify it (``recipient.py``, 422 otherwise) and the member joins its Payer-to-Payer Group
    (``payer_group.py``), kept in ``group_tenant`` (default: the organization's own tenant)."""
    everywhere = repository.acting_for(READ_EVERYWHERE)
    view = tx.seen_as(everywhere)
    received = request.consent
    if organization is not None:
        received = naming_requester(received, requester(view, organization))
    matched = [
        p
        for p in candidates(view, everywhere, request)
        if demographics_agree(p.resource(), request.member_patient)
    ]
    if not matched:
        raise unprocessable("No unique member match: no member matches the demographics and coverage given")
    if len(matched) > 1:
        raise unprocessable("No unique member match: more than one member matches the data given")
    patient = matched[0]
    body = stored_consent(received, patient.reference)
    consent = tx.seen_as(repository.for_tenant(patient.tenant)).create("Consent", body).stored
    identifier = member_identifier(patient.resource(), member_ids(request.coverage_to_match))
    group = None
    if organization is not None:
        tenant = organization if group_tenant is None else group_tenant
        group = record_matched_member(tx, repository, organization, patient.reference, tenant)
    return MemberMatch(patient, identifier, consent, group)
