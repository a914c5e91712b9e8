"""The requesting payer, and the Consent's recipient checked against it.

HRex 1.0.0 ``hrex-consent``: of the ``provision.actor`` repetitions in role ``IRCP`` (recipient), "at least
one repetition SHALL refer to the requesting system's organization". PriorGate knows who asks: the
organization the caller acts for (its tenant). So ``$member-match`` answers 422 unless an IRCP actor
identifies that organization, by

* the reference ``Organization/<id>``, or
* an identifier (``system`` and ``value``) of that Organization as PriorGate holds it (a
  ``https://priorgate.org/fhir/sid/payer-id``, an NPI ``http://hl7.org/fhir/sid/us-npi``, ...);

and the Consent is stored with that actor's reference made literal (``Organization/<id>`` beside the
identifier it was sent with), so the Payer-to-Payer opt-in rule (``server/consent/decision.py``, which
matches a recipient by ``Organization/<id>`` or payer-id) recognizes the payer that asked, and only it: a
Consent naming another payer is never stored for this one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from igs.outcome import unprocessable
from server.storage.repository import Transaction

from .request import ROLE_RECIPIENT

Json = dict[str, Any]


@dataclass(frozen=True)
class Requester:
    """The payer organization asking: its id (the caller's tenant) and its Organization identifiers."""

    organization: str
    identifiers: frozenset[tuple[str, str]]

    @property
    def reference(self) -> str:
        return f"Organization/{self.organization}"


def requester(tx: Transaction, organization: str) -> Requester:
    """The requesting payer, with the identifiers of ``Organization/<organization>`` when stored
    (``tx`` reads every tenant)."""
    stored = tx.find("Organization", organization)
    found: set[tuple[str, str]] = set()
    if stored is not None and not stored.deleted:
        for identifier in stored.resource().get("identifier") or ():
            if isinstance(identifier, dict):
                system, value = identifier.get("system"), identifier.get("value")
                if isinstance(system, str) and isinstance(value, str) and system and value:
                    found.add((system, value))
    return Requester(organization, frozenset(found))


def _recipients(consent: Json) -> Iterator[Json]:
    provision = consent.get("provision")
    for actor in (provision.get("actor") or ()) if isinstance(provision, dict) else ():
        role = actor.get("role") if isinstance(actor, dict) else None
        codings = role.get("coding") or () if isinstance(role, dict) else ()
        if any(isinstance(c, dict) and (c.get("system"), c.get("code")) == ROLE_RECIPIENT for c in codings):
            yield actor


def _identifies(reference: Any, who: Requester) -> bool:
    if not isinstance(reference, dict):
        return False
    literal = reference.get("reference")
    if literal is not None:
        return bool(literal == who.reference)  # a literal reference to someone else never counts
    identifier = reference.get("identifier")
    return (
        isinstance(identifier, dict)
        and (identifier.get("system"), identifier.get("value")) in who.identifiers
    )


def naming_requester(consent: Json, who: Requester) -> Json:
    """The Consent with the IRCP actor naming ``who`` given its literal reference; 422 when no IRCP actor
    identifies the requesting payer."""
    out = copy.deepcopy(consent)
    for actor in _recipients(out):
        if _identifies(actor.get("reference"), who):
            actor["reference"]["reference"] = who.reference
            return out
    raise unprocessable(
        f"the Consent's recipient (provision.actor in role IRCP) does not identify the requesting payer "
        f"{who.reference} (by that reference or one of its identifiers)",
        "Consent.provision.actor",
    )
