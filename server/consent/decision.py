"""Per-patient consent decisions for the payer APIs, from the patient's stored Consent resources.

* Provider Access (opt-out): the patient is out when the latest active Consent marked
  ``provider-access`` (see codes.py) whose period covers now has ``provision.type = deny``. Opting back in
  is making that Consent inactive, or a later active permit marked the same way. Each recorder (the
  tenant that stored the Consent: the payer's member services, a member app) has its own latest word:
  a permit recorded by someone else never lifts an opt-out, so a provider cannot opt a patient back in.
* Payer-to-Payer (opt-in): the patient is in for a requesting payer when an active HRex Consent
  (policy ``#regular`` or ``#sensitive``) permits, its ``provision.period`` covers now, and a
  ``provision.actor`` with role ``IRCP`` names the payer: by ``Organization/<id>`` reference or by a
  ``payer-id`` identifier.

Pure functions over Consent JSON: no storage, no clock of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.search.values import parse_date_range, timestamp

from .codes import (
    HREX_POLICIES,
    PARTICIPATION_TYPE_SYSTEM,
    PAYER_API_CONSENT_SYSTEM,
    PAYER_ID_SYSTEM,
    PROVIDER_ACCESS,
    PROVISION_DENY,
    PROVISION_PERMIT,
    RECIPIENT_ROLE,
    STATUS_ACTIVE,
)

Json = dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """A stored Consent and the tenant that recorded it."""

    tenant: str
    consent: Json


@dataclass(frozen=True)
class Payer:
    """A payer as consents name it: its Organization references and its payer ids."""

    organizations: frozenset[str]  # "Organization/<id>"
    payer_ids: frozenset[str]  # values of https://priorgate.org/fhir/sid/payer-id


def _codings(value: Any) -> Iterable[Json]:
    concepts = value if isinstance(value, list) else [value]
    for concept in concepts:
        if isinstance(concept, dict):
            if "code" in concept:  # a bare Coding (provision.purpose)
                yield concept
            for coding in concept.get("coding") or ():
                if isinstance(coding, dict):
                    yield coding


def _has(codings: Iterable[Json], system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codings)


def _period_covers(period: Any, now: datetime) -> bool:
    if not isinstance(period, dict):
        return True
    moment = timestamp(now)
    start = parse_date_range(period["start"]) if isinstance(period.get("start"), str) else None
    end = parse_date_range(period["end"]) if isinstance(period.get("end"), str) else None
    if start is not None and start.low > moment:
        return False
    return not (end is not None and end.high < moment)


def _provision(consent: Json) -> Json:
    provision = consent.get("provision")
    return provision if isinstance(provision, dict) else {}


def _sort_key(consent: Json) -> tuple[str, str]:
    meta = consent.get("meta") if isinstance(consent.get("meta"), dict) else {}
    return (str(consent.get("dateTime") or ""), str((meta or {}).get("lastUpdated") or ""))


def is_provider_access_consent(consent: Json) -> bool:
    """Marked for Provider Access: by ``Consent.category`` or ``provision.purpose``."""
    return _has(_codings(consent.get("category")), PAYER_API_CONSENT_SYSTEM, PROVIDER_ACCESS) or _has(
        _codings(_provision(consent).get("purpose")), PAYER_API_CONSENT_SYSTEM, PROVIDER_ACCESS
    )


def provider_access_opted_out(consents: Iterable[Recorded], now: datetime) -> bool:
    """True when the patient opted out of Provider Access: some recorder's latest relevant Consent denies."""
    latest: dict[str, Json] = {}
    for recorded in consents:
        c = recorded.consent
        if not (
            c.get("status") == STATUS_ACTIVE
            and is_provider_access_consent(c)
            and _period_covers(_provision(c).get("period"), now)
        ):
            continue
        known = latest.get(recorded.tenant)
        if known is None or _sort_key(c) >= _sort_key(known):
            latest[recorded.tenant] = c
    return any(_provision(c).get("type") == PROVISION_DENY for c in latest.values())


def _names_payer(actor: Json, payer: Payer) -> bool:
    if not _has(_codings(actor.get("role")), PARTICIPATION_TYPE_SYSTEM, RECIPIENT_ROLE):
        return False
    reference = actor.get("reference")
    if not isinstance(reference, dict):
        return False
    if reference.get("reference") in payer.organizations:
        return True
    identifier = reference.get("identifier")
    return (
        isinstance(identifier, dict)
        and identifier.get("system") == PAYER_ID_SYSTEM
        and identifier.get("value") in payer.payer_ids
    )


def payer_to_payer_permits(consent: Json, payer: Payer, now: datetime) -> bool:
    """One HRex Consent opting the patient in for ``payer``, valid now."""
    if consent.get("status") != STATUS_ACTIVE:
        return False
    policies = consent.get("policy") or ()
    if not any(isinstance(p, dict) and p.get("uri") in HREX_POLICIES for p in policies):
        return False
    provision = _provision(consent)
    if provision.get("type") != PROVISION_PERMIT or not isinstance(provision.get("period"), dict):
        return False
    if not _period_covers(provision["period"], now):
        return False
    return any(isinstance(a, dict) and _names_payer(a, payer) for a in provision.get("actor") or ())


def payer_to_payer_opted_in(consents: Iterable[Recorded], payer: Payer, now: datetime) -> bool:
    """True when some stored Consent opts the patient in for ``payer``."""
    return any(payer_to_payer_permits(r.consent, payer, now) for r in consents)
