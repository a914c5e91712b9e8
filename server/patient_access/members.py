"""Which stored Patient is the member a PAS request is about.

A PAS request names its patient by the identifiers its submitter knows: the member id on the Coverage
(``identifier`` and ``subscriberId``) and the Patient's identifiers. The payer's own member record is the
stored Patient carrying PriorGate's member identifier system (:data:`urls.MEMBER_SYSTEM`). The rule, as
for ``$inquire``, compares values: a stored Patient whose member identifier value equals one of the
request's member or patient identifier values is the member; exactly one such Patient, in any tenant,
links the request; none or several link nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.pas.request import PasRequest
from server.storage.repository import Repository, StoredResource, Transaction

from . import urls


def member_values(request: PasRequest) -> list[str]:
    """The member identifier values a PAS request carries (Coverage ids, subscriberId, Patient ids)."""
    values: list[str] = []
    for coverage in request.coverages:
        values.extend(i.value for i in coverage.member_ids)
        if coverage.subscriber_id:
            values.append(coverage.subscriber_id)
    values.extend(i.value for i in request.patient.identifiers)
    return list(dict.fromkeys(v for v in values if v))


def escape_value(value: str) -> str:
    """A search parameter value with FHIR search escaping (``\\``, ``,``, ``|``, ``$``)."""
    for char in ("\\", ",", "|", "$"):
        value = value.replace(char, "\\" + char)
    return value


def token_list(system: str, values: Iterable[str]) -> str:
    """``system|v1,system|v2``, values escaped."""
    return ",".join(f"{system}|{escape_value(v)}" for v in values)


def members_named(tx: Transaction, everywhere: Repository, values: Iterable[str]) -> list[StoredResource]:
    """Stored Patients (any tenant) whose PriorGate member identifier has one of ``values``; at most 2."""
    wanted = list(dict.fromkeys(values))
    if not wanted:
        return []
    query = everywhere.parse_search(
        "Patient", [("identifier", token_list(urls.MEMBER_SYSTEM, wanted)), ("_count", "2")]
    )
    return list(tx.search(query).matches)


def find_member(tx: Transaction, everywhere: Repository, request: PasRequest) -> StoredResource | None:
    """The one stored member Patient a PAS request is about, or ``None`` (unknown or ambiguous)."""
    found = members_named(tx, everywhere, member_values(request))
    return found[0] if len(found) == 1 else None
