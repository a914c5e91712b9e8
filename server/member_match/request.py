"""The input of HRex 1.0.0 ``Patient/$member-match`` and its Consent, checked.

Spec: HRex 1.0.0 OperationDefinition ``member-match`` (in: ``MemberPatient`` 1..1, ``Consent`` 1..1,
``CoverageToMatch`` 1..1, ``CoverageToLink`` 0..1; out: ``MemberIdentifier``), profiles
``hrex-patient-demographics``, ``hrex-coverage`` (``identifier`` or ``subscriberId``, hrex-cov-1) and
``hrex-consent`` (status ``active``, ``policy.uri`` ``#regular`` or ``#sensitive``, ``provision.type``
``permit``, ``provision.period`` with start and end, actors in role ``performer`` (source) and ``IRCP``
(recipient), ``provision.action`` ``disclose``).

Malformed input (missing or repeated parameters, wrong resource types, elements the profiles require
absent) is 400. A Consent PriorGate cannot comply with is 422, as HRex asks: a ``#sensitive`` policy
(PriorGate does not segment sensitive data, so it can only honour ``#regular``), or a period that does not
cover the time of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from igs.outcome import invalid, unprocessable
from server.consent.codes import (
    HREX_POLICY_REGULAR,
    HREX_POLICY_SENSITIVE,
    PARTICIPATION_TYPE_SYSTEM,
    RECIPIENT_ROLE,
)

Json = dict[str, Any]

HREX_BASE: Final = "http://hl7.org/fhir/us/davinci-hrex"
MEMBER_MATCH: Final = f"{HREX_BASE}/OperationDefinition/member-match"
HREX_IG: Final = f"{HREX_BASE}/ImplementationGuide/hl7.fhir.us.davinci-hrex"
POLICY_REGULAR: Final = HREX_POLICY_REGULAR
POLICY_SENSITIVE: Final = HREX_POLICY_SENSITIVE
ROLE_SOURCE: Final = ("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "performer")
ROLE_RECIPIENT: Final = (PARTICIPATION_TYPE_SYSTEM, RECIPIENT_ROLE)

_IN: Final = {
    "MemberPatient": ("Patient", True),
    "Consent": ("Consent", True),
    "CoverageToMatch": ("Coverage", True),
    "CoverageToLink": ("Coverage", False),
}


@dataclass(frozen=True)
class MemberMatchRequest:
    member_patient: Json
    consent: Json
    coverage_to_match: Json
    coverage_to_link: Json | None


def parse_member_match(body: Any) -> MemberMatchRequest:
    """The operation's input Parameters, or 400 naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid("$member-match takes a Parameters resource", "Parameters")
    found: dict[str, Json] = {}
    for n, parameter in enumerate(body.get("parameter") or ()):
        if not isinstance(parameter, dict):
            raise invalid("each parameter must be an object", f"Parameters.parameter[{n}]")
        name = parameter.get("name")
        if name not in _IN:
            continue  # parameters this version does not define are ignored
        if name in found:
            raise invalid(f"parameter {name} is given more than once", f"Parameters.parameter[{n}]")
        resource = parameter.get("resource")
        expected = _IN[name][0]
        if not isinstance(resource, dict) or resource.get("resourceType") != expected:
            raise invalid(f"parameter {name} must carry a {expected} resource", f"Parameters.parameter[{n}]")
        found[str(name)] = resource
    for name, (_, required) in _IN.items():
        if required and name not in found:
            raise invalid(f"parameter {name} is required", "Parameters.parameter")
    _check_patient(found["MemberPatient"])
    for name in ("CoverageToMatch", "CoverageToLink"):
        if name in found:
            _check_coverage(found[name], name)
    return MemberMatchRequest(
        found["MemberPatient"], found["Consent"], found["CoverageToMatch"], found.get("CoverageToLink")
    )


def _check_patient(patient: Json) -> None:
    names = patient.get("name")
    if not isinstance(names, list) or not any(isinstance(n, dict) and n.get("family") for n in names):
        raise invalid(
            "MemberPatient needs a name with a family name (hrex-patient-demographics)", "Patient.name"
        )
    birth = patient.get("birthDate")
    if not isinstance(birth, str) or not _is_date(birth):
        raise invalid("MemberPatient needs a birthDate (YYYY-MM-DD)", "Patient.birthDate")


def _check_coverage(coverage: Json, name: str) -> None:
    if not member_ids(coverage):
        raise invalid(f"{name} needs an identifier or a subscriberId (hrex-cov-1)", "Coverage.identifier")


def member_ids(coverage: Mapping[str, Any]) -> list[str]:
    """The member id values of an HRex Coverage: ``identifier.value`` and ``subscriberId``."""
    values = [
        i["value"]
        for i in coverage.get("identifier") or ()
        if isinstance(i, dict) and isinstance(i.get("value"), str)
    ]
    if isinstance(coverage.get("subscriberId"), str):
        values.append(coverage["subscriberId"])
    return list(dict.fromkeys(v for v in values if v))


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def _codes(concept: Any) -> set[tuple[str | None, str | None]]:
    if not isinstance(concept, dict):
        return set()
    return {(c.get("system"), c.get("code")) for c in concept.get("coding") or () if isinstance(c, dict)}


def check_consent(consent: Json, now: datetime) -> str:
    """The Consent's HRex policy (``#regular``), or 400 (malformed) / 422 (PriorGate cannot comply)."""
    policies = [p.get("uri") for p in consent.get("policy") or () if isinstance(p, dict)]
    known = [p for p in policies if p in (POLICY_REGULAR, POLICY_SENSITIVE)]
    if not known:
        raise invalid("Consent.policy needs the HRex #regular or #sensitive policy uri", "Consent.policy")
    provision = consent.get("provision")
    if not isinstance(provision, dict):
        raise invalid("Consent.provision is required (hrex-consent)", "Consent.provision")
    if provision.get("type") not in (None, "permit"):
        raise unprocessable("Consent.provision.type must be permit", "Consent.provision.type")
    period = provision.get("period")
    if not isinstance(period, dict) or not all(isinstance(period.get(k), str) for k in ("start", "end")):
        raise invalid("Consent.provision.period needs a start and an end", "Consent.provision.period")
    if not (_is_date(period["start"]) and _is_date(period["end"])):
        raise invalid("Consent.provision.period start and end must be dates", "Consent.provision.period")
    today = now.date().isoformat()
    if not period["start"][:10] <= today <= period["end"][:10]:
        raise unprocessable(
            "the Consent's provision.period does not cover today: it cannot be complied with",
            "Consent.provision.period",
        )
    actors = [a for a in provision.get("actor") or () if isinstance(a, dict)]
    for role, label in ((ROLE_SOURCE, "performer"), (ROLE_RECIPIENT, "IRCP")):
        named = [a for a in actors if role in _codes(a.get("role"))]
        if not any(_names_party(a.get("reference")) for a in named):
            raise invalid(
                f"Consent.provision.actor needs an actor in role {label}", "Consent.provision.actor"
            )
    if POLICY_SENSITIVE in known and POLICY_REGULAR not in known:
        raise unprocessable(
            "the Consent asks for #sensitive data to be segmented, which this payer cannot do: "
            "it can only comply with the #regular policy",
            "Consent.policy",
            code="business-rule",
        )
    return POLICY_REGULAR


def _names_party(reference: Any) -> bool:
    return isinstance(reference, dict) and bool(reference.get("reference") or reference.get("identifier"))
